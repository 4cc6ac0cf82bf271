"""Settings only read the environment; the entry points refuse what manage.py refuses."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from opsportal import embedded_pg

ROOT = Path(__file__).resolve().parents[2]
REAL_KEY = "a-real-production-secret-key-" + "x" * 30


def deployment_env(**extra: str) -> dict[str, str]:
    """The environment of a process outside the test suite, with no database URL."""
    env = {**os.environ, "OPSPORTAL_ENV_FILE": "/nonexistent", **extra}
    for name in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "PIPELINE_DATABASE_URL"):
        env.pop(name, None)
    return env


def postgres_processes_on(datadir: Path) -> list[int]:
    found = []
    for proc in psutil.process_iter(attrs=["pid", "name", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(datadir) in cmdline and "postgres" in ((proc.info["name"] or "") + cmdline):
            found.append(proc.info["pid"])
    return found


def run(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_importing_settings_starts_no_server(tmp_path):
    datadir = tmp_path / "pg"
    env = deployment_env(EMBEDDED_PG_DIR=str(datadir), DEBUG="false", SECRET_KEY=REAL_KEY)
    probe = run(
        "import json, opsportal.settings as s;"
        "print(json.dumps([s.EMBEDDED_PG_USED, s.DATABASES['default']['HOST'],"
        " s.DATABASES['pipeline']['NAME']]))",
        env,
    )
    assert probe.returncode == 0, probe.stderr
    # The entries point at the socket directory the server will use: its data directory.
    assert probe.stdout.strip() == f'[true, "{datadir}", "pipeline"]'
    # Nor does Django's setup, the WSGI entry point, or `manage.py check`.
    wsgi = run("import opsportal.wsgi", env)
    assert wsgi.returncode == 0, wsgi.stderr
    check = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert not (datadir / "postmaster.pid").exists()
    assert not datadir.exists()
    assert postgres_processes_on(datadir) == []


@pytest.mark.parametrize("module", ["opsportal.wsgi", "opsportal.asgi"])
def test_the_entry_points_refuse_the_development_key_with_debug_off(tmp_path, module):
    env = deployment_env(EMBEDDED_PG_DIR=str(tmp_path / "pg"), DEBUG="false")
    env.pop("SECRET_KEY", None)
    refused = run(f"import {module}", env)
    assert refused.returncode != 0
    assert "ImproperlyConfigured" in refused.stderr and "opsportal.E001" in refused.stderr
    # With DEBUG on (the demo) the development key is accepted, as by manage.py.
    accepted = run(
        f"import {module}; print(callable({module}.application))", {**env, "DEBUG": "true"}
    )
    assert accepted.returncode == 0 and accepted.stdout.strip() == "True", accepted.stderr


class FakeSettings:
    def __init__(self, aliases: tuple[str, ...], datadir: Path) -> None:
        self.EMBEDDED_PG_ALIASES = aliases
        self.EMBEDDED_PG_DIR = datadir
        entries = embedded_pg.database_entries(datadir, aliases)
        self.DATABASES = {"default": {"HOST": "db.example.org"}, "pipeline": {"HOST": "x"}}
        self.DATABASES.update(entries)


def test_ensure_running_points_the_embedded_entries_at_the_real_socket(monkeypatch, tmp_path):
    started = []

    def fake_start(datadir, databases):
        started.append((datadir, databases))
        return embedded_pg.EmbeddedServer(datadir=datadir, socket_dir="/run/elsewhere")

    monkeypatch.setattr(embedded_pg, "start", fake_start)
    conf = FakeSettings(("pipeline",), tmp_path)
    assert conf.DATABASES["pipeline"]["HOST"] == str(tmp_path)
    server = embedded_pg.ensure_running(conf)
    assert server is not None and started == [(tmp_path, ("pipeline",))]
    assert conf.DATABASES["pipeline"]["HOST"] == "/run/elsewhere"
    assert conf.DATABASES["default"]["HOST"] == "db.example.org"  # has a URL: untouched
    assert embedded_pg.ensure_running(FakeSettings((), tmp_path)) is None
    assert len(started) == 1


def test_the_test_settings_use_the_test_server_and_plain_http():
    from django.conf import settings

    assert settings.SETTINGS_MODULE == "opsportal.test_settings"
    if settings.EMBEDDED_PG_USED and not os.environ.get("EMBEDDED_PG_DIR"):
        assert settings.EMBEDDED_PG_DIR == ROOT / ".pgdata-test"
    assert settings.SECURE_SSL_REDIRECT is False
    assert (os.environ.get("LOG_FORMAT") or "text") == settings.LOG_FORMAT
    assert settings.DATABASES["pipeline"]["TEST"]["MIGRATE"] is False
    assert settings.DEV_TOOLS is True
    # The dev-only app is installed exactly when it exists in this tree.
    present = importlib.util.find_spec("remediation.dev") is not None
    assert ("remediation.dev" in settings.INSTALLED_APPS) is present


@pytest.mark.parametrize(
    ("count", "forwarded", "expected"),
    [
        (0, "203.0.113.5", "10.0.0.2"),  # no trusted proxy: the header is the client's word
        (1, "203.0.113.5", "203.0.113.5"),  # what the one TLS proxy appended
        (1, "192.0.2.1, 203.0.113.5", "203.0.113.5"),  # a forged entry in front is ignored
        (2, "192.0.2.1, 203.0.113.5, 10.0.0.1", "203.0.113.5"),
        (2, "203.0.113.5", "10.0.0.2"),  # fewer entries than proxies: not through them
        (1, "not-an-address", "10.0.0.2"),
        (1, "", "10.0.0.2"),
    ],
)
def test_client_ip_believes_only_the_trusted_proxies(settings, count, forwarded, expected):
    from django.test import RequestFactory

    from opsportal.security import client_ip

    settings.TRUSTED_PROXY_COUNT = count
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


@pytest.mark.parametrize(
    ("overrides", "refused"),
    [
        ({}, False),  # the defaults fit: 45 s + 222.2 s < 300 s
        ({"BACKFILL_BATCH_SECONDS": 90.0}, True),
        ({"EDGE_READ_TIMEOUT": 60.0}, True),
        ({"BACKFILL_BATCH_SECONDS": 0.0}, True),
    ],
)
def test_a_batch_budget_that_does_not_fit_q_timeout_is_refused(settings, overrides, refused):
    from opsportal.checks import check_portal_settings

    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 300, "retry": 360}
    settings.EDGE_CONNECT_TIMEOUT, settings.EDGE_READ_TIMEOUT = 3.05, 30.0
    settings.EDGE_MAX_RETRIES, settings.EDGE_RETRY_AFTER_CAP = 3, 30.0
    settings.BACKFILL_BATCH_SECONDS = 45.0
    for name, value in overrides.items():
        setattr(settings, name, value)
    ids = [e.id for e in check_portal_settings()]
    assert ("opsportal.E007" in ids) == refused


@pytest.mark.parametrize(
    ("overrides", "refused"),
    [
        ({}, False),  # the defaults fit: 30 s + 222.2 s < 300 s
        ({"BACKFILL_TASK_SECONDS": 80.0}, True),
        ({"BACKFILL_TASK_SECONDS": 0.0}, True),
        ({"EDGE_CONCURRENCY": 0}, True),
    ],
)
def test_a_task_budget_that_does_not_fit_q_timeout_is_refused(settings, overrides, refused):
    from opsportal.checks import check_portal_settings

    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 300, "retry": 360}
    settings.EDGE_CONNECT_TIMEOUT, settings.EDGE_READ_TIMEOUT = 3.05, 30.0
    settings.EDGE_MAX_RETRIES, settings.EDGE_RETRY_AFTER_CAP = 3, 30.0
    settings.BACKFILL_TASK_SECONDS, settings.EDGE_CONCURRENCY = 30.0, 8
    for name, value in overrides.items():
        setattr(settings, name, value)
    ids = [e.id for e in check_portal_settings()]
    assert ("opsportal.E008" in ids) == refused
