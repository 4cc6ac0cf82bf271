"""Crash injection at every commit boundary of the run engine (issue 15, item 1).

A worker process (forked by tests/crash_worker.py's server) drives a run and kills itself with SIGKILL at one
named boundary (remediation/jobs/crashpoints.py), exactly as `kill -9` would: no cleanup,
its connections dropped mid-transaction. The watchdog then finds the run, and a new worker
finishes it. After that:

- the run's figures equal what its items and the database say (created = sessions that had
  no profile before and have one now; existing = had one; failed = have none);
- there is exactly one finalize attempt per session (one round);
- rolling the run back (itself killed at each boundary) puts every row back as it was
  (on the rebuilt variant, except the column its triggers rewrite, which the report names).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections import Counter
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from opsportal.secrets import Secret
from remediation import jobs
from remediation.dev.edge_emulator import start_in_thread
from remediation.jobs import crashpoints, ledger
from remediation.models import BackfillItem, BackfillRun, FinalizeAttempt
from tests.cluster import ROOT, db_url
from tests.factories import heartbeat_stale, make_session, pipeline_sql

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)

# The boundaries a local backfill and a rollback pass, and the N-th time to stop at: the
# second batch (one batch is recorded already), or the end for run.ended.
LOCAL_POINTS = [
    ("batch.started", 2),
    ("pipeline.before_commit", 2),
    ("pipeline.committed", 2),
    ("record.committed", 2),
    ("ledger.forgotten", 2),
    ("task.between_batches", 1),  # one task runs batch after batch: after the first
    ("task.handed_over", 1),  # the task's budget ran out: the next task not enqueued
    ("run.ended", 1),
]
EDGE_POINTS = [
    ("batch.started", 2),
    ("edge.claimed", 3),
    ("edge.answered", 3),  # the function wrote (and overwrote completed_at), not put back yet
    ("edge.called", 3),
    *LOCAL_POINTS[3:],
]
# The task budget that makes a task hand over after its first batch.
TASK_SETTINGS: dict[str, dict[str, Any]] = {"task.handed_over": {"BACKFILL_TASK_SECONDS": 0.001}}
EDGE = {
    "EDGE_CONCURRENCY": 1,  # one call at a time: each boundary is met in a known order
    "EDGE_CONNECT_TIMEOUT": 1.0,
    "EDGE_READ_TIMEOUT": 5.0,
    "EDGE_MAX_RETRIES": 1,
    "EDGE_BACKOFF_BASE": 0.01,
}


def test_the_tests_cover_every_point_the_engine_names():
    assert {p for p, _ in LOCAL_POINTS} | {p for p, _ in EDGE_POINTS} == set(crashpoints.POINTS)


@pytest.fixture(scope="module")
def worker_server(django_db_setup):
    """One crash worker server (tests/crash_worker.py) for the module: Django set up once,
    a forked worker process per crash."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.crash_worker", "serve"],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "opsportal.test_settings",
            "DATABASE_URL": db_url("default"),
            "PIPELINE_DATABASE_URL": db_url("pipeline"),
            "DEBUG": "true",
        },
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    yield proc
    proc.stdin.close()
    proc.wait(30)


@pytest.fixture
def kill_worker_at(worker_server):
    def kill(run_id: int, point: str, nth: int, **values: Any) -> None:
        """Run a worker process until it kills itself at `point` (the nth time it gets
        there); `values` are settings for that worker."""
        request = {"run_id": run_id, "settings": {"CRASH_AT": f"{point}@{nth}", **values}}
        worker_server.stdin.write(json.dumps(request) + "\n")
        worker_server.stdin.flush()
        ready, _, _ = select.select([worker_server.stdout], [], [], 120)
        if not ready:
            os.killpg(worker_server.pid, signal.SIGKILL)
            raise AssertionError(f"the worker did not stop within 120 s at {point}")
        answer = json.loads(worker_server.stdout.readline())
        assert answer["returncode"] == -9, (point, answer["returncode"], answer["output"])

    return kill


