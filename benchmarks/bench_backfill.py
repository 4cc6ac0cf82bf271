"""Backfill throughput with the local backend, and the single-session service for comparison.

    .venv/bin/python benchmarks/bench_backfill.py [--orphans 20000] [--batch-size 500] [--single 300]

Prints the time spent inside `Scorer.score_batch` too: scoring is a small part of the
backfill (reading answers and writing profiles dominate).

Uses throwaway databases (bench_opsportal, bench_pipeline) in the embedded PostgreSQL
unless DATABASE_URL/PIPELINE_DATABASE_URL are set. The write path is cleared the way the
fixes clear it (service_role BYPASSRLS, the CHECKs relaxed), so every session is written.
The backfill is driven in this process, batch after batch, exactly as a django-q2 worker
runs it (minus the queue hop between batches).
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from typing import Any

from _setup import django_setup, machine, use_bench_databases


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orphans", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--single", type=int, default=300, help="sessions finalized one at a time")
    args = parser.parse_args()
    use_bench_databases()
    django_setup()

    from django.core.management import call_command
    from django.db import connections

    from remediation import jobs as bf
    from remediation import selectors
    from remediation.dev.demo import seed_demo
    from remediation.dev.emulation import load_emulated_schema
    from remediation.services import session_finalize
    from scoring import Scorer

    call_command("migrate", verbosity=0)
    load_emulated_schema(service_role_bypassrls=True, fc_metrics_trigger=False)
    with connections["pipeline"].cursor() as cur:
        cur.execute(
            "ALTER TABLE profiles DROP CONSTRAINT IF EXISTS profiles_overlay_neuro_check,"
            " DROP CONSTRAINT IF EXISTS profiles_overlay_state_check,"
            " DROP CONSTRAINT IF EXISTS profiles_fc_coverage_bucket_check"
        )
    # Sessions over 20 days: every completed one is an orphan.
    wanted = args.orphans + args.single
    sessions = int(wanted / 0.955) + 100
    t = time.perf_counter()
    stats = seed_demo(
        sessions=sessions, days=20, now=datetime.now(UTC), answer_sets=sessions, force=True
    )
    print(
        f"seeded {stats.sessions:,} sessions, {stats.orphans:,} orphans with 248 answers"
        f" in {time.perf_counter() - t:.1f}s"
    )
    orphans = [
        str(pk)
        for pk in selectors.orphaned_sessions()
        .order_by("completed_at")
        .values_list("pk", flat=True)
    ]
    batch_ids, single_ids = (
        orphans[: args.orphans],
        orphans[args.orphans : args.orphans + args.single],
    )

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
        run = bf.backfill_start(
            selection="ids", ids=batch_ids, batch_size=args.batch_size, enqueue=False, actor="bench"
        )
        t = time.perf_counter()
        run = bf.run_until_done(run.pk)
        backfill_s = time.perf_counter() - t
    finally:
        Scorer.score_batch = shipped  # type: ignore[method-assign]
    assert run.state == "succeeded" and run.created == len(batch_ids), (
        run.state,
        run.created,
        run.message,
    )
    backfill_rate = run.created / backfill_s

    t = time.perf_counter()
    for sid in single_ids:
        attempt = session_finalize(session_id=sid, actor="bench", source="cli")
        assert attempt.outcome == "created", attempt.explanation
    single_s = time.perf_counter() - t
    single_rate = len(single_ids) / single_s

    print(f"machine: {machine()}")
    print(f"data: {len(batch_ids):,} orphaned sessions x 248 answers, batch size {args.batch_size}")
    print(
        f"backfill (local backend): {run.created:,} profiles in {backfill_s:.1f}s"
        f" = {backfill_rate:,.0f} sessions/s (scoring {scoring_s:.1f}s of it)"
    )
    print(
        f"single-session service:   {len(single_ids):,} profiles in {single_s:.1f}s = {single_rate:,.0f} sessions/s"
    )
    print(f"ratio: the backfill is {backfill_rate / single_rate:.1f}x the one-at-a-time rate")


if __name__ == "__main__":
    main()
