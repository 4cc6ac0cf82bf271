"""Edge backfill throughput against the edge-function emulator with a fixed latency.

    .venv/bin/python benchmarks/bench_edge.py [--orphans 400] [--latency-ms 200] [--concurrency N]

Starts `manage.py edge_emulator --latency-ms 200` (its own process, over the benchmark's
pipeline database) and a real `manage.py qcluster` (the defaults), backfills the orphans
through the edge backend with the CLI's defaults (`manage.py backfill --backend edge`:
batches of 200, BACKFILL_LANES=2 batches in flight, EDGE_CONCURRENCY calls at once in
each), timed from the command to the run's end, and checks every session got exactly one
profile and one call. One call
at a time cannot beat 1 / latency (serial_limit), N at a time not N / latency. The last line:

    edge_sessions_per_s=N serial_limit=5.0

Uses throwaway databases (benchedge_opsportal, benchedge_pipeline) in the benchmarks'
embedded PostgreSQL (.pgdata-bench/).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request

from _setup import ROOT, django_setup, machine, use_bench_databases

KEY = "bench-edge-service-role-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orphans", type=int, default=400)
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument(
        "--concurrency", type=int, help="EDGE_CONCURRENCY for this run (default: the setting)"
    )
    args = parser.parse_args()
    if args.concurrency:
        os.environ["EDGE_CONCURRENCY"] = str(args.concurrency)
    use_bench_databases("benchedge")
    port = free_port()
    os.environ.update(
        {"SUPABASE_URL": f"http://127.0.0.1:{port}", "SUPABASE_SERVICE_ROLE_KEY": KEY}
    )
    django_setup()

    from bench_backfill import cluster, load, prepare
    from django.conf import settings

    from remediation.models import BackfillRun, FinalizeAttempt

    ids = prepare(args.orphans, 0)[: args.orphans]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "opsportal.settings", "DEBUG": "true"}
    emulator = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "edge_emulator",
            "--port",
            str(port),
            "--latency-ms",
            str(args.latency_ms),
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except urllib.error.HTTPError:
                break  # it answers
            except OSError:
                if time.monotonic() > deadline or emulator.poll() is not None:
                    raise SystemExit("the emulator did not start") from None
                time.sleep(0.2)
        print(f"machine: {machine()}; load average at the start {load()}")
        print(
            f"data: {len(ids):,} orphans x 248 answers; emulator latency {args.latency_ms} ms;"
            f" EDGE_CONCURRENCY={settings.EDGE_CONCURRENCY} BACKFILL_LANES={settings.BACKFILL_LANES}"
        )
        # Through a real qcluster with the defaults, as a user starts it.
        elapsed = cluster(ids, "--backend", "edge")
        run = BackfillRun.objects.filter(backend="edge").latest("pk")
    finally:
        os.killpg(emulator.pid, 15)
        emulator.wait(30)
    assert run.state == "succeeded" and run.created == len(ids), (run.state, run.message)
    calls = FinalizeAttempt.objects.filter(run_id=run.pk).count()
    assert calls == len(ids), calls
    rate = len(ids) / elapsed
    print(f"edge backfill: {len(ids):,} profiles, one call each, in {elapsed:.1f}s; load {load()}")
    print(f"edge_sessions_per_s={rate:.1f} serial_limit={1000 / args.latency_ms:.1f}")


if __name__ == "__main__":
    main()
