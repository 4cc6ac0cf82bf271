"""A refused fix changes nothing at all, says why without a traceback (the rows as links to
their sessions, with a total), and is recorded: a RunbookRecord(kind="change") and an
AuditEvent with outcome "refused". From the runbook page and from `manage.py fix`."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.urls import reverse

from remediation.dev.emulation import load_emulated_schema
from remediation.fixes import executor
from remediation.fixes.refusal import ROW_CAP, FixRefused
from remediation.models import AuditEvent, RunbookRecord
from remediation.services.fixes import fix_apply
from tests.factories import (
    held_elsewhere,
    load_reference_data,
    make_session,
    pipeline_sql,
    restore_checks,
    set_fixes,
)

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)
NEURO = "profiles_overlay_neuro_check"


@pytest.fixture
def rebuilt(pipeline_db):
    """The database rebuilt from the migrations (the CHECKs and the recursive trigger),
    with Fixes A, D and E applied; restored afterwards."""
    load_emulated_schema(service_role_bypassrls=False, fc_metrics_trigger=True)
    load_reference_data()
    set_fixes("0008")
    yield
    pipeline_sql("DELETE FROM profiles")
    set_fixes("0004")
    pipeline_sql("DROP TRIGGER IF EXISTS update_fc_metrics_trigger ON profiles")
    pipeline_sql("ALTER ROLE service_role NOBYPASSRLS")
    restore_checks()
    pipeline_sql("DROP SCHEMA IF EXISTS opsportal CASCADE")


def snapshot() -> dict[str, list]:
    """Everything a fix could touch, and what is recorded about the fixes."""
    queries = {
        "constraints": "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = 'public.profiles'::regclass ORDER BY 1",
        "triggers": "SELECT tg.tgname, pg_get_triggerdef(tg.oid), pg_get_functiondef(tg.tgfoid)"
        " FROM pg_trigger tg WHERE tg.tgrelid = 'public.profiles'::regclass"
        " AND NOT tg.tgisinternal ORDER BY 1",
        "policies": "SELECT policyname, cmd, roles::text, qual, with_check, permissive"
        " FROM pg_policies WHERE tablename = 'profiles' ORDER BY 1",
        "recorded": "SELECT app, name FROM opsportal.django_migrations ORDER BY 1, 2",
        "preimages": "SELECT fix, object, definition FROM opsportal.fix_preimages ORDER BY 1, 2",
    }
    return {k: pipeline_sql(q, fetch="all") for k, q in queries.items()}


def violating_profiles(n: int) -> list[str]:
    """n profiles written after Fix D that the old overlay_neuro constraint rejects."""
    sids = [make_session(seed=i) for i in range(n)]
    for sid in sids:
        pipeline_sql(
            "INSERT INTO profiles (session_id, overlay_neuro, overlay_state, fc_coverage_bucket)"
            " VALUES (%s, 'none', '0', 'None')",
            [sid],
        )
    return sids


def test_a_refused_rollback_of_fix_d_changes_nothing_and_names_the_rows(rebuilt):
    sids = violating_profiles(3)
    before = snapshot()
    assert executor.applied() == {"A", "D", "E"}
    with pytest.raises(FixRefused) as refused:
        executor.execute("D", reverse=True)
    assert snapshot() == before  # constraints, triggers, policies, recorded fixes, pre-images
    assert executor.applied() == {"A", "D", "E"}  # E was not rolled back with it
    neuro = next(v for v in refused.value.violations if v.constraint == NEURO)
    assert neuro.total == 3 and sorted(s for _, s in neuro.rows) == sorted(sids)
    assert refused.value.reason == "violations"
    assert "Fix D cannot be rolled back" in refused.value.message and NEURO in refused.value.message

    result = fix_apply("D", reverse=True)
    assert result["outcome"] == "refused" and result["change"].startswith("Fix D rollback refused")
    assert result["refusal"]["total"] >= 3
    assert snapshot() == before


def test_the_rollback_goes_through_once_the_rows_are_gone(rebuilt):
    violating_profiles(1)
    with pytest.raises(FixRefused):
        executor.run("D", reverse=True)
    pipeline_sql("DELETE FROM profiles")
    assert executor.run("D", reverse=True)
    assert executor.applied() == {"A", "E"}


def test_manage_py_fix_rollback_d_refused_exits_non_zero_and_is_recorded(rebuilt):
    violating_profiles(2)
    before = snapshot()
    with pytest.raises(CommandError, match=r"Fix D rollback refused: Fix D cannot be rolled back"):
        call_command("fix", "rollback", "D", stdout=StringIO())
    assert snapshot() == before
    record = RunbookRecord.objects.get(kind="change")
    assert record.results["outcome"] == "refused" and record.label == "cli: fix rollback D"
    event = AuditEvent.objects.get(action="runbook.change")
    assert event.outcome == "refused" and event.detail["refusal"]["fix"] == "D"


def test_the_page_shows_the_refusal_with_links_and_records_it(client, engineer, rebuilt):
    sids = violating_profiles(ROW_CAP + 5)
    before = snapshot()
    client.force_login(engineer)
    resp = client.post(
        reverse("admin:runbook_action", args=["rollback_d"]), {"confirm": "yes"}, follow=True
    )
    assert resp.status_code == 200
    body = resp.content.decode()
    assert "Traceback" not in body
    assert "Fix D rollback refused; nothing was changed." in body
    assert f"{NEURO} (CHECK" in body and f"{ROW_CAP + 5} profiles written since" in body
    linked = [
        s for s in sids if reverse("admin:remediation_assessmentsession_change", args=[s]) in body
    ]
    assert len(linked) == ROW_CAP and "and 5 more" in body
    assert snapshot() == before
    record = RunbookRecord.objects.get(kind="change")
    assert record.results["outcome"] == "refused" and record.created_by == engineer
    neuro = next(v for v in record.results["refusal"]["violations"] if v["constraint"] == NEURO)
    assert neuro["total"] == ROW_CAP + 5 and len(neuro["rows"]) == ROW_CAP
    event = AuditEvent.objects.get(action="runbook.change")
    assert event.outcome == "refused" and event.actor == "engineer"
    # The step says the last rollback was refused.
    page = client.get(reverse("admin:runbook")).content.decode()
    assert "the last rollback was refused; nothing changed" in page


def test_a_lock_timeout_is_a_refusal_shown_and_recorded(client, engineer, rebuilt):
    set_fixes("0004")
    before = snapshot()
    client.force_login(engineer)
    # A long reader: reads go on, the ALTER TABLE cannot get its lock.
    with (
        held_elsewhere("LOCK TABLE public.profiles IN ACCESS SHARE MODE"),
        override_settings(PIPELINE_LOCK_TIMEOUT="300ms"),
    ):
        resp = client.post(
            reverse("admin:runbook_action", args=["apply_d"]), {"confirm": "yes"}, follow=True
        )
    body = resp.content.decode()
    assert "Fix D could not be applied: public.profiles is busy (lock timeout after 300ms" in body
    assert snapshot() == before and executor.applied() == set()
    record = RunbookRecord.objects.get(kind="change")
    assert record.results["refusal"]["reason"] == "lock_timeout"
    assert AuditEvent.objects.get(action="runbook.change").outcome == "refused"
