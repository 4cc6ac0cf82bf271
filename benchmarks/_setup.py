"""Shared setup for benchmarks: disposable databases in the embedded PostgreSQL."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def use_bench_databases(prefix: str = "bench") -> None:
    """Point DATABASE_URL/PIPELINE_DATABASE_URL at throwaway databases, unless already set."""
    if os.environ.get("DATABASE_URL") and os.environ.get("PIPELINE_DATABASE_URL"):
        return
    from opsportal import embedded_pg

    # Its own server: benchmarks flip the cluster-wide BYPASSRLS of service_role, which
    # must not change the demo's incident.
    datadir = Path(os.environ.get("BENCH_PG_DIR") or ROOT / ".pgdata-bench")
    names = (f"{prefix}_opsportal", f"{prefix}_pipeline")
    server = embedded_pg.start(datadir, databases=names)
    os.environ["DATABASE_URL"] = f"postgres://postgres:@/{names[0]}?host={server.socket_dir}"
    os.environ["PIPELINE_DATABASE_URL"] = (
        f"postgres://postgres:@/{names[1]}?host={server.socket_dir}"
    )
    os.environ.setdefault("DEBUG", "true")


def django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsportal.settings")
    import django

    django.setup()


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def admin_client() -> Any:
    """A Django test client logged in as a benchmark superuser (after django_setup)."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    user, _ = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    return client
