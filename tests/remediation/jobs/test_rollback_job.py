"""Run rollback as its own run: exact restore, conflicts left alone, redelivery safe, refusals, CLI."""

from __future__ import annotations

import json
import secrets
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from remediation import jobs
from remediation.jobs.rollback import _restore_one
from remediation.management.commands.backfill import Command as BackfillCommand
from remediation.models import AuditEvent, BackfillItem, BackfillRun
from tests.factories import make_session, pipeline_sql

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


def _backfill(ids, **kw):
    run = jobs.backfill_start(selection="ids", ids=ids, enqueue=False, actor="tester", **kw)
    return jobs.run_until_done(run.pk)


def _session_rows(ids):
    """Each session row, whole, as PostgreSQL's JSON of it (no column left out)."""
    rows = pipeline_sql(
        "SELECT id::text, to_jsonb(s)::text FROM assessment_sessions s WHERE id = ANY(%s::uuid[])",
        [ids],
        "all",
    )
    return {sid: json.loads(row) for sid, row in rows}


def _profile_ids(ids):
    return {
        str(r[0])
        for r in pipeline_sql(
            "SELECT id FROM profiles WHERE session_id = ANY(%s::uuid[])", [ids], "all"
        )
    }


def _row_versions(ids):
    """xmin of the session and profile rows: it changes with every write to a row."""
    return pipeline_sql(
        "SELECT s.id::text, s.xmin::text,"
        " (SELECT string_agg(p.xmin::text, ',') FROM profiles p WHERE p.session_id = s.id)"
        " FROM assessment_sessions s WHERE s.id = ANY(%s::uuid[]) ORDER BY s.id",
        [ids],
        "all",
    )


def _diff(before, after):
    """The columns that differ, per session (for a readable failure)."""
    out = {}
    for sid, row in before.items():
        other = after.get(sid) or {}
        cols = sorted(k for k in set(row) | set(other) if row.get(k) != other.get(k))
        if cols:
            out[sid] = {c: (row.get(c), other.get(c)) for c in cols}
    return out


def test_a_rollback_run_restores_every_created_session_exactly(clear_path):
    ids = [make_session(seed=i) for i in range(4)]
    before = _session_rows(ids)
    run = _backfill(ids, batch_size=3)
    assert (run.state, run.created) == ("succeeded", 4)
    created_profiles = _profile_ids(ids)
    assert len(created_profiles) == 4
    assert _session_rows(ids) != before  # the backfill did change the sessions

    rollback = jobs.run_rollback(run.pk, enqueue=False)
    assert rollback.kind == "rollback" and rollback.source_run_id == run.pk
    assert rollback.state == "enqueued"
    assert sorted(str(s) for s in rollback.items.values_list("session_id", flat=True)) == sorted(
        ids
    )
    done = jobs.run_until_done(rollback.pk)
    assert done.state == "succeeded", done.message
    assert done.counts == {"restored": 4}
    assert set(done.items.values_list("outcome", flat=True)) == {"restored"}
    assert "4 restored" in done.message

    # The profiles the run created are gone; the session rows are their pre-images, whole.
    assert _profile_ids(ids) == set()
    after = _session_rows(ids)
    assert _diff(before, after) == {}
    assert after == before

    source = BackfillRun.objects.get(pk=run.pk)
    assert source.rollback_report["restored"] == 4
    assert source.rollback_report["rollback_run"] == rollback.pk
    assert source.rollback_report["conflicts"] == [] and source.rollback_report["errors"] == []
    assert source.rolled_back_at is not None
    assert set(source.items.values_list("rolled_back", flat=True)) == {True}
    assert AuditEvent.objects.filter(action="backfill.rollback", target=f"run #{run.pk}").exists()
    # Nothing is left to restore: a second rollback is refused.
    with pytest.raises(jobs.RunError, match="no session left to restore"):
        jobs.run_rollback(run.pk, enqueue=False)


def test_a_session_changed_since_the_backfill_is_a_conflict_and_left_alone(clear_path):
    ids = [make_session(seed=10 + i) for i in range(3)]
    run = _backfill(ids)
    assert run.created == 3
    edited = ids[1]
    pipeline_sql(
        "UPDATE assessment_sessions SET email = 'changed-by-support@example.org' WHERE id = %s",
        [edited],
    )
    edited_row = _session_rows([edited])
    edited_profile = _profile_ids([edited])

    rollback = jobs.run_rollback(run.pk, enqueue=False)
    done = jobs.run_until_done(rollback.pk)
    outcomes = {str(i.session_id): (i.outcome, i.reason) for i in done.items.all()}
    assert outcomes[edited] == ("conflict", "session")
    assert outcomes[ids[0]][0] == outcomes[ids[2]][0] == "restored"

    report = BackfillRun.objects.get(pk=run.pk).rollback_report
    assert report["restored"] == 2
    assert report["conflicts"] == [{"session_id": edited, "changed": ["session"]}]
    # Left alone: the edit and the profile the run wrote are both still there.
    assert _session_rows([edited]) == edited_row
    assert _profile_ids([edited]) == edited_profile and len(edited_profile) == 1
    assert _profile_ids([ids[0], ids[2]]) == set()
    assert not BackfillItem.objects.get(run=run, session_id=edited).rolled_back


