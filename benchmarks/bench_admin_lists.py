"""Times every sort and filter of the orphan list at a million sessions, through the orphan
ledger and through the plain definition (the old query) in the same run, and the session list.

    .venv/bin/python benchmarks/bench_admin_lists.py [--sessions 1000000] [--runs 5] [--reuse]

Uses throwaway databases in a separate embedded PostgreSQL (.pgdata-bench/) unless
DATABASE_URL/PIPELINE_DATABASE_URL are set; seeds them with seed_demo unless --reuse finds
enough sessions there. Creates (or refreshes) the orphan ledger, then requests each page
--runs times with the ledger and --runs times without it, interleaved (its state table renamed
away for the baseline, so the list reads the plain definition exactly as before the ledger).
Prints the machine, the load average, the data size, and per page the median and worst time
of both, which path served it, and the rows on the first page.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time
from datetime import UTC, datetime, timedelta

from _setup import admin_client, django_setup, machine, use_bench_databases

ORPHANS = "/admin/remediation/orphanedsession/"
SESSIONS = "/admin/remediation/assessmentsession/"


def orphan_pages(today: datetime) -> dict[str, str]:
    old_from = (today - timedelta(days=50)).date().isoformat()
    old_to = (today - timedelta(days=40)).date().isoformat()
    recent = (today - timedelta(days=3)).date().isoformat()
    return {
        "newest first": "",
        "oldest first": "o=3",
        "email A-Z": "o=6",
        "email Z-A": "o=-6",
        "by reason": "o=2",
        "by id": "o=1",
        "newest first, page 50": "p=50",
        "oldest first, page 50": "o=3&p=50",
        "dates 50-40 days ago": f"completed_at__from={old_from}&completed_at__to={old_to}",
        "dates 50-40 d, oldest": f"completed_at__from={old_from}&completed_at__to={old_to}&o=3",
        "from 3 days ago": f"completed_at__from={recent}",
        "age under 1 day": "age=lt1",
        "age 1-7 days": "age=1to7",
        "age 7-20 days": "age=7to20",
        "age over 20 days": "age=gt20",
        "age over 20 d, oldest": "age=gt20&o=3",
        "has FC responses": "fc=responses",
        "no FC responses": "fc=none",
        "no FC, oldest first": "fc=none&o=3",
        "no FC, email A-Z": "fc=none&o=6",
    }


def timed(client, url: str) -> tuple[float, str, int]:
    t = time.perf_counter()
    resp = client.get(url)
    ms = (time.perf_counter() - t) * 1000
    assert resp.status_code == 200, (url, resp.status_code)
    html = resp.content.decode()
    found = re.search(r'data-source="(\w+)"', html)
    return ms, found.group(1) if found else "-", html.count('name="_selected_action"')


def summary(runs: list[tuple[float, str, int]]) -> tuple[float, float, str, int]:
    times = [ms for ms, _, _ in runs]
    return statistics.median(times), max(times), runs[-1][1], runs[-1][2]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--reuse", action="store_true", help="keep the data of an earlier run")
    args = parser.parse_args()
    use_bench_databases("lists")
    os.environ.setdefault("DEBUG", "true")
    django_setup()

    from django.core.management import call_command
    from django.db import connections

    from remediation.dev.demo import seed_demo
    from remediation.dev.emulation import load_emulated_schema
    from remediation.selectors import orphan_ledger
    from remediation.services.orphan_ledger import orphan_ledger_create, orphan_ledger_refresh

    call_command("migrate", verbosity=0)
    with connections["pipeline"].cursor() as cur:
        cur.execute("SELECT to_regclass('public.assessment_sessions') IS NOT NULL")
        loaded = cur.fetchone()[0]
    have = 0
    if loaded:
        with connections["pipeline"].cursor() as cur:
            cur.execute("SELECT count(*) FROM assessment_sessions")
            have = cur.fetchone()[0]
    if not (args.reuse and have >= args.sessions):
        load_emulated_schema(service_role_bypassrls=False, fc_metrics_trigger=False)
        t = time.perf_counter()
        seed_demo(sessions=args.sessions, now=datetime.now(UTC), answer_sets=2000, force=True)
        print(f"seeded {args.sessions:,} sessions in {time.perf_counter() - t:.0f} s")
    with connections["pipeline"].cursor() as cur:
        cur.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'completed') FROM assessment_sessions"
        )
        sessions, completed = cur.fetchone()
        cur.execute("SELECT count(*) FROM profiles")
        profiles = cur.fetchone()[0]
        cur.execute(f"SELECT count(*) FROM assessment_sessions s WHERE {orphan_ledger.ORPHAN_SQL}")
        orphans = cur.fetchone()[0]
        cur.execute(
            "SELECT id::text, email FROM assessment_sessions ORDER BY id LIMIT 1 OFFSET 1000"
        )
        some_id, some_email = cur.fetchone()

    t = time.perf_counter()
    if orphan_ledger.ledger_state().exists:
        result = orphan_ledger_refresh(actor="bench")
        verb = "refreshed"
    else:
        result = orphan_ledger_create(actor="bench")
        verb = "created"
    assert result is not None
    print(
        f"orphan ledger {verb} in {time.perf_counter() - t:.1f} s"
        f" (+{result['added']:,} / -{result['removed']:,} rows)"
    )
    schema = orphan_ledger._schema()
    with connections["pipeline"].cursor() as cur:
        cur.execute(f"ANALYZE {schema}.{orphan_ledger.LEDGER}")

    client = admin_client()
    now = datetime.now(UTC)
    pages = {
        f"orphans, {k}": ORPHANS + ("?" + v if v else "") for k, v in orphan_pages(now).items()
    }
    pages.update(
        {
            "sessions": SESSIONS,
            "sessions, search id": f"{SESSIONS}?q={some_id}",
            "sessions, search email": f"{SESSIONS}?q={some_email}",
            "orphans, search email": f"{ORPHANS}?q={some_email}",
        }
    )
    off = f"{orphan_ledger.STATE}_bench_off"

    current = {"on": True}

    def ledger(on: bool) -> None:
        """The baseline: the state table renamed away, so the list reads the plain definition."""
        if current["on"] == on:
            return
        old, new = (off, orphan_ledger.STATE) if on else (orphan_ledger.STATE, off)
        with connections["pipeline"].cursor() as cur:
            cur.execute(f"ALTER TABLE {schema}.{old} RENAME TO {new}")
        current["on"] = on

    # Interleaved (ledger, old, ledger, old, ...) so that load changes on this shared machine
    # fall on both alike.
    samples: dict[str, dict[bool, list[tuple[float, str, int]]]] = {}
    try:
        for name, url in pages.items():
            samples[name] = {True: [], False: []}
            for _ in range(args.runs + 1):
                for on in (True, False):
                    ledger(on)
                    samples[name][on].append(timed(client, url))
            for on in (True, False):
                samples[name][on].pop(0)  # the first of each warms the caches
    finally:
        ledger(True)
    with_ledger = {name: summary(s[True]) for name, s in samples.items()}
    baseline = {name: summary(s[False]) for name, s in samples.items()}

    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f} (1 min)")
    print(
        f"data: {sessions:,} sessions ({completed:,} completed), {profiles:,} profiles,"
        f" {orphans:,} orphans; first page of 100 rows"
    )
    print(
        f"{'page':36} {'median ms':>10} {'max ms':>8} {'via':>7} {'rows':>5}"
        f" | {'old median':>10} {'old max':>8} {'via':>6} {'speed-up':>8}"
    )
    for name in pages:
        med, worst, source, rows = with_ledger[name]
        bmed, bworst, bsource, brows = baseline[name]
        assert rows == brows, (name, rows, brows)
        print(
            f"{name:36} {med:10.1f} {worst:8.1f} {source:>7} {rows:5d}"
            f" | {bmed:10.1f} {bworst:8.1f} {bsource:>6} {bmed / med:7.1f}x"
        )
    slow = [n for n in pages if n.startswith("orphans") and with_ledger[n][0] > 100]
    print(f"orphan pages over 100 ms (median): {', '.join(slow) if slow else 'none'}")


if __name__ == "__main__":
    main()
