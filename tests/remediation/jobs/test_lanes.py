"""Lanes (issue 16, item 1): a backfill has BACKFILL_LANES chains of tasks, lane k taking
the items whose ordinal % lanes == k, so that many batches are in flight at once on
disjoint sessions; each lane has its own token and advisory lock; the last lane ends the
run; a pause takes effect when no other lane is in a batch; requeued items keep their
lane; a lane's task starts by recording only its own lane's ledger entries."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone
from django_q.models import OrmQ

from remediation import jobs as bf
from remediation.jobs import engine, ledger
from remediation.jobs.engine import kind_of, tokens
from remediation.models import BackfillRun, FinalizeAttempt
from tests.cluster import kill_cluster, start_cluster, wait_for
from tests.factories import held_elsewhere, make_session, pipeline_sql

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


def _start(ids, **kw):
    return bf.backfill_start(selection="ids", ids=ids, enqueue=False, actor="t", **kw)


def _outcomes(run) -> dict[int, str]:
    return dict(run.items.values_list("ordinal", "outcome"))


def _attempts(run) -> Counter:
    return Counter(
        str(s)
        for s in FinalizeAttempt.objects.filter(run_id=run.pk).values_list("session_id", flat=True)
    )


def _profiles(ids) -> int:
    return pipeline_sql(
        "SELECT count(*) FROM profiles WHERE session_id = ANY(%s::uuid[])", [ids], "one"
    )[0]


def test_each_lane_takes_its_own_items_and_the_last_one_ends_the_run(clear_variant):
    ids = [make_session(seed=i) for i in range(7)]
    run = _start(ids, batch_size=2)
    assert run.lanes == 2 and len(set(tokens(run))) == 2
    first, second = tokens(run)
    # Lane 0 alone: its four items, then it hands the run to lane 1, which has work left.
    assert engine.run_task(run.pk, first, enqueue_next=False) == "lane_done"
    run.refresh_from_db()
    assert run.state == "running"
    assert {n: o for n, o in _outcomes(run).items()} == {
        n: ("created" if n % 2 == 0 else "pending") for n in range(7)
    }
    assert (run.created, run.processed) == (4, 4) and _profiles(ids) == 4
    assert tokens(run)[1] == second  # lane 0's batches rotate only its own token
    assert engine.run_task(run.pk, second, enqueue_next=False) == "done"
    run.refresh_from_db()
    assert (run.state, run.created, run.processed) == ("succeeded", 7, 7)
    assert _attempts(run) == Counter(ids) and _profiles(ids) == 7


def test_a_throttled_run_and_a_single_session_have_one_lane(clear_variant):
    ids = [make_session(seed=i) for i in range(3)]
    assert _start(ids, throttle_per_minute=6000).lanes == 1
    assert _start(ids[:1]).lanes == 1


def test_a_pause_waits_until_no_other_lane_is_in_a_batch(clear_variant):
    ids = [make_session(seed=i) for i in range(6)]
    run = _start(ids, batch_size=1)
    first, second = tokens(run)
    assert bf.process_batch(run.pk, first, enqueue_next=False) == "next"
    bf.transition(run.pk, "pausing")
    first = tokens(BackfillRun.objects.get(pk=run.pk))[0]
    # Another worker is in a batch of lane 1 (it holds the lane's advisory lock).
    lane_lock = "SELECT pg_advisory_lock(%s, %s)"
    with held_elsewhere(lane_lock, [engine.LANE_LOCK_CLASS + 1, run.pk], using="default"):
        assert bf.process_batch(run.pk, first, enqueue_next=False) == "pausing"
        assert BackfillRun.objects.get(pk=run.pk).state == "pausing"
        # Lane 0 did not take a batch meanwhile: one session written, no more.
        assert _profiles(ids) == 1
    assert bf.process_batch(run.pk, first, enqueue_next=False) == "paused"
    paused = BackfillRun.objects.get(pk=run.pk)
    assert paused.state == "paused" and _profiles(ids) == 1
    # Resuming enqueues one task per lane, each with a new token.
    OrmQ.objects.all().delete()
    bf.transition(run.pk, "enqueued", new_token=True)
    resumed = BackfillRun.objects.get(pk=run.pk)
    queued = sorted(tuple(q.args()) for q in OrmQ.objects.all())
    assert queued == sorted((run.pk, t) for t in tokens(resumed))
    assert not set(tokens(resumed)) & {first, second}


def test_requeued_items_keep_their_lane_past_the_end(clear_variant):
    ids = [make_session(seed=i) for i in range(6)]
    run = _start(ids, batch_size=6)
    items = list(run.items.filter(ordinal__in=[0, 1, 3]).order_by("ordinal"))
    engine.requeue(run, items)
    after = dict(run.items.values_list("session_id", "ordinal"))
    moved = [after[i.session_id] for i in items]
    assert [o % 2 for o in moved] == [0, 1, 1]
    assert min(moved) > 5 and len(set(after.values())) == 6
    assert run.cursor <= min(moved)


def test_a_lane_starting_records_only_its_own_ledger_entries(clear_variant):
    """Lane 1 is between its two commits (pipeline written, portal not yet): lane 0's task
    must not record lane 1's entries (lane 1 records them itself, once)."""
    ids = [make_session(seed=i) for i in range(6)]
    run = _start(ids, batch_size=6)
    first, second = tokens(run)
    BackfillRun.objects.filter(pk=run.pk).update(state="running")
    run.refresh_from_db()
    odd = list(run.items.filter(ordinal__in=[1, 3, 5]).order_by("ordinal"))
    kind_of(run).process(run, odd, timezone.now())  # lane 1's pipeline commit, no record
    assert len(ledger.read(run.ledger_key)) == 3
    assert engine.run_task(run.pk, first, enqueue_next=False) == "lane_done"
    assert len(ledger.read(run.ledger_key)) == 3, "lane 0 left lane 1's entries alone"
    assert set(run.items.filter(outcome="pending").values_list("ordinal", flat=True)) == {1, 3, 5}
    assert engine.run_task(run.pk, second, enqueue_next=False) == "done"
    run.refresh_from_db()
    assert (run.state, run.created) == ("succeeded", 6)
    assert _attempts(run) == Counter(ids), "one attempt per session"
    assert not ledger.read(run.ledger_key) and _profiles(ids) == 6


