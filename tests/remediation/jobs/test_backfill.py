"""Backfill runs: exactly once, one bad session never stops a batch, pause/cancel, rollback."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from remediation import jobs as bf
from remediation.models import BackfillItem, BackfillRun, FinalizeAttempt
from remediation.services import runs, session_finalize
from tests.factories import (
    held_elsewhere,
    load_reference_data,
    make_session,
    pipeline_sql,
    rollback_run,
)

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def clear(clear_variant):
    """Each test taking it runs on both schema variants with nothing blocking a write
    (committed; the variant is loaded again afterwards, so its own DDL does not leak)."""
    return clear_variant


def _sessions(n, start=0):
    return [make_session(seed=start + i) for i in range(n)]


def _start(ids, **kw):
    return bf.backfill_start(selection="ids", ids=ids, enqueue=False, actor="tester", **kw)


def _profiles(ids):
    return pipeline_sql(
        "SELECT count(*) FROM profiles WHERE session_id = ANY(%s::uuid[])", [ids], "one"
    )[0]


def _snapshot(ids):
    return pipeline_sql(
        "SELECT s.id::text, to_jsonb(s)::text, (SELECT to_jsonb(p)::text FROM profiles p WHERE p.session_id = s.id)"
        " FROM assessment_sessions s WHERE s.id = ANY(%s::uuid[]) ORDER BY s.id",
        [ids],
        "all",
    )


def test_a_backfill_creates_each_profile_once_and_a_second_run_creates_nothing(clear):
    ids = _sessions(7)
    run = bf.run_until_done(_start(ids, batch_size=3).pk)
    assert run.state == "succeeded"
    assert (run.processed, run.created, run.failed, run.existing) == (7, 7, 0, 0)
    assert _profiles(ids) == 7
    assert set(run.items.values_list("outcome", flat=True)) == {"created"}
    # Each session's attempt is recorded too (the health figures count them), with its events.
    attempts = FinalizeAttempt.objects.filter(run_id=run.pk)
    assert attempts.count() == 7 and set(attempts.values_list("outcome", flat=True)) == {"created"}
    assert "fc_fallback_legacy" in [e["name"] for e in attempts.first().events]
    again = bf.run_until_done(_start(ids, batch_size=3).pk)
    assert (again.created, again.existing) == (0, 7)
    assert _profiles(ids) == 7


def test_the_window_selection_takes_orphans_completed_in_the_window(clear):
    now = timezone.now()
    inside = [make_session(seed=i, completed_at=now - timedelta(days=2)) for i in range(3)]
    outside = make_session(seed=9, completed_at=now - timedelta(days=40))
    run = bf.backfill_start(
        selection="window",
        params={"completed_from": (now - timedelta(days=7)).date().isoformat()},
        enqueue=False,
    )
    assert sorted(str(s) for s in run.items.values_list("session_id", flat=True)) == sorted(inside)
    bf.run_until_done(run.pk)
    assert _profiles(inside) == 3 and _profiles([outside]) == 0


def test_failures_are_failures_and_one_bad_session_never_stops_a_batch(schema_variant):
    load_reference_data()  # each variant as loaded: its first blocker refuses every write
    ids = _sessions(4)
    bad = make_session(seed=50, answers={20: "Agree"})
    unknown = "00000000-0000-4000-8000-0000000000aa"
    # An id that is no session is refused before anything starts, named in the error.
    with pytest.raises(bf.RunError, match=f"{unknown} is not a session in the pipeline"):
        _start([*ids, unknown])
    # A session deleted after the run started fails inside the run, alone.
    gone = make_session(seed=51)
    run = _start([*ids, bad, gone], batch_size=10)
    pipeline_sql("DELETE FROM assessment_sessions WHERE id = %s", [gone])
    run = bf.run_until_done(run.pk)
    assert run.state == "failed"  # every session failed: the run did not succeed
    assert (run.created, run.failed) == (0, 6)
    blocker = schema_variant.first_blocker
    assert run.failed_by_reason == {blocker: 4, "unscorable": 1, "unknown_session": 1}
    refused = run.items.filter(reason=blocker).first()
    assert refused.sqlstate == schema_variant.first_blocker_sqlstate
    words = {"rls": "row-level security", "check": "profiles_fc_coverage_bucket_check"}
    assert words[blocker] in refused.error.lower()


def test_one_refused_row_does_not_undo_the_others(clear):
    ids = _sessions(3)
    # The database refuses exactly one session's profile.
    pipeline_sql(
        "ALTER TABLE profiles ADD CONSTRAINT not_this_one CHECK (session_id <> %s::uuid)", [ids[1]]
    )
    run = bf.run_until_done(_start(ids).pk)
    outcomes = {str(i.session_id): (i.outcome, i.constraint_name) for i in run.items.all()}
    assert outcomes[ids[1]] == ("failed", "not_this_one")
    assert outcomes[ids[0]][0] == outcomes[ids[2]][0] == "created"
    assert _profiles(ids) == 2


def test_dry_run_writes_nothing(clear):
    ids = _sessions(3)
    before = _snapshot(ids)
    run = bf.run_until_done(_start(ids, dry_run=True).pk)
    assert (run.skipped, run.created) == (3, 0)
    assert "would create" in run.items.first().error
    assert _snapshot(ids) == before


@pytest.mark.usefixtures("one_lane")
def test_pause_and_cancel_take_effect_within_one_batch(clear):
    ids = _sessions(6)
    run = _start(ids, batch_size=2)
    assert bf.process_batch(run.pk, run.batch_token, enqueue_next=False) == "next"
    runs.run_pause(run.pk)
    run.refresh_from_db()
    assert bf.process_batch(run.pk, run.batch_token, enqueue_next=False) == "paused"
    run.refresh_from_db()
    assert (run.state, run.processed) == ("paused", 2)
    with pytest.raises(bf.IllegalTransition):
        bf.transition(run.pk, "running")
    runs.run_resume(run.pk)
    run.refresh_from_db()
    assert bf.process_batch(run.pk, run.batch_token, enqueue_next=False) == "next"
    runs.run_cancel(run.pk)
    run = bf.run_until_done(run.pk)
    assert (run.state, run.processed) == ("cancelled", 4)
    assert _profiles(ids) == 4


@pytest.mark.usefixtures("one_lane")
def test_a_stale_or_duplicate_delivery_does_nothing(clear):
    ids = _sessions(2)
    run = _start(ids, batch_size=1)
    token = run.batch_token
    assert bf.process_batch(run.pk, token, enqueue_next=False) == "next"
    assert bf.process_batch(run.pk, token, enqueue_next=False) == "stale"  # delivered twice
    run.refresh_from_db()
    assert run.processed == 1


def test_maintenance_pauses_the_run(clear):
    ids = _sessions(2)
    pipeline_sql(
        'UPDATE scoring_config SET value = \'{"status": "maintenance", "message": "IR-07"}\''
        " WHERE key = 'system_status'"
    )
    run = bf.run_until_done(_start(ids).pk)
    assert run.state == "paused" and "maintenance" in run.message
    assert _profiles(ids) == 0


def test_rollback_restores_the_touched_rows_exactly(clear):
    keep = make_session(seed=100)
    ids = _sessions(3)
    bf.run_until_done(_start([keep]).pk)  # a profile that exists before the run below
    before = _snapshot([keep, *ids])
    run = bf.run_until_done(_start([keep, *ids], rescore=True).pk)
    assert (run.created, run.rescored) == (3, 1)
    assert _snapshot([keep, *ids]) != before
    report = rollback_run(run.pk)
    assert report["restored"] == 4 and report["conflicts"] == []
    after = _snapshot([keep, *ids])
    if clear.name == "rebuilt":
        # issue 14, item 7: the BEFORE UPDATE triggers set updated_at = now() over the
        # restored session and re-scored profile; every other column is the pre-image.
        def without_updated_at(rows):
            return [
                [None if v is None else {**json.loads(v), "updated_at": None} for v in row[1:]]
                for row in rows
            ]

        assert after != before
        assert without_updated_at(after) == without_updated_at(before)
    else:
        assert after == before
    assert _profiles([keep]) == 1  # the profile it did not create survives


def test_rollback_refuses_rows_changed_since_and_lists_them(clear):
    ids = _sessions(2)
    run = bf.run_until_done(_start(ids).pk)
    pipeline_sql(
        "UPDATE profiles SET confidence = 'edited by hand' WHERE session_id = %s", [ids[0]]
    )
    report = rollback_run(run.pk)
    assert report["restored"] == 1
    assert report["conflicts"] == [{"session_id": ids[0], "changed": ["profile"]}]
    assert _profiles([ids[0]]) == 1 and _profiles([ids[1]]) == 0


def test_retry_failed_puts_failures_back(clear):
    ids = _sessions(2)
    pipeline_sql(
        "ALTER TABLE profiles ADD CONSTRAINT not_yet CHECK (session_id <> %s::uuid)", [ids[0]]
    )
    run = bf.run_until_done(_start(ids).pk)
    assert (run.created, run.failed) == (1, 1)
    pipeline_sql("ALTER TABLE profiles DROP CONSTRAINT not_yet")
    runs.run_retry_failed(run.pk)
    run = bf.run_until_done(run.pk)
    assert (run.state, run.created, run.failed) == ("succeeded", 2, 0)
    assert _profiles(ids) == 2


def test_bad_selections_are_clear_errors():
    with pytest.raises(bf.RunError, match="line 2: 'not-an-id' is not a session id"):
        bf.parse_id_list("session_id\nnot-an-id\n")
    # A second value on a line is an id too (nothing is dropped): "x" is reported.
    with pytest.raises(bf.RunError, match="line 1: 'x' is not a session id"):
        bf.parse_id_list("0e3b1c7a-1d2e-4b8f-9a0b-123456789abc,x\n")
    with pytest.raises(bf.RunError, match="window needs"):
        bf.backfill_start(selection="window", params={}, enqueue=False)
    with pytest.raises(bf.RunError, match="not a date"):
        bf.backfill_start(selection="window", params={"completed_from": "soon"}, enqueue=False)
    with pytest.raises(bf.RunError, match="batch size"):
        bf.backfill_start(
            selection="ids",
            ids=["0e3b1c7a-1d2e-4b8f-9a0b-123456789abc"],
            batch_size=0,
            enqueue=False,
        )
    assert BackfillRun.objects.count() == 0


@pytest.mark.usefixtures("one_lane")
def test_task_arguments_carry_ids_only(clear):
    from django_q.models import OrmQ

    ids = _sessions(1)
    run = bf.backfill_start(selection="ids", ids=ids, enqueue=False)
    bf.enqueue_batch(run.pk, run.batch_token)
    payloads = [q.task for q in OrmQ.objects.all()]
    assert payloads, "nothing was enqueued"
    for task in payloads:
        assert task["func"] == "remediation.tasks.run_batch"
        assert task["args"] == (run.pk, run.batch_token)
        assert not task["kwargs"]


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_two_concurrent_runs_over_overlapping_selections(clear_variant):
    ids = _sessions(30)
    a = _start(ids[:20], batch_size=5)
    b = _start(ids[10:], batch_size=5)
    errors = []

    def drive(run_id):
        try:
            bf.run_until_done(run_id)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=drive, args=(r.pk,)) for r in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.state == b.state == "succeeded"
    # Every session got exactly one profile, created by exactly one of the runs.
    assert _profiles(ids) == 30
    created = list(
        BackfillItem.objects.filter(outcome="created").values_list("session_id", flat=True)
    )
    assert len(created) == len(set(created)) == 30
    assert a.created + b.created == 30 and a.existing + b.existing == 10


def test_setup_schedules_is_idempotent():
    from django.core.management import call_command
    from django_q.models import Schedule

    call_command("setup_schedules")
    call_command("setup_schedules")
    watchdog = Schedule.objects.get(name="backfill-watchdog")
    assert Schedule.objects.filter(name="backfill-watchdog").count() == 1
    assert watchdog.func == "remediation.tasks.backfill_watchdog" and watchdog.minutes == 1


@pytest.mark.usefixtures("one_lane")
def test_the_watchdog_leaves_live_runs_alone(clear):
    from django.test import override_settings

    ids = _sessions(2)
    run = _start(ids, batch_size=1)
    bf.process_batch(run.pk, run.batch_token, enqueue_next=False)
    with override_settings(BACKFILL_STALE_SECONDS=3600):
        assert bf.runs_watchdog() == []
    run.refresh_from_db()
    assert run.state == "running"


@pytest.mark.usefixtures("one_lane")
@pytest.mark.django_db(databases="__all__", transaction=True)
def test_a_run_and_a_support_engineer_finalizing_by_hand_never_write_one_session_twice(
    clear_variant,
):
    ids = _sessions(4)
    contested = ids[1]
    run = _start(ids, batch_size=4)
    # The support engineer's finalize holds the session's claim (its row lock)...
    with held_elsewhere("SELECT 1 FROM assessment_sessions WHERE id = %s FOR UPDATE", [contested]):
        # ...so the batch skips it (busy) and writes the others.
        bf.process_batch(run.pk, run.batch_token, enqueue_next=False)
    held = BackfillItem.objects.get(run=run, session_id=contested)
    assert (held.outcome, held.tries, held.ordinal) == ("pending", 1, 4)  # put back at the end
    run.refresh_from_db()
    assert (run.processed, run.created) == (3, 3)
    by_hand = session_finalize(session_id=contested, actor="support")
    assert by_hand.outcome == "created"
    run = bf.run_until_done(run.pk)  # the busy session comes round again
    item = BackfillItem.objects.get(run=run, session_id=contested)
    assert item.outcome == "existing" and str(item.profile_id) == str(by_hand.profile_id)
    assert (run.created, run.existing, run.failed) == (3, 1, 0)
    assert _profiles(ids) == 4
