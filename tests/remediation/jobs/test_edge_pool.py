"""Edge calls in parallel, still exactly once (issue 16, item 3): a bounded pool of calls
per batch, one reused HTTP session per thread, each session claimed before its call with
its own pre-image, read-back, fingerprint and attempt; the pool respects Retry-After and
backs off as a whole on 429/503; the batch budget still cuts the batch."""

from __future__ import annotations

import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connections
from django.test import override_settings

from remediation import jobs as bf
from remediation.dev.edge_emulator import Faults
from remediation.jobs import edge_pool
from remediation.jobs.edge_pool import Gate, run_pool
from remediation.jobs.engine import process_batch
from remediation.models import BackfillRun, FinalizeAttempt
from tests.factories import emulated_edge, make_session, pipeline_sql

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


@pytest.fixture
def emulator(clear_path):
    with emulated_edge(EDGE_MAX_RETRIES=2) as server:
        yield server


def _profiles(ids):
    rows = pipeline_sql(
        "SELECT session_id::text, count(*) FROM profiles WHERE session_id = ANY(%s::uuid[])"
        " GROUP BY session_id",
        [ids],
        "all",
    )
    return dict(rows)


def test_a_parallel_edge_backfill_calls_the_function_exactly_once_per_session(emulator):
    ids = [make_session(seed=i) for i in range(12)]
    emulator.faults = Faults(latency_ms=100)
    made = edge_pool.sessions_made
    with override_settings(EDGE_CONCURRENCY=4):
        run = bf.backfill_start(
            selection="ids", ids=ids, backend="edge", batch_size=6, enqueue=False, actor="t"
        )
        done = bf.run_until_done(run.pk)
    assert (done.state, done.created, done.processed) == ("succeeded", 12, 12), done.message
    assert emulator.requests_seen == 12  # one POST per session
    assert _profiles(ids) == dict.fromkeys(ids, 1)
    attempts = Counter(
        str(s)
        for s in FinalizeAttempt.objects.filter(run_id=run.pk).values_list("session_id", flat=True)
    )
    assert attempts == Counter(ids)  # each session its own attempt
    for item in done.items.all():  # its own claim (pre-image) and read-back fingerprint
        assert item.pre_image["profile"] is None and item.post_fingerprint["profile"]
    # Two batches of four threads: the second batch took the first batch's HTTP sessions.
    assert edge_pool.sessions_made - made <= 4
    from tests.factories import rollback_run

    assert rollback_run(run.pk)["restored"] == 12
    assert _profiles(ids) == {}


@pytest.mark.usefixtures("one_lane")
def test_the_batch_budget_stops_the_pool_taking_sessions(emulator):
    """Calls of 0.4 s, a budget of 0.2 s, two at a time: the batch makes its first two calls
    (started before the budget ran out) and hands the other four on."""
    ids = [make_session(seed=20 + i) for i in range(6)]
    emulator.faults = Faults(latency_ms=400)
    with override_settings(BACKFILL_BATCH_SECONDS=0.2, EDGE_CONCURRENCY=2):
        run = bf.backfill_start(
            selection="ids", ids=ids, backend="edge", batch_size=6, enqueue=False, actor="t"
        )
        assert process_batch(run.pk, run.batch_token, enqueue_next=False) == "next"
        first = BackfillRun.objects.get(pk=run.pk)
        assert (first.processed, first.created) == (2, 2)
        assert first.items.filter(outcome="pending", pre_image__isnull=True).count() == 4
        done = bf.run_until_done(run.pk)
    assert (done.state, done.created) == ("succeeded", 6)
    assert emulator.requests_seen == 6


def test_worker_threads_close_their_database_connections(emulator):
    ids = [make_session(seed=40 + i) for i in range(4)]

    def backends() -> int:
        with connections["default"].cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
            )
            return int(cur.fetchone()[0])

    before = backends()
    with override_settings(EDGE_CONCURRENCY=4):
        run = bf.backfill_start(
            selection="ids", ids=ids, backend="edge", batch_size=4, enqueue=False, actor="t"
        )
        assert bf.run_until_done(run.pk).created == 4
    assert backends() <= before


class _Recorder(ThreadingHTTPServer):
    """Answers POSTs; the first one arriving gets `first` (status, Retry-After) once all
    `width` first calls are in, sent before the others' 200s; every arrival is recorded."""

    daemon_threads = True

    def __init__(self, width: int, first: tuple[int, str | None]):
        super().__init__(("127.0.0.1", 0), _RecorderHandler)
        self.width, self.first = width, first
        self.lock = threading.Lock()
        self.arrivals: list[float] = []
        self.barrier = threading.Barrier(width, timeout=10)
        self.refused_at = 0.0
        self.refused = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _RecorderHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Recorder

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.arrivals.append(time.monotonic())
            n = len(self.server.arrivals)
        if n <= self.server.width:
            self.server.barrier.wait()  # the first wave is in flight together
        if n == 1:
            status, after = self.server.first
            self.send_response(status)
            if after is not None:
                self.send_header("Retry-After", after)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.wfile.flush()
            self.server.refused_at = time.monotonic()
            self.server.refused.set()
            return
        if n <= self.server.width:
            self.server.refused.wait(10)
            time.sleep(0.3)  # answered after the refusal went out (and was read)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.mark.parametrize(
    ("first", "backoff"),
    [((429, "1"), 0.01), ((503, "1"), 0.01), ((503, None), 1.0), ((429, None), 1.0)],
    ids=["429-retry-after", "503-retry-after", "503-backoff", "429-backoff"],
)
def test_the_pool_backs_off_as_a_whole_on_429_and_503(settings, first, backoff):
    """One call of the first wave is refused (Retry-After 1 s, or none: the backoff, at
    least EDGE_BACKOFF_BASE); the other calls end well, but no thread posts again (neither
    the refused call's retry nor anyone's next session) before the pause is over."""
    settings.EDGE_MAX_RETRIES, settings.EDGE_BACKOFF_BASE = 2, backoff
    settings.EDGE_RETRY_AFTER_CAP, settings.EDGE_READ_TIMEOUT = 5.0, 10.0
    server = _Recorder(width=3, first=first)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    gate = Gate()
    try:
        statuses = run_pool(
            list(range(9)),
            lambda n, http: http.post(server.url, data=b"{}", timeout=(1, 10)).status_code,
            concurrency=3,
            budget_end=time.monotonic() + 60,
            gate=gate,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert statuses == [200] * 9  # the refused call was retried once and succeeded
    assert len(server.arrivals) == 10
    later = server.arrivals[3:]  # the retry and every next session's call
    assert min(later) >= server.refused_at + 0.95, [t - server.refused_at for t in later]
    assert gate.pauses == 1


def test_a_pool_raises_what_a_call_raised_after_every_thread_stopped():
    seen = []

    def call(n, http):
        seen.append(n)
        if n == 2:
            raise RuntimeError("boom")
        time.sleep(0.02)
        return n

    with pytest.raises(RuntimeError, match="boom"):
        run_pool(list(range(20)), call, concurrency=3, budget_end=time.monotonic() + 60)
    assert len(seen) < 20  # no new item was taken once one call failed
