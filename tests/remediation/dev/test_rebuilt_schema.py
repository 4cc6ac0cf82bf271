"""The second emulated pipeline schema, "rebuilt from the migrations" (issue 14, item 2).

The catalog carries every fact issue 14 lists; switching back restores the emulation;
loading twice is harmless. Then what the portal does on it today: every admin GET page on
both variants, and a finalize once the CHECK and trigger blockers are cleared.
"""

from __future__ import annotations

import re
import sys

import pytest
from django.db import connections

from remediation.dev.emulation import current_variant, load_emulated_schema
from tests.factories import load_reference_data

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


def rows(sql: str, params: list | None = None) -> list[tuple]:
    with connections["pipeline"].cursor() as cur:
        cur.execute(sql, params or [])
        return cur.fetchall()


def scalar(sql: str, params: list | None = None):
    return rows(sql, params)[0][0]


def catalog() -> dict:
    """The facts issue 14 lists, read from the live catalog."""
    return {
        "bypassrls": scalar("SELECT rolbypassrls FROM pg_roles WHERE rolname = 'service_role'"),
        "rls": {
            name: (rls, forced)
            for name, rls, forced in rows(
                "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class"
                " WHERE oid IN ('public.profiles'::regclass, 'public.assessment_sessions'::regclass,"
                " 'public.assessment_responses'::regclass)"
            )
        },
        "policies": rows(
            "SELECT policyname, cmd, roles::text, qual, with_check FROM pg_policies"
            " WHERE schemaname = 'public' AND tablename = 'profiles' ORDER BY policyname"
        ),
        "checks": dict(
            rows(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE conrelid = 'public.profiles'::regclass AND contype = 'c'"
            )
        ),
        "session_id_unique": scalar(
            "SELECT count(*) FROM pg_index i JOIN pg_attribute a"
            " ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
            " WHERE i.indrelid = 'public.profiles'::regclass AND i.indisunique"
            " AND i.indnatts = 1 AND a.attname = 'session_id'"
        ),
        "user_session_unique": scalar(
            "SELECT count(*) FROM pg_index i WHERE i.indrelid = 'public.profiles'::regclass"
            " AND i.indisunique AND i.indnatts = 2"
            " AND pg_get_indexdef(i.indexrelid) LIKE '%%(user_id, session_id)'"
        ),
        "share_token_unique": scalar(
            "SELECT count(*) FROM pg_index i JOIN pg_attribute a"
            " ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
            " WHERE i.indrelid = 'public.assessment_sessions'::regclass AND i.indisunique"
            " AND i.indnatts = 1 AND a.attname = 'share_token'"
        ),
        "profile_triggers": rows(
            "SELECT tgname, p.proname FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid"
            " WHERE tgrelid = 'public.profiles'::regclass AND NOT tgisinternal ORDER BY tgname"
        ),
        "session_triggers": rows(
            "SELECT tgname, p.proname FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid"
            " WHERE tgrelid = 'public.assessment_sessions'::regclass AND NOT tgisinternal"
            " ORDER BY tgname"
        ),
        "profile_columns": [
            r[0]
            for r in rows(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public'"
                " AND table_name = 'profiles' ORDER BY ordinal_position"
            )
        ],
        "session_columns": {
            r[0]: (r[1], r[2])
            for r in rows(
                "SELECT column_name, is_nullable, column_default FROM information_schema.columns"
                " WHERE table_schema = 'public' AND table_name = 'assessment_sessions'"
            )
        },
        "tables": sorted(
            r[0]
            for r in rows(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        ),
        "fc": rows(
            "SELECT (SELECT count(*) FROM fc_blocks WHERE version = 'v1.2'),"
            " (SELECT count(*) FROM fc_options o JOIN fc_blocks b ON b.id = o.block_id"
            "  WHERE b.version = 'v1.2')"
        )[0],
        "fc_expected_min": rows(
            "SELECT value::text FROM scoring_config WHERE key = 'fc_expected_min'"
        ),
    }


PIPELINE_TABLES = [
    "assessment_responses",
    "assessment_scoring_key",
    "assessment_sessions",
    "calibration_model",
    "fc_blocks",
    "fc_options",
    "fc_responses",
    "fc_scores",
    "profiles",
    "scoring_config",
    "type_prototypes",
]
EMULATION_CHECKS = {
    "profiles_fc_coverage_bucket_check": (
        "CHECK ((fc_coverage_bucket = ANY (ARRAY['None'::text, 'Partial'::text, 'Full'::text])))"
    ),
    "profiles_overlay_neuro_check": (
        "CHECK ((overlay_neuro = ANY (ARRAY['+'::text, '–'::text, '0'::text])))"
    ),
    "profiles_overlay_state_check": (
        "CHECK ((overlay_state = ANY (ARRAY['+'::text, '–'::text, '0'::text])))"
    ),
}


def assert_rebuilt_facts(facts: dict) -> None:
    assert facts["bypassrls"] is True
    assert facts["rls"] == {
        "profiles": (True, False),
        "assessment_sessions": (True, False),
        "assessment_responses": (True, False),
    }
    assert facts["policies"] == [
        (
            "Service role can manage profiles",
            "ALL",
            "{public}",
            "(auth.role() = 'service_role'::text)",
            None,
        ),
        (
            "Users can insert their own profiles",
            "INSERT",
            "{public}",
            None,
            "(user_id = auth.uid())",
        ),
        (
            "Users can update their own profiles",
            "UPDATE",
            "{public}",
            "(user_id = auth.uid())",
            None,
        ),
        ("Users can view their own profiles", "SELECT", "{public}", "(user_id = auth.uid())", None),
        ("svc_manage_profiles", "ALL", "{service_role}", "true", "true"),
    ]
    assert facts["checks"] == {
        **EMULATION_CHECKS,
        "profiles_session_kind_check": (
            "CHECK ((session_kind = ANY (ARRAY['prism'::text, 'pilot'::text])))"
        ),
    }
    assert facts["session_id_unique"] == 3
    assert facts["user_session_unique"] == 1
    assert facts["profile_triggers"] == [
        ("on_profile_created_dashboard", "bump_dashboard_statistics"),
        ("profiles_dashboard_statistics_insert", "bump_dashboard_statistics"),
        ("refresh_dashboard_statistics_trigger", "refresh_dashboard_statistics"),
        ("set_profiles_updated_at", "handle_updated_at"),
        ("update_fc_metrics_trigger", "update_profile_fc_metrics"),
        ("update_profiles_updated_at", "update_updated_at_column"),
    ]
    assert facts["session_triggers"] == [
        ("set_assessment_sessions_updated_at", "handle_updated_at"),
        ("update_assessment_sessions_updated_at", "update_updated_at_column"),
    ]
    assert "share_token" not in facts["profile_columns"]
    assert len(facts["profile_columns"]) == 57
    assert "finalized_at" not in facts["session_columns"]
    assert "share_token_expires_at" not in facts["session_columns"]
    assert facts["session_columns"]["share_token"] == ("NO", None)
    assert facts["share_token_unique"] == 2
    assert facts["tables"] == sorted([*PIPELINE_TABLES, "dashboard_statistics"])
    assert facts["fc"] == (6, 24)
    assert facts["fc_expected_min"] == [("24",)]


def assert_emulation_facts(facts: dict) -> None:
    assert facts["bypassrls"] is False
    assert facts["rls"] == {
        "profiles": (True, False),
        "assessment_sessions": (True, False),
        "assessment_responses": (False, False),
    }
    assert facts["policies"] == []
    assert facts["checks"] == EMULATION_CHECKS
    assert facts["session_id_unique"] == 1
    assert facts["user_session_unique"] == 0
    assert facts["profile_triggers"] == []
    assert facts["session_triggers"] == []
    assert "share_token" in facts["profile_columns"]
    assert {"finalized_at", "share_token_expires_at"} <= set(facts["session_columns"])
    assert facts["session_columns"]["share_token"][0] == "NO"
    assert facts["session_columns"]["share_token"][1] is not None  # has a default
    assert facts["tables"] == PIPELINE_TABLES
    assert facts["fc"] == (0, 0)


def test_the_rebuilt_catalog_has_every_fact_of_issue_14(load_variant):
    variant = load_variant("rebuilt")
    assert (variant.name, variant.service_role_bypassrls) == ("rebuilt", True)
    assert variant.columns == {
        "assessment_sessions": frozenset(),
        "profiles": {"fc_count", "session_kind"},
    }
    assert_rebuilt_facts(catalog())
    # The reference data the demo and the tests load keeps this database's value.
    load_reference_data()
    assert rows("SELECT value::text FROM scoring_config WHERE key = 'fc_expected_min'") == [("24",)]
    assert scalar("SELECT count(*) FROM scoring_config") > 20


def test_loading_twice_is_harmless_and_switching_back_restores_the_emulation(load_variant):
    load_variant("rebuilt")
    load_emulated_schema(variant="rebuilt")  # the default reset: only on a switch
    load_emulated_schema(variant="rebuilt")
    assert current_variant() == "rebuilt"
    assert_rebuilt_facts(catalog())
    # The portal's own schema in the pipeline database survives a switch.
    with connections["pipeline"].cursor() as cur:
        cur.execute("CREATE SCHEMA IF NOT EXISTS opsportal")
        cur.execute("CREATE TABLE IF NOT EXISTS opsportal.switch_canary (x int)")
    try:
        variant = load_variant("emulation")
        assert current_variant() == "emulation"
        assert variant.columns == {
            "assessment_sessions": {"finalized_at", "share_token_expires_at"},
            "profiles": {"share_token"},
        }
        facts = catalog()
        assert_emulation_facts(facts)
        assert facts["fc_expected_min"] == []  # the emulation seeds no rows
        assert scalar("SELECT to_regclass('opsportal.switch_canary') IS NOT NULL") is True
        assert (
            scalar(
                "SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
                " AND proname IN ('bump_dashboard_statistics', 'refresh_dashboard_statistics',"
                " 'handle_updated_at', 'update_updated_at_column')"
            )
            == 0
        )
        load_emulated_schema(
            variant="emulation", service_role_bypassrls=False, fc_metrics_trigger=False
        )
        assert_emulation_facts(catalog())
    finally:
        with connections["pipeline"].cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS opsportal.switch_canary")


def test_the_fixture_describes_the_variant(schema_variant):
    """Each variant's description matches its live catalog."""
    facts = catalog()
    if schema_variant.name == "rebuilt":
        assert_rebuilt_facts(facts)
    else:
        assert_emulation_facts(facts)
    assert schema_variant.service_role_bypassrls is facts["bypassrls"]
    assert schema_variant.has("profiles", "share_token") is (
        "share_token" in facts["profile_columns"]
    )
    assert (schema_variant.first_blocker, schema_variant.first_blocker_sqlstate) == {
        "emulation": ("rls", "42501"),
        "rebuilt": ("check", "23514"),
    }[schema_variant.name]


# --- What the portal does on each variant today -------------------------------------------
# issue 14, item 1: the product still assumes the emulation's columns
# (assessment_sessions.finalized_at / share_token_expires_at, profiles.share_token).
# Remove a page from this set once it answers on the rebuilt variant: the test fails while a
# listed page no longer answers 500, so the list can only shrink.
SESSIONS = "ProgrammingError: column assessment_sessions.share_token_expires_at does not exist"
PROFILES = "ProgrammingError: column profiles.share_token does not exist"
# Issue 14, item 1: the product reads the live catalog and leaves out the columns a
# database lacks, so no page answers 500 on the rebuilt variant either.
EXPECTED_500_ON_REBUILT: dict[str, str] = {}


def _label(url: str, query: dict, ids: dict[str, str]) -> str:
    """A stable name for a crawled page: ids replaced by what they are."""
    from urllib.parse import urlencode

    for name, value in ids.items():
        url = url.replace(f"/{value}/", f"/<{name}>/")
    url = re.sub(r"/admin/(\w+)/(\w+)/[^/<]+/(change|history)/", r"/admin/\1/\2/<pk>/\3/", url)
    label = f"{url}?{urlencode(query, doseq=True)}" if query else url
    return re.sub(r"\d{4}-\d{2}-\d{2}", "<date>", label)


@pytest.fixture
def crawl_portal(schema_variant):
    """The demo's incident on the variant, plus something on every page: a diagnosis,
    two saved check runs, a finalize run (its sessions fail at the variant's first
    blocker), its rollback run, an alert."""
    from django.core.management import call_command
    from django.utils import timezone

    from remediation import jobs
    from remediation.dev.demo import seed_demo
    from remediation.models import Alert
    from remediation.selectors import orphaned_sessions
    from remediation.selectors.checks import run_checks
    from remediation.services import session_diagnose
    from remediation.services.runbook import runbook_record_save

    seed_demo(seed=5, now=timezone.now(), force=True)
    call_command("setup_schedules", verbosity=0)
    with connections["pipeline"].cursor() as cur:
        cur.execute(
            "SELECT s.id::text FROM assessment_sessions s WHERE s.status = 'completed'"
            " AND NOT EXISTS (SELECT 1 FROM profiles p WHERE p.session_id = s.id)"
            " ORDER BY s.completed_at DESC LIMIT 7"
        )
        orphans = [r[0] for r in cur.fetchall()]
        cur.execute("SELECT session_id::text FROM profiles ORDER BY session_id LIMIT 1")
        profiled = cur.fetchone()[0]
    assert len(orphans) == 7 and orphaned_sessions is not None
    diagnosis = session_diagnose(session_id=orphans[6])
    assert (diagnosis.category, diagnosis.sqlstate) == (
        schema_variant.first_blocker,
        schema_variant.first_blocker_sqlstate,
    )
    for label in ("before", "after"):
        runbook_record_save(
            user=None,
            kind="checks",
            results={"checks": [c.__dict__ for c in run_checks()]},
            label=label,
        )
    run = jobs.run_until_done(
        jobs.backfill_start(selection="ids", ids=orphans[:3], enqueue=False, actor="t").pk
    )
    # Nothing was written, so there is no rollback run: a bulk diagnosis run instead.
    diagnosis_run = jobs.run_until_done(
        jobs.diagnosis_start(session_ids=orphans[3:6], enqueue=False).pk
    )
    Alert.objects.create(
        rule="manual",
        severity="page",
        message="crawl",
        first_seen=timezone.now(),
        last_seen=timezone.now(),
    )
    return {
        "orphan": orphans[6],
        "profiled": profiled,
        "run": run,
        "undone": run,
        "rollback": diagnosis_run,
    }


def crawl(client, portal) -> tuple[dict[str, int], dict[str, str]]:
    """Every admin GET page: status per page, and the exception of each 500."""
    from django.contrib.auth.models import User
    from django.core.signals import got_request_exception

    from tests.remediation.admin.test_get_reads_only import admin_pages

    user = User.objects.create_superuser("crawler", "crawler@example.org", "pw-123456789")
    client.force_login(user)
    client.raise_request_exception = False
    errors: list[str] = []

    def record(sender, request=None, **kwargs):
        exc = sys.exc_info()[1]
        errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")

    ids = {
        "orphan": portal["orphan"],
        "profiled": portal["profiled"],
        "run": str(portal["run"].pk),
        "rollback": str(portal["rollback"].pk),
    }
    statuses: dict[str, int] = {}
    why: dict[str, str] = {}
    got_request_exception.connect(record)
    try:
        for url, query in admin_pages(portal, user):
            del errors[:]
            resp = client.get(url, query)
            if resp.streaming:
                try:
                    b"".join(resp.streaming_content)
                except Exception as exc:  # a CSV export failing while streaming
                    errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
                    resp.status_code = 500
            label = _label(url, query, ids)
            statuses[label] = max(statuses.get(label, 0), resp.status_code)
            if errors:
                why[label] = errors[0]
    finally:
        got_request_exception.disconnect(record)
    return statuses, why


def test_every_admin_get_page_on_both_variants(client, crawl_portal, schema_variant):
    statuses, why = crawl(client, crawl_portal)
    assert len(statuses) > 50
    failing = {label: why.get(label, "") for label, code in statuses.items() if code == 500}
    others = {label: code for label, code in statuses.items() if code not in (200, 302, 500)}
    assert others == {}
    if schema_variant.name == "emulation":
        assert failing == {}
    else:
        assert failing == EXPECTED_500_ON_REBUILT


@pytest.fixture
def rebuilt_fixes(load_variant):
    """The rebuilt variant with the reference data; Fixes D and E rolled back afterwards."""
    from tests.factories import pipeline_sql, set_fixes

    load_variant("rebuilt")
    load_reference_data()
    yield
    pipeline_sql("DELETE FROM profiles")  # rows the old CHECKs reject would block the reverse
    set_fixes("0004")
    pipeline_sql("DROP SCHEMA IF EXISTS opsportal CASCADE")


def test_a_finalize_on_the_rebuilt_variant(rebuilt_fixes):
    from remediation.fixes import executor
    from remediation.services import session_diagnose, session_finalize
    from tests.factories import make_session

    sid = make_session()
    first = session_diagnose(session_id=sid)
    executor.run("D")
    second = session_diagnose(session_id=sid)
    executor.run("E")
    third = session_diagnose(session_id=sid)
    attempt = session_finalize(session_id=sid)
    # Where the portal reads the live catalog it is right (issue 14's first paragraph):
    # BYPASSRLS, so no RLS refusal; the CHECK first, then the recursive trigger.
    assert (first.category, first.sqlstate, first.constraint) == (
        "check",
        "23514",
        "profiles_fc_coverage_bucket_check",
    )
    assert (second.category, second.sqlstate) == ("trigger", "54001")
    # Issue 14, item 1: the portal writes only the columns this database has, so after
    # Fix E nothing blocks the write and the finalize creates the profile.
    assert (third.category, third.sqlstate) == ("would_succeed", "")
    assert attempt.outcome == "created", attempt.explanation
    assert attempt.profile_id is not None and attempt.results_url
    # The session took the update without the columns it lacks; its AFTER INSERT triggers
    # wrote dashboard_statistics (rows other tables received: see the rollback's report).
    status = rows("SELECT status FROM assessment_sessions WHERE id = %s", [sid])
    assert status == [("completed",)]
    assert rows("SELECT count(*) FROM profiles") == [(1,)]
    assert rows("SELECT count(*) > 0 FROM dashboard_statistics") == [(True,)]


def test_the_commands_load_and_seed_the_rebuilt_variant(load_variant):
    from io import StringIO

    from django.core.management import call_command

    load_variant("emulation")
    out = StringIO()
    call_command("load_emulated_schema", "--variant", "rebuilt", stdout=out)
    assert "'rebuilt' loaded into 'pipeline', replacing the 'emulation' variant" in out.getvalue()
    out = StringIO()
    call_command(
        "seed_demo", "--variant", "rebuilt", "--sessions", "120", "--seed", "3", stdout=out
    )
    assert "Seeded 120 sessions" in out.getvalue()
    completed, with_token, profiles, dashboard = rows(
        "SELECT (SELECT count(*) FROM assessment_sessions WHERE status = 'completed'),"
        " (SELECT count(*) FROM assessment_sessions WHERE share_token <> ''),"
        " (SELECT count(*) FROM profiles WHERE results_version = 'v1.2.0'),"
        " (SELECT count(*) FROM dashboard_statistics)"
    )[0]
    assert with_token == 120 and completed > 100
    assert profiles == 33  # round(120 * 131 / 475), as on the emulation
    assert dashboard == 0  # seeded without triggers, as the historic rows were imported
    facts = catalog()
    assert facts["fc"] == (6, 24) and facts["fc_expected_min"] == [("24",)]
    out = StringIO()
    call_command("load_emulated_schema", "--variant", "emulation", stdout=out)
    assert "replacing the 'rebuilt' variant" in out.getvalue()
    assert current_variant() == "emulation"
    assert rows("SELECT count(*) FROM assessment_sessions") == [(0,)]
    # The command took the settings' knobs (the recursive trigger): back to the suite's
    # emulation, which load_variant("emulation") left the fixtures believing is loaded.
    load_emulated_schema(
        variant="emulation", reset=True, service_role_bypassrls=False, fc_metrics_trigger=False
    )
    assert catalog()["profile_triggers"] == []
