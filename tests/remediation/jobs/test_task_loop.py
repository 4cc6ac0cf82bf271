"""One django-q2 task runs batch after batch (issue 16, item 1): no queue hop between
batches; a pause or cancel takes effect at the next batch boundary; the task's budget
(BACKFILL_TASK_SECONDS) ends it and enqueues the next; the health snapshot after a run is
its own task, enqueued, not taken on the run's path."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django_q.models import OrmQ, Task

from remediation import jobs as bf
from remediation.jobs import engine
from remediation.models import BackfillRun, MetricSnapshot
from remediation.tasks import run_batch
from tests.cluster import kill_cluster, start_cluster, wait_for
from tests.factories import make_session, pipeline_sql

# The task loop of one chain (lanes: test_lanes.py).
pytestmark = [
    pytest.mark.django_db(databases="__all__", transaction=True),
    pytest.mark.usefixtures("one_lane"),
]


def _queued() -> list[tuple[str, tuple]]:
    return [(q.func(), tuple(q.args())) for q in OrmQ.objects.order_by("id")]


def _start(ids, **kw):
    return bf.backfill_start(selection="ids", ids=ids, enqueue=False, actor="t", **kw)


def test_one_task_runs_every_batch_and_enqueues_only_the_health_snapshot(clear_variant):
    ids = [make_session(seed=i) for i in range(7)]
    run = _start(ids, batch_size=2)
    batches = []
    result = engine.run_task(run.pk, run.batch_token, on_batch=batches.append)
    done = BackfillRun.objects.get(pk=run.pk)
    assert result == "done" and (done.state, done.created) == ("succeeded", 7)
    assert len(batches) == 4  # 2 + 2 + 2 + 1 sessions, in one task
    # No next batch was handed to the queue; the health snapshot is a task of its own,
    # not taken on the run's path.
    assert _queued() == [("remediation.tasks.health_check", ())]
    assert not MetricSnapshot.objects.exists()


def test_a_dry_run_or_a_run_that_wrote_nothing_enqueues_no_snapshot(clear_variant):
    ids = [make_session(seed=10 + i) for i in range(3)]
    run = _start(ids, batch_size=2, dry_run=True)
    assert engine.run_task(run.pk, run.batch_token) == "done"
    assert BackfillRun.objects.get(pk=run.pk).skipped == 3
    assert _queued() == []


@pytest.mark.parametrize(
    ("ask", "state"), [(engine.State.PAUSING, "paused"), (engine.State.CANCELLING, "cancelled")]
)
def test_a_pause_or_cancel_between_two_batches_of_one_task_takes_effect_there(
    clear_variant, ask, state
):
    ids = [make_session(seed=20 + i) for i in range(6)]
    run = _start(ids, batch_size=2)

    def asked(pk: int) -> None:  # someone presses pause (cancel) after the first batch
        if BackfillRun.objects.get(pk=pk).processed == 2:
            engine.transition(pk, ask)

    assert engine.run_task(run.pk, run.batch_token, on_batch=asked) == state
    stopped = BackfillRun.objects.get(pk=run.pk)
    assert (stopped.state, stopped.processed, stopped.created) == (state, 2, 2)
    assert stopped.items.filter(outcome="pending").count() == 4
    written = pipeline_sql(
        "SELECT count(*) FROM profiles WHERE session_id = ANY(%s::uuid[])", [ids], "one"
    )
    assert written[0] == 2
    assert _queued() == []  # nothing handed on: the run waits for resume


def test_the_task_budget_ends_the_task_and_enqueues_the_next_with_the_new_token(clear_variant):
    ids = [make_session(seed=30 + i) for i in range(5)]
    run = _start(ids, batch_size=2)
    with override_settings(BACKFILL_TASK_SECONDS=0.001):
        assert engine.run_task(run.pk, run.batch_token) == "next"
        after = BackfillRun.objects.get(pk=run.pk)
        assert (after.state, after.processed) == ("running", 2)  # one batch, then handed on
        assert _queued() == [("remediation.tasks.run_batch", (run.pk, after.batch_token))]
        # The next task is what a worker runs: it goes on from the cursor.
        OrmQ.objects.all().delete()
        assert run_batch(run.pk, after.batch_token) == "next"
        assert BackfillRun.objects.get(pk=run.pk).processed == 4
        # The superseded token does nothing (a duplicate delivery).
        assert run_batch(run.pk, after.batch_token) == "stale"
    done = bf.run_until_done(run.pk)
    assert (done.state, done.created, done.processed) == ("succeeded", 5, 5)


def test_the_throttle_holds_across_the_batches_of_one_task(clear_variant, monkeypatch):
    """Each batch sleeps what the throttle asks for before the next one (sleeps counted,
    not timed)."""
    slept = []
    monkeypatch.setattr(engine.time, "sleep", lambda s: slept.append(s))
    ids = [make_session(seed=40 + i) for i in range(4)]
    run = _start(ids, batch_size=2, throttle_per_minute=30)  # 2 sessions = 4 s
    assert engine.run_task(run.pk, run.batch_token) == "done"
    assert len(slept) == 2 and all(0 < s <= 4.0 for s in slept), slept


def test_a_real_cluster_runs_a_backfill_in_one_task_then_the_health_snapshot(clear_path):
    ids = [make_session(seed=50 + i) for i in range(12)]
    run = bf.backfill_start(selection="ids", ids=ids, batch_size=2, actor="t")
    cluster = start_cluster()
    try:
        done = wait_for(
            lambda: (r := BackfillRun.objects.get(pk=run.pk)).state == "succeeded" and r,
            90,
            "the run",
        )
        wait_for(
            lambda: Task.objects.filter(func="remediation.tasks.health_check").exists(),
            60,
            "the health snapshot task",
        )
    finally:
        kill_cluster(cluster)
    assert done.created == 12
    funcs = list(Task.objects.values_list("func", flat=True))
    assert funcs.count("remediation.tasks.run_batch") == 1, funcs  # six batches, one task
    assert "remediation.tasks.health_check" in funcs and MetricSnapshot.objects.exists()


def test_the_batches_of_a_task_share_the_context_and_maintenance_still_pauses_between_them(
    clear_variant, monkeypatch
):
    """The scoring context is read once per task; scoring_config is read for every batch,
    so the maintenance gate closed between two batches pauses the run at the next one."""
    from remediation import pipeline as pw

    loads = []
    shipped = pw.load_context
    monkeypatch.setattr(pw, "load_context", lambda *a, **k: loads.append(1) or shipped(*a, **k))
    ids = [make_session(seed=60 + i) for i in range(8)]
    run = _start(ids, batch_size=2)

    def between(pk: int) -> None:
        if BackfillRun.objects.get(pk=pk).processed == 4:
            pipeline_sql(
                'UPDATE scoring_config SET value = \'{"status": "maintenance"}\''
                " WHERE key = 'system_status'"
            )

    assert engine.run_task(run.pk, run.batch_token, on_batch=between) == "paused"
    paused = BackfillRun.objects.get(pk=run.pk)
    assert (paused.state, paused.created) == ("paused", 4) and "maintenance" in paused.message
    assert len(loads) == 2  # the first batch, and the batch after scoring_config changed
