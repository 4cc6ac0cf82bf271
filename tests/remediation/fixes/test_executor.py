"""The fix executor: A, D and E are independent; the pipeline database records only them;
`manage.py migrate` never reaches the pipeline; `manage.py fix` prints, records and audits."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from remediation.dev.emulation import load_emulated_schema
from remediation.fixes import executor
from remediation.models import AuditEvent, RunbookRecord
from tests.factories import (
    load_reference_data,
    make_session,
    pipeline_sql,
    restore_checks,
    set_fixes,
)

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)
POLICY = "Service role can manage profiles"


@pytest.fixture
def rebuilt(pipeline_db):
    """The database rebuilt from the migrations: the CHECKs and the recursive trigger
    (as in test_fixes_d_e.py), restored afterwards."""
    load_emulated_schema(service_role_bypassrls=False, fc_metrics_trigger=True)
    load_reference_data()
    yield
    pipeline_sql("DELETE FROM profiles")  # rows the old CHECKs reject would block the reverse
    set_fixes("0004")
    pipeline_sql("DROP TRIGGER IF EXISTS update_fc_metrics_trigger ON profiles")
    pipeline_sql("ALTER ROLE service_role NOBYPASSRLS")
    restore_checks()
    pipeline_sql("DROP SCHEMA IF EXISTS opsportal CASCADE")


def constraint_defs() -> dict[str, str]:
    return dict(
        pipeline_sql(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = 'public.profiles'::regclass AND contype = 'c'",
            fetch="all",
        )
    )


def trigger_def() -> str | None:
    row = pipeline_sql(
        "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgname = 'update_fc_metrics_trigger'",
        fetch="one",
    )
    return row[0] if row else None


def policy_count() -> int:
    return pipeline_sql(
        "SELECT count(*) FROM pg_policies WHERE schemaname = 'public' AND tablename = 'profiles'"
        " AND policyname = %s",
        [POLICY],
        "one",
    )[0]


def recorded() -> list[tuple[str, str]]:
    return pipeline_sql(
        "SELECT app, name FROM opsportal.django_migrations ORDER BY app, name", fetch="all"
    )


def pipeline_tables() -> list[tuple[str, str]]:
    return pipeline_sql(
        "SELECT schemaname, tablename FROM pg_tables"
        " WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2",
        fetch="all",
    )


def test_rolling_back_one_fix_leaves_the_others_and_their_objects(rebuilt):
    assert executor.applied() == set()
    original_checks, original_trigger = constraint_defs(), trigger_def()
    assert executor.run("A") and executor.run("D") and executor.run("E")
    assert executor.applied() == {"A", "D", "E"}
    checks, trigger = constraint_defs(), trigger_def()
    assert checks != original_checks and "pg_trigger_depth() < 1" in trigger
    assert policy_count() == 1

    assert executor.run("A", reverse=True)
    assert executor.applied() == {"D", "E"}
    assert policy_count() == 0
    assert constraint_defs() == checks and trigger_def() == trigger
    # Twice: nothing to do, and says so.
    assert executor.run("A", reverse=True) is False
    assert executor.run("D") is False

    # D alone, in the middle: A (re-applied) and E stay.
    assert executor.run("A")
    assert executor.run("D", reverse=True)
    assert executor.applied() == {"A", "E"}
    assert constraint_defs() == original_checks
    assert trigger_def() == trigger and policy_count() == 1

    # E alone: the trigger is back as it was, the others untouched.
    assert executor.run("D")
    assert executor.run("E", reverse=True)
    assert executor.applied() == {"A", "D"}
    assert trigger_def() == original_trigger and constraint_defs() == checks
    assert policy_count() == 1
    assert executor.is_applied("A") and not executor.is_applied("E")
    with pytest.raises(executor.UnknownFix):
        executor.run("B")


def test_the_pipeline_database_records_only_the_fixes(rebuilt):
    executor.run("A")
    executor.run("E")
    rows = recorded()
    assert rows == [
        ("pipeline_fixes", executor.FIXES["A"]),
        ("pipeline_fixes", executor.FIXES["E"]),
    ]
    assert {app for app, _ in rows} == {"pipeline_fixes"}  # no remediation, auth, admin, ...
    # The bookkeeping lives in the portal's schema, never in public.
    assert pipeline_sql("SELECT to_regclass('public.django_migrations')", fetch="one")[0] is None


def test_migrate_on_the_pipeline_database_is_refused_and_leaves_nothing(rebuilt):
    executor.run("A")  # the recorder's table exists, as in production
    tables, rows = pipeline_tables(), recorded()
    with pytest.raises(CommandError, match="The pipeline database takes no portal migrations"):
        call_command("migrate", database="pipeline", interactive=False, stdout=StringIO())
    assert pipeline_tables() == tables
    assert recorded() == rows
    assert executor.applied() == {"A"}


def test_migrate_on_the_default_database_never_lists_the_fixes():
    out = StringIO()
    call_command("showmigrations", stdout=out)
    listing = out.getvalue()
    assert "remediation" in listing and "0002_run_kinds_and_audit_trigger" in listing
    assert "pipeline_fixes" not in listing
    for name in executor.FIXES.values():
        assert name not in listing
    plan = StringIO()
    call_command("migrate", "remediation", "zero", plan=True, stdout=plan)
    text = plan.getvalue()
    assert "remediation.0002_run_kinds_and_audit_trigger" in text  # the plan is listed
    assert "pipeline_fixes" not in text and "fix_a" not in text
    with pytest.raises(CommandError, match="does not have migrations"):
        call_command("migrate", "pipeline_fixes", plan=True, stdout=StringIO())


def test_manage_py_fix_prints_records_and_audits(rebuilt):
    make_session()  # an orphan: the evidence diagnoses it before and after
    out = StringIO()
    call_command("fix", "status", stdout=out)
    assert out.getvalue().splitlines() == [f"{executor.TITLES[f]}: not applied" for f in "ADE"]
    assert RunbookRecord.objects.count() == 0

    out = StringIO()
    call_command("fix", "apply", "A", stdout=out)
    assert out.getvalue().startswith(f"Fix A applied ({executor.FIXES['A']} on the pipeline")
    # Fix A lets the write past RLS; the CHECK constraints (Fix D) stop it next.
    assert out.getvalue().rstrip().endswith("Test session now: check 23514")
    record = RunbookRecord.objects.get(kind="change")
    assert record.label == "cli: fix apply A" and record.created_by_name == "cli"
    assert record.results["diagnosis_before"]["category"] == "rls"
    assert record.results["diagnosis_after"]["category"] == "check"
    event = AuditEvent.objects.get(action="runbook.change")
    assert event.actor == "cli" and event.target == "cli: fix apply A"

    out = StringIO()
    call_command("fix", "status", stdout=out)
    assert f"{executor.TITLES['A']}: applied" in out.getvalue()
    assert f"{executor.TITLES['D']}: not applied" in out.getvalue()

    out = StringIO()
    call_command("fix", "rollback", "A", stdout=out)
    assert out.getvalue().startswith("Fix A rolled back")
    assert "Test session now: rls 42501" in out.getvalue()
    assert executor.applied() == set()
    assert RunbookRecord.objects.filter(kind="change").count() == 2
    assert AuditEvent.objects.filter(action="runbook.change").count() == 2
    assert RunbookRecord.objects.filter(label="cli: fix rollback A").exists()

    with pytest.raises(CommandError, match="apply needs a fix name"):
        call_command("fix", "apply", stdout=StringIO())