def test_two_lanes_through_a_real_cluster_are_in_flight_at_once(clear_variant):
    ids = [make_session(seed=i) for i in range(80)]
    connections.close_all()
    proc = start_cluster(Q_WORKERS="2", BACKFILL_LANES="2")
    try:
        run = bf.backfill_start(selection="ids", ids=ids, batch_size=5, actor="t")
        done = wait_for(
            lambda: (r := BackfillRun.objects.get(pk=run.pk)).state in bf.STOPPED and r,
            120,
            "the run to end",
        )
    finally:
        kill_cluster(proc)
    assert (done.state, done.created, done.lanes) == ("succeeded", 80, 2), done.message
    assert _attempts(done) == Counter(ids) and _profiles(ids) == 80
    # Batches of the two lanes overlapped in time: one attempt window per batch and lane.
    ordinal = dict(done.items.values_list("session_id", "ordinal"))
    windows: dict[int, set] = {0: set(), 1: set()}
    for sid, started, finished in FinalizeAttempt.objects.filter(run_id=done.pk).values_list(
        "session_id", "started_at", "finished_at"
    ):
        windows[ordinal[sid] % 2].add((started, finished))
    assert any(a0 < b1 and a1 < b0 for a0, b0 in windows[0] for a1, b1 in windows[1]), (
        "no batch of lane 0 overlapped a batch of lane 1"
    )


def test_the_figures_after_every_batch_are_the_items_figures(clear_variant):
    """A batch's record moves the figures by its items' changes: after every batch they
    equal a recount from the items (created, existing, failed by reason)."""
    ids = [make_session(seed=i) for i in range(5)]
    had = make_session(seed=20)
    assert bf.run_until_done(_start([had]).pk).created == 1
    abandoned = make_session(seed=21, status="abandoned")
    gone = make_session(seed=22)  # deleted once the run started (an unknown id is refused)
    run = _start([*ids, had, abandoned, gone], batch_size=2)
    pipeline_sql("DELETE FROM assessment_sessions WHERE id = %s", [gone])
    seen = []

    def compare(run_id):
        now = BackfillRun.objects.get(pk=run_id)
        figures = (now.counts, now.failed_by_reason, now.processed, now.created, now.failed)
        engine.settle(now)
        assert figures == (now.counts, now.failed_by_reason, now.processed, now.created, now.failed)
        seen.append(now.processed)

    for token in tokens(run):
        engine.run_task(run.pk, token, enqueue_next=False, on_batch=compare)
    done = BackfillRun.objects.get(pk=run.pk)
    assert len(seen) >= 4 and seen[-1] == 8
    assert (done.state, done.created, done.existing, done.failed) == (
        "finished_with_failures",
        5,
        1,
        2,
    )
    assert done.failed_by_reason == {"abandoned": 1, "unknown_session": 1}