def _resume(run_id: int) -> BackfillRun:
    """What happens after a kill: the heartbeat goes stale, the watchdog marks the run
    interrupted and resumes it; a new worker (here, this process) finishes it."""
    run = BackfillRun.objects.get(pk=run_id)
    if run.state not in jobs.STOPPED:
        heartbeat_stale(run_id)
        with override_settings(BACKFILL_STALE_SECONDS=60):
            assert jobs.runs_watchdog() == [run_id]
    return jobs.run_until_done(run_id)


def _tables(ids: list[str]) -> dict[str, dict[str, dict]]:
    """Every row a backfill can touch for these sessions, whole, as PostgreSQL's JSON."""
    out = {}
    for table, key in (
        ("assessment_sessions", "id"),
        ("profiles", "session_id"),
        ("fc_scores", "session_id"),
    ):
        rows = pipeline_sql(
            f"SELECT {key}::text || ':' || coalesce(to_jsonb(t)->>'id', '')"
            f" || coalesce(to_jsonb(t)->>'fc_kind', ''), to_jsonb(t)::text"
            f" FROM {table} t WHERE {key} = ANY(%s::uuid[])",
            [ids],
            "all",
        )
        out[table] = {k: json.loads(v) for k, v in rows}
    return out


def _without(tables: dict, columns: dict[str, int]) -> dict:
    """`tables` without the columns a rollback report names as not restored."""
    drop: dict[str, set[str]] = {}
    for name in columns:
        table, _, column = name.partition(".")
        drop.setdefault(table, set()).add(column)
    return {
        t: {
            k: {c: v for c, v in row.items() if c not in drop.get(t, set())}
            for k, row in rows.items()
        }
        for t, rows in tables.items()
    }


def _sessions():
    """Six orphans, one session with a profile already, one abandoned (refused)."""
    orphans = [make_session(seed=i) for i in range(6)]
    had = make_session(seed=20)
    first = jobs.run_until_done(jobs.backfill_start(selection="ids", ids=[had], enqueue=False).pk)
    assert first.created == 1
    abandoned = make_session(seed=21, status="abandoned")
    return orphans, had, abandoned


def _profile_counts(ids: list[str]) -> dict[str, int]:
    """Profiles per session id (sessions without one are absent)."""
    rows = pipeline_sql(
        "SELECT session_id::text, count(*) FROM profiles WHERE session_id = ANY(%s::uuid[])"
        " GROUP BY session_id",
        [ids],
        "all",
    )
    return dict(rows)


def _attempt_counts(run: BackfillRun) -> Counter:
    """Finalize attempts per session id of a run."""
    return Counter(
        str(s)
        for s in FinalizeAttempt.objects.filter(run_id=run.pk).values_list("session_id", flat=True)
    )


def _assert_truthful(run: BackfillRun, before: dict, orphans, had, abandoned) -> None:
    """The run's figures, its items and its attempts equal what the database shows."""
    ids = [*orphans, had, abandoned]
    assert run.state == "finished_with_failures", (run.state, run.message)
    items = {str(i.session_id): i for i in run.items.all()}
    assert set(items) == set(ids)
    now = _tables(ids)
    with_profile = {k.split(":")[0] for k in now["profiles"]}
    had_profile = {k.split(":")[0] for k in before["profiles"]}
    outcome = {sid: i.outcome for sid, i in items.items()}
    assert outcome == {
        **dict.fromkeys(orphans, "created"),
        had: "existing",
        abandoned: "failed",
    }
    assert with_profile - had_profile == set(orphans)
    # The figures are the items' figures; the items are the database's.
    assert run.counts == dict(Counter(outcome.values()))
    assert (run.processed, run.created, run.existing, run.failed) == (8, 6, 1, 1)
    for sid in orphans:  # the pre-image says "no profile": a rollback deletes it
        assert items[sid].pre_image["profile"] is None and items[sid].post_fingerprint
        assert str(items[sid].profile_id) in {
            str(r["id"]) for k, r in now["profiles"].items() if k.startswith(sid)
        }
    attempts = _attempt_counts(run)
    assert attempts == Counter(ids), "one attempt per session in the round"
    assert not ledger.read(run.ledger_key), "every ledger entry mirrored and forgotten"


