"""Embedded PostgreSQL for a clone with no database configured.

The `pgserver` wheel ships a real PostgreSQL server. When `DATABASE_URL` or
`PIPELINE_DATABASE_URL` is unset, settings start it (once; later processes find it
running) with its data in a git-ignored project folder, and create the portal and
pipeline databases in it. The server keeps running after the process exits, so the web
server, the django-q2 cluster and management commands all share it;
`manage.py embedded_pg stop` stops it.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

PORTAL_DB = "opsportal"
PIPELINE_DB = "pipeline"


@dataclass(frozen=True)
class EmbeddedServer:
    """Where the embedded server listens: a Unix socket directory."""

    datadir: Path
    socket_dir: str
    user: str = "postgres"

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


def start(datadir: Path, databases: tuple[str, ...] = (PORTAL_DB, PIPELINE_DB)) -> EmbeddedServer:
    """Start (or find running) the embedded server and make sure `databases` exist."""
    running = _running_socket_dir(datadir)
    marker = datadir / ".portal-databases"
    if running and marker.exists() and set(marker.read_text().split()) >= set(databases):
        return EmbeddedServer(datadir=datadir, socket_dir=running)
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
    return EmbeddedServer(datadir=datadir, socket_dir=socket_dir)


def _running_socket_dir(datadir: Path) -> str | None:
    """Fast path: the socket directory of a server already running on `datadir`."""
    import os

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
    import os

    return hasattr(os, "geteuid") and os.geteuid() == 0