def test_the_admin_and_the_cli_start_a_backfill_with_the_same_defaults(clear_variant, admin_client):
    """What the benchmark measures through the CLI is what a backfill started from the admin
    gets: batches of 200, BACKFILL_LANES lanes."""
    from django.core.management import call_command
    from django.urls import reverse

    from remediation.admin.backfills import BackfillParamsForm

    ids = [make_session(seed=i) for i in range(4)]
    defaults = {
        name: field.initial
        for name, field in BackfillParamsForm.base_fields.items()
        if field.initial is not None
    }
    resp = admin_client.post(
        reverse("admin:remediation_orphanedsession_changelist"),
        {"action": "backfill_selected", "_selected_action": ids[:2], "confirm": "yes", **defaults},
    )
    assert resp.status_code == 302, resp.content.decode()[:2000]
    from_admin = BackfillRun.objects.latest("pk")
    call_command("backfill", "--ids", *ids[2:], "--no-wait")
    from_cli = BackfillRun.objects.latest("pk")
    assert from_admin.pk != from_cli.pk
    for run in (from_admin, from_cli):
        assert (run.batch_size, run.lanes, run.backend) == (200, 2, "local")
        assert len(tokens(run)) == 2


LANE_LOCK = "SELECT pg_advisory_lock(%s, %s)"


def _lane_key(lane: int) -> int:
    return engine.LOCK_CLASS if lane == 0 else engine.LANE_LOCK_CLASS + lane


def test_a_duplicate_delivery_of_a_lane_in_a_batch_neither_runs_nor_stops_the_run(clear_variant):
    ids = [make_session(seed=i) for i in range(4)]
    run = _start(ids, batch_size=1)
    first, _ = tokens(run)
    bf.transition(run.pk, "running")
    bf.transition(run.pk, "pausing")
    # The first delivery of lane 0's token is inside its batch (it holds the lane's lock).
    with held_elsewhere(LANE_LOCK, [_lane_key(0), run.pk], using="default"):
        assert bf.process_batch(run.pk, first, enqueue_next=False) == "busy"
        assert BackfillRun.objects.get(pk=run.pk).state == "pausing"
    assert bf.process_batch(run.pk, first, enqueue_next=False) == "paused"
    assert _profiles(ids) == 0


def test_a_pause_whose_worker_died_mid_batch_ends_paused_not_resumed(clear_variant, settings):
    ids = [make_session(seed=i) for i in range(6)]
    run = _start(ids, batch_size=1)
    first, second = tokens(run)
    assert bf.process_batch(run.pk, first, enqueue_next=False) == "next"
    bf.transition(run.pk, "pausing")
    with held_elsewhere(LANE_LOCK, [_lane_key(0), run.pk], using="default"):
        # Lane 1 reaches its boundary while lane 0 is in a batch: its chain ends, the run
        # is still pausing (lane 0 is writing).
        assert bf.process_batch(run.pk, second, enqueue_next=False) == "pausing"
        assert BackfillRun.objects.get(pk=run.pk).state == "pausing"
    # Lane 0's worker died (its lock went with its connection): the watchdog stops the run
    # as asked, and resumes nothing.
    BackfillRun.objects.filter(pk=run.pk).update(
        heartbeat_at=timezone.now() - timedelta(minutes=10)
    )
    settings.BACKFILL_STALE_SECONDS = 60
    OrmQ.objects.all().delete()
    assert bf.runs_watchdog() == []
    stopped = BackfillRun.objects.get(pk=run.pk)
    assert stopped.state == "paused" and not OrmQ.objects.exists()
    assert _profiles(ids) == 1


def test_a_stopped_run_with_a_lane_still_in_a_batch_is_not_rolled_back_or_retried(clear_variant):
    from remediation.services import runs

    ids = [make_session(seed=i) for i in range(4)]
    run = bf.run_until_done(_start(ids, batch_size=1).pk)
    assert run.state == "succeeded"
    BackfillRun.objects.filter(pk=run.pk).update(state="cancelled")
    with held_elsewhere(LANE_LOCK, [_lane_key(1), run.pk], using="default"):
        with pytest.raises(bf.RunError, match="still finishing a batch"):
            bf.run_rollback(run.pk, enqueue=False)
        with pytest.raises(bf.RunError, match="still finishing a batch"):
            runs.run_retry_failed(run.pk)
    assert bf.run_rollback(run.pk, enqueue=False).estimated_total == 4