def _assert_rolled_back(run_id: int, before: dict, ids: list[str]) -> None:
    source = BackfillRun.objects.get(pk=run_id)
    report = source.rollback_report
    assert report["restored"] == 6 and not report["conflicts"] and not report["errors"]
    columns = report["not_restored"]["columns"]
    assert _without(_tables(ids), columns) == _without(before, columns)
    assert report["exact"] == (not columns)
    assert not source.items.filter(outcome="created", rolled_back=False).exists()


@pytest.mark.parametrize(("point", "nth"), LOCAL_POINTS, ids=[p for p, _ in LOCAL_POINTS])
def test_a_backfill_and_its_rollback_killed_at_each_boundary_are_exact(
    point, nth, clear_variant, kill_worker_at
):
    orphans, had, abandoned = _sessions()
    ids = [*orphans, had, abandoned]
    before = _tables(ids)
    run = jobs.backfill_start(selection="ids", ids=ids, batch_size=3, enqueue=False)
    kill_worker_at(run.pk, point, nth, **TASK_SETTINGS.get(point, {}))
    done = _resume(run.pk)
    _assert_truthful(done, before, orphans, had, abandoned)
    # Its rollback, killed at the same boundary, then resumed: every row as it was.
    rollback = jobs.run_rollback(run.pk, enqueue=False)
    BackfillRun.objects.filter(pk=rollback.pk).update(batch_size=2)
    kill_worker_at(rollback.pk, point, nth, **TASK_SETTINGS.get(point, {}))
    undone = _resume(rollback.pk)
    assert undone.state == "succeeded", undone.message
    assert (undone.processed, undone.counts) == (6, {"restored": 6})
    assert not ledger.read(undone.ledger_key)
    _assert_rolled_back(run.pk, before, ids)


_emulator: Any = None


@pytest.fixture
def emulator(clear_path):
    global _emulator
    server = _emulator = start_in_thread()
    key = "crash-test-service-role-key"
    with override_settings(
        SUPABASE_URL=server.url,
        SUPABASE_SERVICE_ROLE_KEY=Secret(key),
        EDGE_CONNECT_TIMEOUT=1.0,
        EDGE_READ_TIMEOUT=5.0,
        EDGE_MAX_RETRIES=1,
        EDGE_BACKOFF_BASE=0.01,
    ):
        yield {"SUPABASE_URL": server.url, "SUPABASE_SERVICE_ROLE_KEY": key, **EDGE}
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("point", "nth"), EDGE_POINTS, ids=[p for p, _ in EDGE_POINTS])
def test_an_edge_backfill_killed_at_each_boundary_posts_each_session_once(
    point, nth, emulator, kill_worker_at
):
    orphans = [make_session(seed=40 + i) for i in range(5)]
    before = _tables(orphans)
    run = jobs.backfill_start(
        selection="ids", ids=orphans, backend="edge", batch_size=2, enqueue=False
    )
    seen_before = _emulator.requests_seen
    kill_worker_at(run.pk, point, nth, **emulator, **TASK_SETTINGS.get(point, {}))
    done = _resume(run.pk)
    assert done.state == "succeeded", done.message
    items = {str(i.session_id): i for i in done.items.all()}
    assert {i.outcome for i in items.values()} == {"created"}
    assert done.counts == {"created": 5} and done.processed == 5
    # The function overwrote every completed_at; each is back, wherever the kill fell.
    now = _tables(orphans)["assessment_sessions"]
    assert {k: r["completed_at"] for k, r in now.items()} == {
        k: r["completed_at"] for k, r in before["assessment_sessions"].items()
    }
    assert all(i.notes and i.notes["completed_at_restored"]["to"] for i in items.values())
    assert _profile_counts(orphans) == dict.fromkeys(orphans, 1)
    # One call per session: the call records its attempt; a call whose outcome the kill
    # lost (edge.answered: before its attempt was saved; edge.called: after) is settled
    # from the database, not posted again.
    attempts = _attempt_counts(run)
    settled = [sid for sid, i in items.items() if i.reason == "claim_settled"]
    assert len(settled) == (1 if point in ("edge.answered", "edge.called") else 0)
    unrecorded = set(settled) if point == "edge.answered" else set()
    assert set(attempts.values()) == {1} and set(attempts) == set(orphans) - unrecorded
    assert _emulator.requests_seen - seen_before == 5, "each session posted exactly once"
    rollback = jobs.run_rollback(run.pk, enqueue=False)
    assert jobs.run_until_done(rollback.pk).state == "succeeded"
    report = BackfillRun.objects.get(pk=run.pk).rollback_report
    assert report["restored"] == 5
    columns = report["not_restored"]["columns"]
    assert _without(_tables(orphans), columns) == _without(before, columns)


