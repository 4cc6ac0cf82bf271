"""Run rollback as its own run: exact restore, conflicts left alone, redelivery safe, refusals, CLI."""

from __future__ import annotations

import json
import secrets
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from remediation import jobs
from remediation.jobs.rollback import _restore_one
from remediation.management.commands.backfill import Command as BackfillCommand
from remediation.models import AuditEvent, BackfillItem, BackfillRun
from remediation.selectors.triggers import rewritten_columns
from tests.factories import make_session, pipeline_sql, rollback_run

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


def _changed_columns(before, after):
    """The names of the columns that differ, per session."""
    return {sid: sorted(cols) for sid, cols in _diff(before, after).items()}


def _not_restored(variant, ids):
    """What a rollback cannot put back on `variant`, per session: on the rebuilt variant
    two BEFORE UPDATE triggers on assessment_sessions set updated_at = now() over the
    restored value (issue 14, item 7); the emulation has no trigger, so nothing."""
    return {sid: ["updated_at"] for sid in ids} if variant.name == "rebuilt" else {}


def test_a_rollback_run_restores_every_created_session_exactly(clear_variant):
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
    assert _changed_columns(before, after) == _not_restored(clear_variant, ids)

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


def test_a_session_changed_since_the_backfill_is_a_conflict_and_left_alone(clear_variant):
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


def test_a_redelivered_rollback_batch_counts_restored_and_restores_nothing_twice(clear_variant):
    ids = [make_session(seed=20 + i) for i in range(3)]
    before = _session_rows(ids)
    run = _backfill(ids)
    rollback = jobs.run_rollback(run.pk, enqueue=False)
    jobs.run_until_done(rollback.pk)
    restored = _session_rows(ids)
    assert _changed_columns(before, restored) == _not_restored(clear_variant, ids)
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
    report = BackfillRun.objects.get(pk=run.pk).rollback_report
    # On the rebuilt variant the restored session row carries the trigger's updated_at; the
    # restore ignores the columns a BEFORE UPDATE trigger rewrites and recognises its rows.
    assert again.state == "succeeded", again.message
    assert again.counts == {"restored": 3}
    assert set(again.items.values_list("outcome", flat=True)) == {"restored"}
    assert report["restored"] == 3 and report["conflicts"] == []
    # No row was written again (xmin unchanged) and the rows are still the pre-images.
    assert _row_versions(ids) == versions
    assert _session_rows(ids) == restored


def test_restore_one_twice_is_restored_both_times(clear_variant):
    sid = make_session(seed=30)
    before = _session_rows([sid])
    run = _backfill([sid])
    source = BackfillItem.objects.get(run=run, session_id=sid)
    rollback = jobs.run_rollback(run.pk, enqueue=False)
    now = timezone.now()
    first = _restore_one(rollback, sid, source, (), now)
    assert (first.outcome, first.reason) == ("restored", "")
    versions = _row_versions([sid])
    source.refresh_from_db()
    # The job passes the columns a trigger rewrites (the rebuilt variant's updated_at).
    ignore = tuple(sorted(rewritten_columns("assessment_sessions")))
    second = _restore_one(rollback, sid, source, ignore, now)
    assert (second.outcome, second.reason) == ("restored", "")
    assert _row_versions([sid]) == versions
    assert _changed_columns(before, _session_rows([sid])) == _not_restored(clear_variant, [sid])
    assert _profile_ids([sid]) == set()
    # No source item: nothing to restore, a failure with its reason (not a conflict).
    missing = _restore_one(rollback, sid, None, (), now)
    assert (missing.outcome, missing.reason) == ("failed", "nothing_to_restore")


def test_run_rollback_refuses_what_it_cannot_roll_back(clear_variant):
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


def test_the_cli_rolls_back_with_backfill_rollback_and_prints_the_report(clear_variant):
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
    assert _changed_columns(before, _session_rows(ids)) == _not_restored(clear_variant, ids)
    assert _profile_ids(ids) == set()
    assert rollback.started_by_name == "cli"
    # Refusals are command errors with the reason.
    with pytest.raises(CommandError, match="no session left to restore"):
        call_command("backfill", "--rollback", str(run.pk), stdout=StringIO())
    with pytest.raises(CommandError, match="no backfill run #999999"):
        call_command("backfill", "--rollback", "999999", stdout=StringIO())


def test_what_a_rollback_leaves_behind_on_each_variant(clear_variant):
    """issue 14, item 7: the report must name what it could not restore. Today's facts in
    the database after a backfill of 3 sessions and its rollback: on the rebuilt variant
    each session row differs from its pre-image in updated_at only (its two BEFORE UPDATE
    triggers set now() over the restored value; the profiles' own BEFORE UPDATE triggers
    do not matter, the created profiles are deleted), and the dashboard_statistics rows
    the three AFTER INSERT triggers on profiles wrote all stay: one row per (day, type
    code) with n = 3 per profile created, 9 in all. The emulation has no trigger and no
    other table: the rows are the pre-images, whole."""
    ids = [make_session(seed=70 + i) for i in range(3)]
    before = _session_rows(ids)
    run = _backfill(ids)
    assert run.created == 3
    rollback_run(run.pk)

    after = _session_rows(ids)
    assert _profile_ids(ids) == set()
    if clear_variant.name == "rebuilt":
        assert _changed_columns(before, after) == {sid: ["updated_at"] for sid in ids}
        for sid in ids:  # rewritten by the trigger after the restore, so later than before
            assert after[sid]["updated_at"] > before[sid]["updated_at"]
        day_types = pipeline_sql("SELECT count(*), sum(n) FROM dashboard_statistics", fetch="one")
        assert day_types[1] == 9  # the profiles are gone; their statistics are not
        assert day_types[0] == len({(r[0], r[1]) for r in _written_types(run)})
    else:
        assert _changed_columns(before, after) == {}
        assert pipeline_sql("SELECT to_regclass('public.dashboard_statistics')", fetch="one") == (
            None,
        )


def _written_types(run):
    """(day, type code) of each profile the run created, from its finalize attempts."""
    from remediation.models import FinalizeAttempt

    return [
        (a.started_at.date(), a.type_code)
        for a in FinalizeAttempt.objects.filter(run_id=run.pk, outcome="created")
    ]
