"""Times the admin's session and orphan lists on whatever the pipeline database holds.

    .venv/bin/python manage.py seed_demo --sessions 1000000 --force   # once
    .venv/bin/python benchmarks/bench_admin_lists.py [--runs 5]

Prints the median and worst time per page, the row counts and the machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from _setup import admin_client, django_setup, machine

os.environ.setdefault("DEBUG", "true")
django_setup()

from django.db import connections  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with connections["pipeline"].cursor() as cur:
        cur.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'completed') FROM assessment_sessions"
        )
        sessions, completed = cur.fetchone()
        cur.execute("SELECT count(*) FROM profiles")
        profiles = cur.fetchone()[0]
    client = admin_client()
    with connections["pipeline"].cursor() as cur:
        cur.execute(
            "SELECT id::text, email FROM assessment_sessions ORDER BY created_at DESC LIMIT 1 OFFSET %s",
            [min(1000, sessions // 2)],
        )
        some_id, some_email = cur.fetchone()
    pages = {
        "orphans, newest first": "/admin/remediation/orphanedsession/",
        "orphans, page 50": "/admin/remediation/orphanedsession/?p=50",
        "orphans, last 7 days": "/admin/remediation/orphanedsession/?completed_at__from=2000-01-01",
        "orphans, oldest first": "/admin/remediation/orphanedsession/?o=3",
        "sessions": "/admin/remediation/assessmentsession/",
        "sessions, search id": f"/admin/remediation/assessmentsession/?q={some_id}",
        "sessions, search email": f"/admin/remediation/assessmentsession/?q={some_email}",
        "sessions, no profile": "/admin/remediation/assessmentsession/?has_profile=no",
        "session page": f"/admin/remediation/assessmentsession/{some_id}/change/",
    }
    print(f"machine: {machine()}")
    print(f"data: {sessions:,} sessions ({completed:,} completed), {profiles:,} profiles")
    print(f"{'page':28} {'median ms':>10} {'max ms':>8}")
    for name, url in pages.items():
        timings = []
        for _ in range(args.runs):
            t = time.perf_counter()
            resp = client.get(url)
            timings.append((time.perf_counter() - t) * 1000)
            assert resp.status_code == 200, (url, resp.status_code)
        print(f"{name:28} {statistics.median(timings):10.1f} {max(timings):8.1f}")


if __name__ == "__main__":
    main()
