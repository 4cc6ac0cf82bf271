"""Backfill throughput with the local backend: in-process, through a real cluster, beside the floor.

    .venv/bin/python benchmarks/bench_backfill.py [--orphans 20000] [--batch-size 200]
    .venv/bin/python benchmarks/bench_backfill.py --cluster [--orphans 20000]

Default mode: the backfill driven in this process task after task, exactly as a django-q2
worker runs it (minus the queue hop between tasks), and the single-session service for
comparison; prints the time inside `Scorer.score_batch` and the statements per batch.

--cluster: what a user gets. Starts a real `manage.py qcluster` (the default settings: two
workers, the ORM broker polled every 0.5 s) on the benchmark databases, starts a backfill
of the orphans with the CLI's defaults (`manage.py backfill --csv ... --no-wait`: batches
of 200, BACKFILL_LANES=2 batches in flight) and times it from the command to the run's
end; then the same orphans, reset, in-process (one process: the lanes one after the
other); then the floor for the same work (read the answers in one statement per 2,000
sessions, score them, COPY the profile rows, rolled back). The last line:

    cluster_sessions_per_s=N inprocess_sessions_per_s=M floor_s=F ratio_to_floor=R

(ratio_to_floor: the cluster's time over the floor's).

Uses throwaway databases (bench_opsportal, bench_pipeline) in a separate embedded
PostgreSQL (.pgdata-bench/) unless DATABASE_URL/PIPELINE_DATABASE_URL are set. The write
path is cleared the way the fixes clear it (service_role BYPASSRLS, the CHECKs relaxed), so
every session is written.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _setup import ROOT, django_setup, machine, use_bench_databases


def load() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


def prepare(orphans: int, single: int) -> list[str]:
    from django.core.management import call_command
    from django.db import connections

    from remediation import selectors
    from remediation.dev.demo import seed_demo
    from remediation.dev.emulation import load_emulated_schema

    call_command("migrate", verbosity=0)
    load_emulated_schema(service_role_bypassrls=True, fc_metrics_trigger=False)
    with connections["pipeline"].cursor() as cur:
        cur.execute(
            "ALTER TABLE profiles DROP CONSTRAINT IF EXISTS profiles_overlay_neuro_check,"
            " DROP CONSTRAINT IF EXISTS profiles_overlay_state_check,"
            " DROP CONSTRAINT IF EXISTS profiles_fc_coverage_bucket_check"
        )
    # Sessions over 20 days: every completed one is an orphan.
    wanted = orphans + single
    sessions = int(wanted / 0.955) + 100
    t = time.perf_counter()
    stats = seed_demo(
        sessions=sessions, days=20, now=datetime.now(UTC), answer_sets=sessions, force=True
    )
    print(
        f"seeded {stats.sessions:,} sessions, {stats.orphans:,} orphans with 248 answers"
        f" in {time.perf_counter() - t:.1f}s",
        flush=True,
    )
    # A database in service is vacuumed and analyzed; a freshly bulk-loaded one is not, and
    # autovacuum working through it would race the measurements.
    connections["pipeline"].ensure_connection()
    raw = connections["pipeline"].connection
    previous, raw.autocommit = raw.autocommit, True
    try:
        raw.execute("VACUUM (ANALYZE) assessment_sessions, assessment_responses, profiles")
    finally:
        raw.autocommit = previous
    return [
        str(pk)
        for pk in selectors.orphaned_sessions()
        .order_by("completed_at")
        .values_list("pk", flat=True)
    ]


def count_statements() -> Any:
    """A context manager counting statements on both databases."""
    import contextlib

    from django.db import connections

    counts = {"default": 0, "pipeline": 0}

    @contextlib.contextmanager
    def counting():
        def wrapper(alias):
            def execute(execute, sql, params, many, context):
                counts[alias] += 1
                return execute(sql, params, many, context)

            return execute

        with contextlib.ExitStack() as stack:
            for alias in counts:
                stack.enter_context(connections[alias].execute_wrapper(wrapper(alias)))
            yield counts

    return counting()


def in_process(ids: list[str], batch_size: int) -> tuple[Any, float]:
    from remediation import jobs as bf

    run = bf.backfill_start(
        selection="ids", ids=ids, batch_size=batch_size, enqueue=False, actor="bench"
    )
    t = time.perf_counter()
    run = bf.run_until_done(run.pk)
    elapsed = time.perf_counter() - t
    assert run.state == "succeeded" and run.created == len(ids), (run.state, run.message)
    return run, elapsed


def reset(ids: list[str]) -> None:
    """The sessions orphans again: every profile and FC score deleted (the benchmark's
    other sessions do not take part)."""
    from django.db import connections

    with connections["pipeline"].cursor() as cur:
        cur.execute("TRUNCATE profiles, fc_scores CASCADE")


def floor(ids: list[str]) -> float:
    """Read the answers (one statement per 2,000 sessions), score, COPY the profile rows;
    rolled back. The least any backfill of these sessions can take."""
    from django.db import connections, transaction
    from django.utils import timezone
    from psycopg.types.json import Jsonb

    import scoring
    from remediation import pipeline as pw
    from remediation.pipeline.profiles import profile_row
    from remediation.pipeline.sql import uuid_array

    ctx = pw.load_context()
    now = timezone.now()
    t = time.perf_counter()
    with transaction.atomic(using="pipeline"):
        raw = connections["pipeline"].cursor().cursor
        for start in range(0, len(ids), 2000):
            chunk = ids[start : start + 2000]
            raw.execute(
                "SELECT session_id::text, array_agg(question_id ORDER BY question_id),"
                " array_agg(coalesce(answer_value, answer_numeric::text) ORDER BY question_id)"
                " FROM assessment_responses WHERE session_id = ANY(%s::uuid[])"
                " GROUP BY session_id",
                [uuid_array(chunk)],
            )
            requests = [
                scoring.ScoreRequest(scoring.AnswerColumns(q, v), None, sid)
                for sid, q, v in raw.fetchall()
            ]
            rows = [
                profile_row(ctx, result, str(req.session_id), now)
                for req, result in zip(requests, ctx.scorer.score_batch(requests), strict=True)
                if isinstance(result, scoring.EngineResult)
            ]
            columns = list(rows[0])
            with raw.copy(f"COPY profiles ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(
                        [Jsonb(v) if isinstance(v, dict | list) else v for v in row.values()]
                    )
        elapsed = time.perf_counter() - t
        transaction.set_rollback(True, using="pipeline")
    return elapsed


def cluster(ids: list[str], *cli: str) -> float:
    """Start qcluster (defaults), wait for it, start the backfill with the CLI's defaults
    (plus `cli`, e.g. "--backend", "edge"); seconds from the command to the run's end."""
    from django.db import connections
    from django_q.models import Success

    from remediation.models import BackfillRun

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "opsportal.settings"}
    for name in ("Q_WORKERS", "Q_POLL", "BACKFILL_TASK_SECONDS", "Q_BROKER"):
        env.pop(name, None)
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    log = open(ROOT / "test-artifacts" / "bench-qcluster.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "qcluster"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=log,
        stderr=log,
    )
    try:
        from django_q.tasks import async_task

        Success.objects.all().delete()
        async_task("math.floor", 1.5, task_name="bench-warmup")
        deadline = time.monotonic() + 120
        while not Success.objects.filter(name="bench-warmup").exists():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("the cluster did not start: see test-artifacts/bench-qcluster.log")
            time.sleep(0.1)
        connections.close_all()
        with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
            f.write("session_id\n" + "\n".join(ids) + "\n")
        t = time.perf_counter()
        out = subprocess.run(
            [
                sys.executable,
                str(ROOT / "manage.py"),
                "backfill",
                "--csv",
                f.name,
                "--no-wait",
                *cli,
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        run_id = int(out.stdout.split("#", 1)[1].split(":", 1)[0])
        while True:
            run = BackfillRun.objects.get(pk=run_id)
            if run.state not in ("enqueued", "running"):
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - t
        os.unlink(f.name)
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(20)
    assert run.state == "succeeded" and run.created == len(ids), (run.state, run.message)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orphans", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--single", type=int, default=300, help="sessions finalized one at a time")
    parser.add_argument("--cluster", action="store_true", help="through a real qcluster")
    args = parser.parse_args()
    use_bench_databases()
    django_setup()

    from remediation.services import session_finalize
    from scoring import Scorer

    single = 0 if args.cluster else args.single
    orphans = prepare(args.orphans, single)
    batch_ids, single_ids = orphans[: args.orphans], orphans[args.orphans : args.orphans + single]
    print(f"machine: {machine()}; load average at the start {load()}")
    print(f"data: {len(batch_ids):,} orphaned sessions x 248 answers")

    if args.cluster:
        cluster_s = cluster(batch_ids)
        print(
            f"cluster (qcluster defaults, CLI defaults: batches of 200): {len(batch_ids):,}"
            f" profiles in {cluster_s:.1f}s = {len(batch_ids) / cluster_s:,.0f} sessions/s",
            flush=True,
        )
        reset(batch_ids)
        _, inproc_s = in_process(batch_ids, 200)
        print(
            f"in-process (batches of 200): {len(batch_ids) / inproc_s:,.0f} sessions/s", flush=True
        )
        reset(batch_ids)
        floor_s = floor(batch_ids)
        print(f"floor (read + score + COPY): {floor_s:.2f}s; load average now {load()}")
        print(
            f"cluster_sessions_per_s={len(batch_ids) / cluster_s:.0f}"
            f" inprocess_sessions_per_s={len(batch_ids) / inproc_s:.0f}"
            f" floor_s={floor_s:.2f} ratio_to_floor={cluster_s / floor_s:.2f}"
        )
        return

    shipped = Scorer.score_batch
    scoring_s = 0.0  # time inside score_batch

    def timed_score_batch(self: Any, items: Any) -> Any:
        nonlocal scoring_s
        t0 = time.perf_counter()
        try:
            return shipped(self, items)
        finally:
            scoring_s += time.perf_counter() - t0

    Scorer.score_batch = timed_score_batch  # type: ignore[method-assign]
    try:
        with count_statements() as counts:
            run, backfill_s = in_process(batch_ids, args.batch_size)
    finally:
        Scorer.score_batch = shipped  # type: ignore[method-assign]
    backfill_rate = run.created / backfill_s
    batches = -(-len(batch_ids) // args.batch_size)

    t = time.perf_counter()
    for sid in single_ids:
        attempt = session_finalize(session_id=sid, actor="bench", source="cli")
        assert attempt.outcome == "created", attempt.explanation
    single_s = time.perf_counter() - t
    single_rate = len(single_ids) / single_s if single_ids else float("nan")

    print(f"load average now {load()}; batch size {args.batch_size}")
    print(
        f"backfill (local backend): {run.created:,} profiles in {backfill_s:.1f}s"
        f" = {backfill_rate:,.0f} sessions/s (scoring {scoring_s:.1f}s of it)"
    )
    print(
        f"statements per batch: {counts['pipeline'] / batches:.1f} pipeline,"
        f" {counts['default'] / batches:.1f} portal"
    )
    print(
        f"single-session service:   {len(single_ids):,} profiles in {single_s:.1f}s = {single_rate:,.0f} sessions/s"
    )
    print(f"ratio: the backfill is {backfill_rate / single_rate:.1f}x the one-at-a-time rate")


if __name__ == "__main__":
    main()
