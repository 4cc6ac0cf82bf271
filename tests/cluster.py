"""Real django-q2 clusters in subprocesses, on the test databases."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.db import connections

ROOT = Path(__file__).resolve().parents[1]
LOG = ROOT / "test-artifacts" / "qcluster.log"
LOG.parent.mkdir(exist_ok=True)


def db_url(alias: str) -> str:
    """A URL for the test database behind `alias`, for a subprocess."""
    conf = connections[alias].settings_dict
    host, port = conf["HOST"], conf["PORT"]
    password = conf.get("PASSWORD") or ""
    if host.startswith("/"):
        return f"postgres://{conf['USER']}:{password}@/{conf['NAME']}?host={host}"
    return f"postgres://{conf['USER']}:{password}@{host}:{port or 5432}/{conf['NAME']}"


def start_cluster(**extra: str) -> subprocess.Popen:
    env = {
        **os.environ,
        # The test settings, on the test databases (pytest-django's test_<name>).
        "DJANGO_SETTINGS_MODULE": "opsportal.test_settings",
        "DATABASE_URL": db_url("default"),
        "PIPELINE_DATABASE_URL": db_url("pipeline"),
        "DEBUG": "true",
        "Q_WORKERS": "1",
        "Q_POLL": "0.2",
        "BACKFILL_STALE_SECONDS": "3",
        **extra,
    }
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "qcluster"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=open(ROOT / "test-artifacts" / "qcluster.log", "ab"),
    )


def kill_cluster(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    proc.wait(20)


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")
