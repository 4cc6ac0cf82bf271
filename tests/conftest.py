"""Test setup: real PostgreSQL only (settings: opsportal.test_settings).

With DATABASE_URL/PIPELINE_DATABASE_URL unset the suite runs on its own embedded
PostgreSQL (.pgdata-test/), separate from the demo's, because the emulated Supabase
roles are cluster-wide and tests flip BYPASSRLS; the first test that needs a database
starts it. pytest-django creates test_<name> databases; the pipeline one gets the
emulated Supabase schema, never Django tables.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop in e2e tests


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """Before pytest-django creates the test databases: the embedded server runs."""
    from opsportal import embedded_pg

    embedded_pg.ensure_running()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    from remediation.dev.emulation import load_emulated_schema

    with django_db_blocker.unblock():
        load_emulated_schema(
            using="pipeline", service_role_bypassrls=False, fc_metrics_trigger=False
        )
    yield


PIPELINE_TABLES = (
    "fc_scores, fc_responses, fc_options, fc_blocks, profiles, assessment_responses,"
    " assessment_sessions, calibration_model, type_prototypes, scoring_config,"
    " assessment_scoring_key"
)


@pytest.fixture
def pipeline_db(transactional_db):
    """Both databases, committed for real (other connections and threads see the data);
    the pipeline tables are emptied before and after the test."""
    from django.db import connections

    def clean() -> None:
        with connections["pipeline"].cursor() as cur:
            cur.execute(f"TRUNCATE {PIPELINE_TABLES}")

    clean()
    yield connections["pipeline"]
    clean()


@pytest.fixture
def clear_path(pipeline_db):
    """The reference data loaded, BYPASSRLS on and the CHECKs relaxed: the write can
    succeed; restored afterwards."""
    from tests.factories import clear_write_path, load_reference_data

    load_reference_data()
    with clear_write_path():
        yield


# --- Personas: the portal's roles, as setup_roles creates them -------------------------------
@pytest.fixture
def roles(db):
    """The Viewer, Support and Engineer groups with their permissions."""
    from django.core.management import call_command

    call_command("setup_roles", verbosity=0)


@pytest.fixture
def member(roles):
    """A user in one of the roles (or none): member("bob", "Support")."""
    from django.contrib.auth.models import Group, User

    def make(username: str, group: str | None, staff: bool = True) -> User:
        user = User.objects.create_user(
            username, f"{username}@example.org", "pw-123456789", is_staff=staff
        )
        if group:
            user.groups.add(Group.objects.get(name=group))
        return User.objects.get(pk=user.pk)

    return make


@pytest.fixture
def support(member):
    return member("support", "Support")


@pytest.fixture
def engineer(member):
    return member("engineer", "Engineer")


@pytest.fixture(scope="session")
def redis_url():
    """A real Redis: REDIS_URL or 127.0.0.1:6379 when reachable, else a redis-server we start."""
    import shutil
    import socket
    import subprocess
    import time

    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    host_port = url.split("://", 1)[1].split("/", 1)[0]
    host, _, port = host_port.partition(":")
    try:
        socket.create_connection((host, int(port or 6379)), timeout=1).close()
        yield url.rsplit("/", 1)[0] + "/15"
        return
    except OSError:
        pass
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.path.exists(binary):
        pytest.fail(
            "no Redis reachable and no redis-server to start: run `python3 dev.py test`, which installs it"
        )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    proc = subprocess.Popen(
        [binary, "--port", str(free), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(50):
        try:
            socket.create_connection(("127.0.0.1", free), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield f"redis://127.0.0.1:{free}/15"
    proc.terminate()
    proc.wait(10)
