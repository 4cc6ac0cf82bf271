"""Test setup: real PostgreSQL only (settings: opsportal.test_settings).

With DATABASE_URL/PIPELINE_DATABASE_URL unset the suite runs on its own embedded
PostgreSQL (.pgdata-test/), separate from the demo's, because the emulated Supabase
roles are cluster-wide and tests flip BYPASSRLS; the first test that needs a database
starts it. pytest-django creates test_<name> databases; the pipeline one gets the
emulated Supabase schema, never Django tables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop in e2e tests


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """Before pytest-django creates the test databases: the embedded server runs."""
    from opsportal import embedded_pg

    embedded_pg.ensure_running()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        switch_schema_variant(DEFAULT_VARIANT, force=True)
    yield
    # Leave the cluster as the default variant left it (roles are cluster-wide).
    with django_db_blocker.unblock():
        switch_schema_variant(DEFAULT_VARIANT)


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
        extra = ", dashboard_statistics" if _LOADED["variant"] == "rebuilt" else ""
        with connections["pipeline"].cursor() as cur:
            cur.execute(f"TRUNCATE {PIPELINE_TABLES}{extra}")

    clean()
    yield connections["pipeline"]
    clean()


# --- The two emulated pipeline schemas ---------------------------------------------------
# The default test database holds the emulation (BYPASSRLS off, no recursive trigger).
# A test opts in to both variants by taking `schema_variant` (or with
# @pytest.mark.usefixtures("schema_variant")): it runs once per variant. The variant name
# is a session-scoped parameter, so pytest groups the whole session's tests by variant and
# the database switches about twice per session, not per test; a test that does not take
# the fixture always finds the default variant (see _default_schema_variant).
DEFAULT_VARIANT = "emulation"
_LOADED: dict[str, str | float | int] = {"variant": "", "switches": 0, "seconds": 0.0}


@dataclass(frozen=True)
class SchemaVariant:
    """What a test may rely on for the variant it runs on (optional columns from the
    live catalog, the rest from what the variant's SQL builds)."""

    name: str
    service_role_bypassrls: bool
    # of OPTIONAL_COLUMNS, those the live tables have: {"assessment_sessions": {...}, ...}
    columns: dict[str, frozenset[str]]
    # What a v1.2.1 profile write of the engine meets first on a fresh database.
    first_blocker: str  # a Diagnosis category: "rls" | "check"
    first_blocker_sqlstate: str  # "42501" | "23514"

    def has(self, table: str, column: str) -> bool:
        return column in self.columns[table]


OPTIONAL_COLUMNS = {
    "assessment_sessions": ("finalized_at", "share_token_expires_at"),
    "profiles": ("share_token", "fc_count", "session_kind"),
}
FIRST_BLOCKER = {"emulation": ("rls", "42501"), "rebuilt": ("check", "23514")}


def switch_schema_variant(name: str, *, force: bool = False) -> float:
    """Load `name` into the pipeline test database unless it is there already (committed;
    seconds spent, 0 when nothing was done). The emulation is loaded as the suite's
    default: BYPASSRLS off, no recursive trigger."""
    import time

    from remediation.dev.emulation import load_emulated_schema

    if not force and _LOADED["variant"] == name:
        return 0.0
    started = time.perf_counter()
    load_emulated_schema(
        using="pipeline",
        variant=name,
        reset=None if force else True,
        service_role_bypassrls=False,
        fc_metrics_trigger=False,
    )
    spent = time.perf_counter() - started
    if _LOADED["variant"] and _LOADED["variant"] != name:
        _LOADED["switches"] = int(_LOADED["switches"]) + 1
        _LOADED["seconds"] = float(_LOADED["seconds"]) + spent
    _LOADED["variant"] = name
    return spent


def describe_schema_variant(name: str) -> SchemaVariant:
    from django.db import connections

    columns: dict[str, frozenset[str]] = {}
    with connections["pipeline"].cursor() as cur:
        for table, wanted in OPTIONAL_COLUMNS.items():
            cur.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public'"
                " AND table_name = %s AND column_name = ANY(%s)",
                [table, list(wanted)],
            )
            columns[table] = frozenset(r[0] for r in cur.fetchall())
        cur.execute("SELECT rolbypassrls FROM pg_roles WHERE rolname = 'service_role'")
        bypass = bool(cur.fetchone()[0])
    category, sqlstate = FIRST_BLOCKER[name]
    return SchemaVariant(name, bypass, columns, category, sqlstate)


@pytest.fixture(scope="session", params=["emulation", "rebuilt"])
def schema_variant_name(request):
    """The variant's name; session-scoped so pytest orders tests to switch rarely."""
    return request.param


@pytest.fixture
def schema_variant(schema_variant_name, pipeline_db):
    """Run the test on the variant (committed, emptied like pipeline_db; the variant's
    seeded rows are in place); yields its SchemaVariant."""
    from remediation.dev.emulation import seed_variant_rows

    switch_schema_variant(schema_variant_name)
    seed_variant_rows(schema_variant_name)
    yield describe_schema_variant(schema_variant_name)


@pytest.fixture
def load_variant(pipeline_db):
    """For a test of one variant or of the switching itself: load_variant("rebuilt")
    switches (when needed), seeds the variant's rows and returns its SchemaVariant. The
    variant stays loaded (the next test that does not ask for it gets the default back)."""
    from remediation.dev.emulation import seed_variant_rows

    def load(name: str) -> SchemaVariant:
        switch_schema_variant(name)
        seed_variant_rows(name)
        return describe_schema_variant(name)

    return load


@pytest.fixture(autouse=True)
def _default_schema_variant(request, django_db_blocker):
    """A test that does not ask for a variant runs on the default one."""
    if "schema_variant" in request.fixturenames or _LOADED["variant"] in ("", DEFAULT_VARIANT):
        return
    with django_db_blocker.unblock():
        switch_schema_variant(DEFAULT_VARIANT)


def pytest_terminal_summary(terminalreporter):
    if _LOADED["switches"]:
        terminalreporter.write_line(
            f"emulated schema: {_LOADED['switches']} variant switches,"
            f" {float(_LOADED['seconds']):.2f}s in all"
        )


@pytest.fixture
def clear_path(pipeline_db):
    """The reference data loaded, BYPASSRLS on and the CHECKs relaxed: the write can
    succeed; restored afterwards."""
    from tests.factories import clear_write_path, load_reference_data

    load_reference_data()
    with clear_write_path():
        yield


@pytest.fixture
def fresh_variant(schema_variant):
    """schema_variant for a test that changes the pipeline catalog (policies, grants,
    constraints, triggers, roles): the variant is loaded again from its SQL afterwards."""
    from tests.factories import reload_variant

    yield schema_variant
    reload_variant(schema_variant.name)


@pytest.fixture
def clear_variant(schema_variant):
    """clear_path on each variant: the reference data loaded and nothing blocking a profile
    write (tests.factories.clear_write_path for the variant); yields the SchemaVariant."""
    from tests.factories import clear_write_path, load_reference_data

    load_reference_data()
    with clear_write_path(schema_variant.name):
        yield schema_variant


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


@pytest.fixture
def one_lane(settings):
    """Backfills with one chain of tasks (BACKFILL_LANES=1): for tests that step a run's
    batches by hand with its single token. Lanes have their own tests (test_lanes.py)."""
    settings.BACKFILL_LANES = 1
