"""Time to detect a broken write path, and to see it repaired, with the scheduled canary.

    .venv/bin/python benchmarks/time_to_detect.py [--interval 60] [--variant emulation]
                                                  [--causes check,trigger,rls,grant]

From a healthy demo database (the incident seeded, then repaired the runbook's way: Fix A
and Fix D on the emulation, Fix D and Fix E on the rebuilt schema), a real django-q2 cluster
(`manage.py qcluster` in a subprocess) runs the canary schedule every --interval seconds
(django-q2 schedules in whole minutes and its scheduler looks every 30 s, so 60 is the
shortest real interval). For each way the incident broke the write path (a CHECK that
rejects the engine's values, a recursive trigger, RLS without BYPASSRLS and without a
policy, a revoked grant) the script breaks it, waits for the `write_path` alert, repairs
it, waits for the alert to resolve, and prints both times per cause.

Baseline: the incident itself went unnoticed for 20+ days. The bound with the schedule: one
interval plus one scheduler tick (30 s) from a break to the alert, the same from a repair to
its resolution.

Uses throwaway databases (ttd_opsportal, ttd_pipeline) in the benchmarks' embedded
PostgreSQL unless DATABASE_URL/PIPELINE_DATABASE_URL are set.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

from _setup import ROOT, django_setup, machine, use_bench_databases

SCHEDULER_TICK = 30  # seconds: django-q2's scheduler runs once per 30 s of its guard loop


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--interval", type=int, default=60, help="CANARY_INTERVAL_SECONDS")
    parser.add_argument("--variant", choices=("emulation", "rebuilt"), default="emulation")
    parser.add_argument("--causes", default="check,trigger,rls,grant")
    parser.add_argument("--sessions", type=int, default=475, help="demo sessions seeded")
    args = parser.parse_args()
    os.environ["CANARY_INTERVAL_SECONDS"] = str(args.interval)
    use_bench_databases("ttd")
    django_setup()

    from django.core.management import call_command
    from django.utils import timezone

    from remediation.dev.breaks import break_write_path
    from remediation.dev.demo import seed_demo
    from remediation.dev.emulation import load_emulated_schema
    from remediation.fixes import executor
    from remediation.models import Alert, CanaryResult

    call_command("migrate", verbosity=0)
    load_emulated_schema(
        variant=args.variant, reset=True, service_role_bypassrls=False, fc_metrics_trigger=False
    )
    seed_demo(sessions=args.sessions, now=datetime.now(UTC), force=True)
    for fix in ("A", "D") if args.variant == "emulation" else ("D", "E"):
        executor.run(fix)
    Alert.objects.all().delete()
    CanaryResult.objects.all().delete()
    call_command("setup_schedules", verbosity=0)

    cluster = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "qcluster"],
        cwd=ROOT,
        env={**os.environ, "Q_WORKERS": "1", "DJANGO_SETTINGS_MODULE": "opsportal.settings"},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rows: list[tuple[str, float, float, str]] = []
    try:
        limit = 3 * (args.interval + SCHEDULER_TICK)
        first = _wait(
            lambda: CanaryResult.objects.filter(source="schedule").first(), limit, "a first pass"
        )
        if first.outcome != "ok":
            raise SystemExit(f"the demo's write path is not healthy: {first.explanation}")
        for cause in args.causes.split(","):
            broke = timezone.now()
            broken = break_write_path(cause)
            alert = _wait(
                lambda broke=broke: Alert.objects.filter(
                    rule="write_path", state="open", first_seen__gte=broke
                ).first(),
                limit,
                f"the alert for {cause}",
            )
            detect = (alert.first_seen - broke).total_seconds()
            repaired = timezone.now()
            broken.repair()
            resolved = _wait(
                lambda pk=alert.pk: Alert.objects.filter(pk=pk, state="resolved").first(),
                limit,
                f"the repair of {cause}",
            )
            assert resolved.resolved_at is not None
            resolve = (resolved.resolved_at - repaired).total_seconds()
            rows.append((cause, detect, resolve, alert.message.split(". ")[0]))
            print(f"{cause}: alert after {detect:.0f} s, resolved {resolve:.0f} s after the repair")
    finally:
        os.killpg(cluster.pid, signal.SIGKILL)
        cluster.wait(20)

    bound = args.interval + SCHEDULER_TICK
    print()
    print(f"machine: {machine()}")
    print(
        f"settings: CANARY_INTERVAL_SECONDS={args.interval} (schedule every"
        f" {max(1, round(args.interval / 60))} min), scheduler tick {SCHEDULER_TICK} s,"
        f" Q_WORKERS=1, variant {args.variant}, {args.sessions} demo sessions"
    )
    print(f"baseline: the incident, 20+ days unnoticed; bound with the schedule: {bound} s")
    print()
    print("| cause | break → alert open | repair → alert resolved | alert |")
    print("|---|---|---|---|")
    for cause, detect, resolve, message in rows:
        print(f"| {cause} | {detect:.0f} s | {resolve:.0f} s | {message} |")


def _wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")


if __name__ == "__main__":
    main()