@pytest.mark.parametrize("point", ["edge.claimed", "edge.called"])
def test_a_parallel_edge_batch_killed_mid_pool_posts_each_session_once(
    point, emulator, kill_worker_at
):
    """Three calls at a time, the worker killed at the second claim (call): the other
    threads' sessions were claimed, posted or recorded, whatever they had reached. After
    the resume every session was posted exactly once and has one profile; a session whose
    call the kill cut short has no attempt of its own and is settled from the database."""
    orphans = [make_session(seed=70 + i) for i in range(6)]
    server_env = {**emulator, "EDGE_CONCURRENCY": 3}
    run = jobs.backfill_start(
        selection="ids", ids=orphans, backend="edge", batch_size=6, enqueue=False
    )
    kill_worker_at(run.pk, point, 2, **server_env)
    seen = _emulator.requests_seen
    time.sleep(1.0)  # the watchdog's stale period: calls in flight at the kill have ended
    assert _emulator.requests_seen == seen
    with override_settings(EDGE_CONCURRENCY=3):
        done = _resume(run.pk)
    assert (done.state, done.created, done.processed) == ("succeeded", 6, 6), done.message
    assert _emulator.requests_seen == 6, "each session posted exactly once"
    assert _profile_counts(orphans) == dict.fromkeys(orphans, 1)
    attempts = _attempt_counts(run)
    items = {str(i.session_id): i for i in done.items.all()}
    for sid in orphans:  # a call cut short before its attempt was saved has none
        if items[sid].reason == "claim_settled":
            assert attempts[sid] <= 1, sid
        else:
            assert attempts[sid] == 1, sid
        assert items[sid].post_fingerprint and items[sid].pre_image["profile"] is None


def test_a_redelivered_batch_after_a_lost_record_takes_its_outcomes_from_the_ledger(clear_variant):
    """In this process: the pipeline commit made, the portal record lost (the item is
    still pending); the next batch records the ledger's outcome, not "already had one"."""
    from remediation.jobs.engine import kind_of

    sid = make_session(seed=60)
    run = jobs.backfill_start(selection="ids", ids=[sid], enqueue=False)
    kind = kind_of(run)
    item = run.items.get()
    outcomes = kind.process(run, [item], timezone.now())  # writes + ledger, committed
    assert [o.outcome for o in outcomes] == ["created"]
    assert BackfillItem.objects.get(pk=item.pk).outcome == "pending"  # the record "lost"
    done = jobs.run_until_done(run.pk)
    assert (done.state, done.created, done.existing) == ("succeeded", 1, 0)
    got = done.items.get()
    assert got.pre_image["profile"] is None and got.ledger_seq == outcomes[0].ledger_seq
    assert FinalizeAttempt.objects.filter(run_id=run.pk).count() == 1
    assert not ledger.read(run.ledger_key)
