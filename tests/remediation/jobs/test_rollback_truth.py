"""Rollback tells the truth about triggers (issue 14, item 7), on the rebuilt variant.

There, two BEFORE UPDATE triggers on assessment_sessions set updated_at = now() over the
restored value, and AFTER INSERT triggers on profiles write dashboard_statistics rows that a
rollback does not remove. The confirmation page lists those triggers; the rollback restores
what it can and its report names what it could not.
"""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from remediation import jobs
from remediation.fixes import executor
from remediation.models import BackfillRun
from remediation.selectors.triggers import rewritten_columns, write_triggers
from tests.factories import load_reference_data, make_session, pipeline_sql, rollback_run

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


@pytest.fixture
def rebuilt_writable(load_variant):
    """The rebuilt variant with Fixes D and E applied: every write succeeds there."""
    load_variant("rebuilt")
    load_reference_data()
    executor.run("D")
    executor.run("E")
    yield
    pipeline_sql("DELETE FROM profiles")
    executor.run("E", reverse=True)
    executor.run("D", reverse=True)
    pipeline_sql("DROP SCHEMA IF EXISTS opsportal CASCADE")


def test_the_catalog_reading_finds_what_the_triggers_write(rebuilt_writable):
    by_name = {t.name: t for t in write_triggers()}
    assert (
        "dashboard_statistics"
        in by_name["profiles_dashboard_statistics_insert"].writes_other_tables
    )
    assert rewritten_columns("assessment_sessions") == {"updated_at"}
    assert "updated_at" in rewritten_columns("profiles")


def test_the_rollback_report_names_what_it_could_not_restore(rebuilt_writable, admin_client):
    ids = [make_session(seed=i) for i in range(3)]
    run = jobs.run_until_done(jobs.backfill_start(selection="ids", ids=ids, enqueue=False).pk)
    assert run.created == 3, run.message
    stats = pipeline_sql("SELECT coalesce(sum(n), 0) FROM dashboard_statistics", fetch="one")[0]
    assert stats > 0
    page = admin_client.get(reverse("admin:remediation_backfillrun_change", args=[run.pk]))
    assert b"dashboard_statistics" in page.content and b"rewrites updated_at" in page.content
    report = rollback_run(run.pk)
    assert report["restored"] == 3 and not report["conflicts"]
    # updated_at carries the trigger's now(), not the pre-image's value: said, not hidden.
    assert report["not_restored"]["columns"] == {"assessment_sessions.updated_at": 3}
    assert "dashboard_statistics" in report["not_restored"]["other_tables"]
    assert report["exact"] is False
    # The database agrees: profiles gone, dashboard rows still there.
    assert pipeline_sql("SELECT count(*) FROM profiles", fetch="one")[0] == 0
    remaining = pipeline_sql("SELECT coalesce(sum(n), 0) FROM dashboard_statistics", fetch="one")[0]
    assert remaining == stats
    page = admin_client.get(reverse("admin:remediation_backfillrun_change", args=[run.pk]))
    assert b"What the rollback could not restore" in page.content
    rollback = BackfillRun.objects.get(source_run=run)
    notes = list(rollback.items.values_list("notes", flat=True))
    assert notes == [{"session": ["updated_at"]}] * 3


def test_a_redelivered_rollback_batch_is_not_a_conflict_when_a_trigger_rewrites(rebuilt_writable):
    """is_restored ignores the columns a trigger rewrites on every update."""
    from remediation.jobs.rollback import _restore_one
    from remediation.models import BackfillItem

    sid = make_session()
    run = jobs.run_until_done(jobs.backfill_start(selection="ids", ids=[sid], enqueue=False).pk)
    item = BackfillItem.objects.get(run=run, session_id=sid)
    ignore = tuple(rewritten_columns("assessment_sessions"))
    rollback = jobs.run_rollback(run.pk, enqueue=False)
    assert _restore_one(rollback, sid, item, ignore, timezone.now()).outcome == "restored"
    item.refresh_from_db()
    again = _restore_one(rollback, sid, item, ignore, timezone.now())
    assert again.outcome == "restored", again.explanation


def test_on_the_emulation_the_rollback_is_exact(clear_path):
    ids = [make_session(seed=i) for i in range(2)]
    run = jobs.run_until_done(jobs.backfill_start(selection="ids", ids=ids, enqueue=False).pk)
    report = rollback_run(run.pk)
    assert report["restored"] == 2
    assert report["exact"] is True and report["not_restored"] == {"columns": {}, "other_tables": {}}
