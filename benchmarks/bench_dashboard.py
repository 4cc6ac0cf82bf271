"""Times the health dashboard, /metrics and the orphan list on a million sessions.

    .venv/bin/python benchmarks/bench_dashboard.py [--sessions 1000000] [--runs 5] [--reuse]

Uses throwaway databases in a separate embedded PostgreSQL (.pgdata-bench/) unless
DATABASE_URL/PIPELINE_DATABASE_URL are set. Prints the median and worst time per page.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime

from _setup import admin_client, django_setup, machine, use_bench_databases


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--reuse", action="store_true", help="keep the data of an earlier run")
    args = parser.parse_args()
    use_bench_databases("dash")
    django_setup()

    from django.core.management import call_command
    from django.db import connections
    from django.test import override_settings

    from opsportal.secrets import Secret
    from remediation.dev.demo import seed_demo
    from remediation.dev.emulation import load_emulated_schema

    call_command("migrate", verbosity=0)
    load_emulated_schema(service_role_bypassrls=False, fc_metrics_trigger=False)
    with connections["pipeline"].cursor() as cur:
        cur.execute("SELECT count(*) FROM assessment_sessions")
        have = cur.fetchone()[0]
    if not (args.reuse and have >= args.sessions):
        t = time.perf_counter()
        seed_demo(sessions=args.sessions, now=datetime.now(UTC), answer_sets=2000, force=True)
        print(f"seeded {args.sessions:,} sessions in {time.perf_counter() - t:.0f}s")
    with connections["pipeline"].cursor() as cur:
        cur.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'completed') FROM assessment_sessions"
        )
        sessions, completed = cur.fetchone()
        cur.execute("SELECT count(*) FROM profiles")
        profiles = cur.fetchone()[0]
    client = admin_client()
    from remediation.services.health import snapshot_take as take_snapshot

    t = time.perf_counter()
    take_snapshot()
    print(
        f"one snapshot of every figure (the scheduled check's work): {(time.perf_counter() - t) * 1000:.0f} ms"
    )
    windows = ("1h", "24h", "7d", "30d")
    pages = {f"health dashboard, {w}": f"/admin/health/?window={w}" for w in windows}
    pages["orphan list"] = "/admin/remediation/orphanedsession/"
    pages["metrics (Prometheus)"] = "/metrics"
    pages["healthz"] = "/healthz"
    print(f"machine: {machine()}")
    print(f"data: {sessions:,} sessions ({completed:,} completed), {profiles:,} profiles")
    print(f"{'page':28} {'median ms':>10} {'max ms':>8}")
    with override_settings(METRICS_TOKEN=Secret("bench")):
        for name, url in pages.items():
            timings = []
            for _ in range(args.runs):
                t = time.perf_counter()
                resp = client.get(url, HTTP_AUTHORIZATION="Bearer bench")
                timings.append((time.perf_counter() - t) * 1000)
                assert resp.status_code in (200, 503), (url, resp.status_code)
            print(f"{name:28} {statistics.median(timings):10.1f} {max(timings):8.1f}")
        timings = []
        for _ in range(args.runs):  # "recompute now" is a POST: it stores a snapshot
            t = time.perf_counter()
            resp = client.post("/admin/health/?window=24h")
            timings.append((time.perf_counter() - t) * 1000)
            assert resp.status_code == 302, resp.status_code
        print(
            f"{'dashboard, recompute now':28} {statistics.median(timings):10.1f} {max(timings):8.1f}"
        )


if __name__ == "__main__":
    main()