def test_a_redelivered_rollback_batch_counts_restored_and_restores_nothing_twice(clear_path):
    ids = [make_session(seed=20 + i) for i in range(3)]
    before = _session_rows(ids)
    run = _backfill(ids)
    rollback = jobs.run_rollback(run.pk, enqueue=False)
    jobs.run_until_done(rollback.pk)
    assert _session_rows(ids) == before
    versions = _row_versions(ids)

    # The worker restored the rows but its record was lost: the batch comes again.
    BackfillItem.objects.filter(run=rollback).update(
        outcome=BackfillItem.Outcome.PENDING, reason="", error=""
    )
    BackfillRun.objects.filter(pk=rollback.pk).update(
        state=BackfillRun.State.RUNNING,
        cursor=0,
        processed=0,
        counts={},
        batch_token=secrets.token_hex(8),
    )
    again = jobs.run_until_done(rollback.pk)
    assert again.state == "succeeded", again.message
    assert again.counts == {"restored": 3}
    assert set(again.items.values_list("outcome", flat=True)) == {"restored"}
    report = BackfillRun.objects.get(pk=run.pk).rollback_report
    assert report["restored"] == 3 and report["conflicts"] == []
    # No row was written again (xmin unchanged) and the rows are still the pre-images.
    assert _row_versions(ids) == versions
    assert _session_rows(ids) == before


def test_restore_one_twice_is_restored_both_times(clear_path):
    sid = make_session(seed=30)
    before = _session_rows([sid])
    run = _backfill([sid])
    source = BackfillItem.objects.get(run=run, session_id=sid)
    first = _restore_one(sid, source)
    assert (first.outcome, first.reason) == ("restored", "")
    versions = _row_versions([sid])
    source.refresh_from_db()
    second = _restore_one(sid, source)
    assert (second.outcome, second.reason) == ("restored", "")
    assert _row_versions([sid]) == versions
    assert _session_rows([sid]) == before and _profile_ids([sid]) == set()
    # No source item: nothing to restore, a failure with its reason (not a conflict).
    missing = _restore_one(sid, None)
    assert (missing.outcome, missing.reason) == ("failed", "nothing_to_restore")


def test_run_rollback_refuses_what_it_cannot_roll_back(clear_path):
    ids = [make_session(seed=40 + i) for i in range(2)]
    dry = _backfill(ids, dry_run=True)
    with pytest.raises(jobs.RunError, match="dry run changed nothing"):
        jobs.run_rollback(dry.pk, enqueue=False)

    active = jobs.backfill_start(selection="ids", ids=ids, enqueue=False, actor="tester")
    assert active.state == "enqueued"
    with pytest.raises(jobs.RunError, match=r"is enqueued: pause or cancel it"):
        jobs.run_rollback(active.pk, enqueue=False)
    done = jobs.run_until_done(active.pk)
    assert done.created == 2

    first = jobs.run_rollback(done.pk, enqueue=False)
    with pytest.raises(jobs.RunError, match=rf"being rolled back already \(run #{first.pk}\)"):
        jobs.run_rollback(done.pk, enqueue=False)
    assert BackfillRun.objects.filter(source_run=done).count() == 1
    with pytest.raises(jobs.RunError, match="is a rollback run; only backfills"):
        jobs.run_rollback(first.pk, enqueue=False)
    jobs.run_until_done(first.pk)
    assert _profile_ids(ids) == set()


def test_the_cli_rolls_back_with_backfill_rollback_and_prints_the_report(clear_path):
    help_text = BackfillCommand().create_parser("manage.py", "backfill").format_help()
    assert "--rollback RUN_ID" in help_text
    ids = [make_session(seed=50 + i) for i in range(2)]
    before = _session_rows(ids)
    run = _backfill(ids)
    out = StringIO()
    call_command("backfill", "--rollback", str(run.pk), stdout=out)
    text = out.getvalue()
    report = json.loads(text[text.index("\n{") :])
    rollback = BackfillRun.objects.get(source_run=run, kind="rollback")
    assert report["restored"] == 2 and report["rollback_run"] == rollback.pk
    assert report == BackfillRun.objects.get(pk=run.pk).rollback_report
    assert "2/2" in text  # the progress bar
    assert _session_rows(ids) == before and _profile_ids(ids) == set()
    assert rollback.started_by_name == "cli"
    # Refusals are command errors with the reason.
    with pytest.raises(CommandError, match="no session left to restore"):
        call_command("backfill", "--rollback", str(run.pk), stdout=StringIO())
    with pytest.raises(CommandError, match="no backfill run #999999"):
        call_command("backfill", "--rollback", "999999", stdout=StringIO())
