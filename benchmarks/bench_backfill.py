"""Backfill throughput with the local backend, and the single-session service for comparison.

    .venv/bin/python benchmarks/bench_backfill.py [--orphans 20000] [--batch-size 500] [--single 300]
        [--scorer batch|loop|both]

`--scorer` picks what `Scorer.score_batch` does during the backfill: `batch` is the
engine's own method, `loop` scores the same requests one at a time with `Scorer.score`
(same results, same per-item errors), `both` backfills two equal sets of orphans (every
other orphan, batch / loop / loop / batch over four quarters so warm-up favours neither)
and prints the two rates side by side. `--orphans` is the number of sessions per scorer.

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


def loop_score_batch(self: Any, items: Any) -> list[Any]:
    """`Scorer.score_batch` as a plain loop over `Scorer.score` (the same per-item errors)."""
    from scoring import ScoreRequest, UnscorableSession

    out: list[Any] = []
    for item in items:
        req = item if isinstance(item, ScoreRequest) else None
        if req is None:
            out.append(UnscorableSession("invalid_item", "not a ScoreRequest"))
            continue
        try:
            out.append(self.score(req.responses, req.fc_function_scores, session_id=req.session_id))
        except UnscorableSession as exc:
            out.append(exc)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orphans", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--single", type=int, default=300, help="sessions finalized one at a time")
    parser.add_argument(
        "--scorer",
        choices=["batch", "loop", "both"],
        default="batch",
        help="Scorer.score_batch as shipped (batch), as a per-session loop, or both",
    )
    args = parser.parse_args()
    use_bench_databases()
    django_setup()

    from django.core.management import call_command
    from django.db import connections

    from remediation import backfill as bf
    from remediation.demo import seed_demo
    from remediation.emulation import load_emulated_schema
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
    scorers = ["batch", "loop"] if args.scorer == "both" else [args.scorer]
    wanted = args.orphans * len(scorers) + args.single
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
        for pk in bf.selectors.orphaned_sessions()
        .order_by("completed_at")
        .values_list("pk", flat=True)
    ]
    n_batch = args.orphans * len(scorers)
    batch_ids, single_ids = orphans[:n_batch], orphans[n_batch : n_batch + args.single]
    if len(batch_ids) < n_batch:
        raise SystemExit(f"only {len(orphans):,} orphans were seeded, {n_batch:,} needed")
    # Each scorer gets every other orphan, in four quarters run batch, loop, loop, batch.
    if len(scorers) == 2:
        sets = {"batch": batch_ids[0::2], "loop": batch_ids[1::2]}
        order = ["batch", "loop", "loop", "batch"]
        parts = {name: [ids[: len(ids) // 2], ids[len(ids) // 2 :]] for name, ids in sets.items()}
        schedule = [(name, parts[name].pop(0)) for name in order]
    else:
        schedule = [(scorers[0], batch_ids)]

    shipped = Scorer.score_batch
    seconds = dict.fromkeys(scorers, 0.0)
    scoring_s = dict.fromkeys(scorers, 0.0)  # of which inside score_batch
    created = dict.fromkeys(scorers, 0)

    def timed(name: str, impl: Any) -> Any:
        def score_batch(self: Any, items: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return impl(self, items)
            finally:
                scoring_s[name] += time.perf_counter() - t0

        return score_batch

    for name, ids in schedule:
        impl = shipped if name == "batch" else loop_score_batch
        Scorer.score_batch = timed(name, impl)  # type: ignore[method-assign]
        try:
            run = bf.backfill_start(
                selection="ids", ids=ids, batch_size=args.batch_size, enqueue=False, actor="bench"
            )
            t = time.perf_counter()
            run = bf.run_until_done(run.pk)
            seconds[name] += time.perf_counter() - t
        finally:
            Scorer.score_batch = shipped  # type: ignore[method-assign]
        assert run.state == "succeeded" and run.created == len(ids), (
            run.state,
            run.created,
            run.message,
        )
        created[name] += run.created
    rates = {name: created[name] / seconds[name] for name in scorers}
    backfill_rate = rates[scorers[0]]

    t = time.perf_counter()
    for sid in single_ids:
        attempt = session_finalize(session_id=sid, actor="bench", source="cli")
        assert attempt.outcome == "created", attempt.explanation
    single_s = time.perf_counter() - t
    single_rate = len(single_ids) / single_s

    print(f"machine: {machine()}")
    print(
        f"data: {args.orphans:,} orphaned sessions x 248 answers per scorer,"
        f" batch size {args.batch_size}"
    )
    for name in scorers:
        label = {"batch": "batch scorer", "loop": "per-session loop"}[name]
        print(
            f"backfill (local backend, {label}): {created[name]:,} profiles in"
            f" {seconds[name]:.1f}s = {rates[name]:,.0f} sessions/s"
            f" (scoring {scoring_s[name]:.1f}s of it, {created[name] / scoring_s[name]:,.0f}"
            " sessions/s)"
        )
    if len(scorers) == 2:
        gain = rates["batch"] / rates["loop"] - 1
        print(f"batch scorer vs per-session loop, whole backfill: {gain:+.1%}")
    print(
        f"single-session service:   {len(single_ids):,} profiles in {single_s:.1f}s = {single_rate:,.0f} sessions/s"
    )
    print(f"ratio: the backfill is {backfill_rate / single_rate:.1f}x the one-at-a-time rate")


if __name__ == "__main__":
    main()
