"""Edge backfills: `unknown` stays unknown on the run item, keeps the run from "succeeded",
and "retry failed" settles it by reading the database before it posts anything again."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import override_settings

from remediation import jobs as bf
from remediation.dev.edge_emulator import Faults
from remediation.models import FinalizeAttempt
from remediation.services import runs
from tests.factories import emulated_edge, make_session, pipeline_sql

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


@pytest.fixture
def emulator(clear_path):
    with emulated_edge(EDGE_READ_TIMEOUT=0.5, EDGE_MAX_RETRIES=1) as server:
        yield server


@pytest.fixture
def hangup():
    """A function that reads the request and answers nothing (it may have run)."""

    class Hangup(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.close_connection = True

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hangup)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _start(ids):
    return bf.backfill_start(
        selection="ids", ids=ids, backend="edge", enqueue=False, actor="tester"
    )


def _profiles(ids):
    return pipeline_sql(
        "SELECT count(*) FROM profiles WHERE session_id = ANY(%s::uuid[])", [ids], "one"
    )[0]


def test_a_timeout_is_unknown_on_the_item_and_retry_settles_it_without_posting(emulator):
    ids = [make_session(seed=i) for i in range(2)]
    completed = (
        "SELECT completed_at FROM assessment_sessions WHERE id = ANY(%s::uuid[]) ORDER BY id"
    )
    before = pipeline_sql(completed, [ids], "all")
    emulator.faults = Faults(hang_seconds=1.2)  # past the read timeout, then it writes
    run = bf.run_until_done(_start(ids).pk)
    assert {i.outcome for i in run.items.all()} == {"unknown"}
    assert {i.reason for i in run.items.all()} == {"timeout"}
    # Not a success: every session's outcome is unknown (counted with the failures).
    assert run.state == "failed" and run.counts == {"unknown": 2} and run.failed == 0
    assert "2 unknown" in run.message
    deadline = time.monotonic() + 10
    while _profiles(ids) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)  # the hung calls finish and write their profiles
    assert _profiles(ids) == 2
    emulator.faults = Faults()
    seen = emulator.requests_seen
    run = runs.run_retry_failed(run.pk)
    assert "2 unknown sessions settled from the database" in run.message
    run = bf.run_until_done(run.pk)
    assert emulator.requests_seen == seen  # settled by reading, never posted again
    assert run.state == "succeeded" and run.created == 2
    assert [r["counts"] for r in run.rounds] == [{"unknown": 2}, {"created": 2}]
    for item in run.items.all():
        assert (item.outcome, item.reason) == ("created", "unknown_settled")
        assert item.profile_id and item.post_fingerprint and item.results_url
        # The late calls overwrote completed_at after the portal had looked; the retry's
        # settlement put it back from the pre-image, and says so.
        assert item.notes["completed_at_restored"]["from"] and "put back" in item.error
    assert pipeline_sql(completed, [ids], "all") == before
    # The rollback covers what the settled sessions wrote.
    from remediation.jobs.rollback import restorable_items

    assert restorable_items(run).count() == 2


def test_retry_posts_again_only_the_unknown_sessions_still_without_a_profile(emulator, hangup):
    ids = [make_session(seed=i) for i in range(2)]
    with override_settings(SUPABASE_URL=hangup):
        run = bf.run_until_done(_start(ids).pk)
    assert [(i.outcome, i.reason) for i in run.items.all()] == [("unknown", "connection_lost")] * 2
    attempts = FinalizeAttempt.objects.filter(run_id=run.pk)
    assert {a.outcome for a in attempts} == {"unknown"}
    assert _profiles(ids) == 0
    run = runs.run_retry_failed(run.pk)
    assert "settled" not in run.message
    run = bf.run_until_done(run.pk)
    assert emulator.requests_seen == 2  # each posted again once: no profile was there
    assert run.state == "succeeded" and run.created == 2


@pytest.mark.usefixtures("one_lane")
def test_a_batch_of_slow_edge_calls_stops_at_its_time_budget_and_the_run_finishes(emulator):
    """Issue 15, item 2: each call takes at least 0.4 s, the budget is 0.2 s: a batch of 5
    makes its first call (a batch always gets one session done), finds its budget spent
    before the second, hands the other 4 to the next task; every session is created once
    and rolled back."""
    from remediation.jobs.engine import process_batch
    from remediation.models import BackfillRun

    ids = [make_session(seed=80 + i) for i in range(5)]
    emulator.faults = Faults(latency_ms=400)
    # One call at a time (tests/remediation/jobs/test_edge_pool.py: the pool's budget).
    with override_settings(BACKFILL_BATCH_SECONDS=0.2, EDGE_READ_TIMEOUT=5.0, EDGE_CONCURRENCY=1):
        run = bf.backfill_start(
            selection="ids", ids=ids, backend="edge", batch_size=5, enqueue=False, actor="t"
        )
        assert process_batch(run.pk, run.batch_token, enqueue_next=False) == "next"
        first = BackfillRun.objects.get(pk=run.pk)
        assert first.processed == 1 and first.created == 1
        assert first.items.filter(outcome="pending").count() == 4
        assert first.cursor == first.items.filter(outcome="pending").order_by("ordinal")[0].ordinal
        done = bf.run_until_done(run.pk)
    assert (done.state, done.created, done.processed) == ("succeeded", 5, 5)
    assert FinalizeAttempt.objects.filter(run_id=run.pk).count() == 5
    from tests.factories import rollback_run

    assert rollback_run(run.pk)["restored"] == 5
    left = pipeline_sql(
        "SELECT count(*) FROM profiles WHERE session_id = ANY(%s::uuid[])", [ids], "one"
    )
    assert left == (0,)
