"""Embedded PostgreSQL for a clone with no database configured (demo and tests).

The `pgserver` wheel (the `demo` extra) ships a real PostgreSQL server. When
`DATABASE_URL` or `PIPELINE_DATABASE_URL` is unset, settings only *describe* the
embedded databases (`database_entries`: no process is started, nothing is imported);
`ensure_running()` starts the server (once; later processes find it running) with its
data in a git-ignored project folder and creates the portal and pipeline databases in
it. manage.py, dev.py and the test setup call it; the WSGI/ASGI entry points never do.
The server keeps running after the process exits, so the web server, the django-q2
cluster and management commands all share it; `manage.py embedded_pg stop` (or
`python -m opsportal.embedded_pg stop`) stops it.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PORTAL_DB = "opsportal"
PIPELINE_DB = "pipeline"
# The database each alias gets in the embedded server.
DATABASE_NAMES = {"default": PORTAL_DB, "pipeline": PIPELINE_DB}


@dataclass(frozen=True)
class EmbeddedServer:
    """Where the embedded server listens: a Unix socket directory."""

    datadir: Path
    socket_dir: str
    user: str = "postgres"
    # True when this process started the server (it was not running before).
    started: bool = False

    def database(self, name: str) -> dict[str, object]:
        """A Django DATABASES entry for database `name` on this server."""
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": self.user,
            "PASSWORD": "",
            "HOST": self.socket_dir,
            "PORT": "",
        }


def expected_socket_dir(datadir: Path) -> str:
    """Where the server on `datadir` listens (or will), without starting anything.

    A running server says so in postmaster.pid; otherwise pgserver puts the socket in
    the data directory itself when the socket path fits the system's limit (else in a
    runtime directory, which `ensure_running` corrects once the server runs).
    """
    return _running_socket_dir(datadir) or str(datadir)


def database_entries(datadir: Path, aliases: tuple[str, ...]) -> dict[str, dict[str, object]]:
    """DATABASES entries for `aliases` on the embedded server in `datadir` (starts nothing)."""
    server = EmbeddedServer(datadir=datadir, socket_dir=expected_socket_dir(datadir))
    return {alias: server.database(DATABASE_NAMES[alias]) for alias in aliases}


def ensure_running(conf: Any = None) -> EmbeddedServer | None:
    """Start the embedded server when the settings use it; None when they do not.

    Fixes up the HOST of every embedded DATABASES entry when the real socket directory
    differs from the expected one (Django connects lazily, so this holds for every
    connection made afterwards).
    """
    if conf is None:
        from django.conf import settings as conf
    aliases = tuple(getattr(conf, "EMBEDDED_PG_ALIASES", ()))
    if not aliases:
        return None
    databases = tuple(DATABASE_NAMES[alias] for alias in aliases)
    server = start(Path(conf.EMBEDDED_PG_DIR), databases)
    for alias in aliases:
        conf.DATABASES[alias]["HOST"] = server.socket_dir
    return server


def start(datadir: Path, databases: tuple[str, ...] = (PORTAL_DB, PIPELINE_DB)) -> EmbeddedServer:
    """Start (or find running) the embedded server and make sure `databases` exist."""
    running = _running_socket_dir(datadir)
    marker = datadir / ".portal-databases"
    if running and marker.exists() and set(marker.read_text().split()) >= set(databases):
        return EmbeddedServer(datadir=datadir, socket_dir=running)
    started = running is None
    datadir.mkdir(parents=True, exist_ok=True)
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        server = pgserver.get_server(datadir, cleanup_mode=None)
    info = server.get_postmaster_info()
    socket_dir = str(info.socket_dir)
    _create_databases(socket_dir, databases)
    marker.write_text("\n".join(databases) + "\n")
    return EmbeddedServer(datadir=datadir, socket_dir=socket_dir, started=started)


def _running_socket_dir(datadir: Path) -> str | None:
    """The socket directory of a server already running on `datadir`, else None."""
    try:
        lines = (datadir / "postmaster.pid").read_text().splitlines()
        pid, socket_dir, status = int(lines[0]), lines[4], lines[7].strip()
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return socket_dir if status == "ready" and socket_dir else None


def _create_databases(socket_dir: str, databases: tuple[str, ...]) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(
        host=socket_dir, user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        for name in databases:
            if name not in existing:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def stop(datadir: Path) -> bool:
    """Stop the embedded server if it runs; True when one was stopped."""
    import subprocess

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]
        from pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(datadir)
    if info is None or not info.is_running():
        return False
    try:
        pg_ctl(["-w", "stop"], pgdata=datadir, user="pgserver" if _is_root() else None)
    except subprocess.CalledProcessError:
        return False
    return True


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def main(argv: list[str]) -> int:
    """`python -m opsportal.embedded_pg start|stop`, for the settings in DJANGO_SETTINGS_MODULE.

    `start` prints "started", "running" or "not used"; `stop` prints "stopped" or
    "not running". dev.py uses them to stop only a server it started.
    """
    if len(argv) != 1 or argv[0] not in ("start", "stop"):
        print("usage: python -m opsportal.embedded_pg start|stop")
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsportal.settings")
    from django.conf import settings

    if argv[0] == "stop":
        print("stopped" if stop(Path(settings.EMBEDDED_PG_DIR)) else "not running")
        return 0
    server = ensure_running(settings)
    print("not used" if server is None else "started" if server.started else "running")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
