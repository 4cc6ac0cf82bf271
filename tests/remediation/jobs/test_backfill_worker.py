"""Real django-q2 clusters run backfills: kill -9 mid-run, restart, every orphan gets one profile."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from remediation import jobs as bf
from remediation.models import BackfillRun
from tests.cluster import ROOT, db_url, kill_cluster, start_cluster, wait_for
from tests.factories import (
    clear_write_path,
    heartbeat_stale,
    load_reference_data,
    make_session,
    pipeline_sql,
)

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


def run_state(run_id: int) -> BackfillRun:
    return BackfillRun.objects.get(pk=run_id)


def test_kill_9_mid_run_then_restart_gives_every_orphan_exactly_one_profile(pipeline_db):
    load_reference_data()
    with clear_write_path():
        ids = [make_session(seed=i) for i in range(40)]
        # Throttled so the run is still going when the worker is killed.
        run = bf.backfill_start(selection="ids", ids=ids, batch_size=4, throttle_per_minute=240)
        first = start_cluster()
        try:
            wait_for(lambda: run_state(run.pk).processed >= 8, 60, "the first batches")
        finally:
            kill_cluster(first)
        killed_at = run_state(run.pk)
        assert killed_at.state == "running" and killed_at.processed < 40
        # The heartbeat goes stale; the watchdog (a scheduled task) marks the run
        # interrupted and resumes it from its cursor.
        from django.test import override_settings

        heartbeat_stale(run.pk)
        with override_settings(BACKFILL_STALE_SECONDS=60):
            # Once the server has ended the killed worker's session (its lane lock freed).
            assert wait_for(bf.runs_watchdog, 10, "the watchdog to find the run") == [run.pk]
        resumed = run_state(run.pk)
        assert resumed.state == "enqueued" and "stopped mid-run" in resumed.message
        second = start_cluster()
        try:
            done = wait_for(
                lambda: (r := run_state(run.pk)).state in ("succeeded", "errored") and r,
                90,
                "the run to finish",
            )
        finally:
            kill_cluster(second)
        assert done.state == "succeeded", done.message
        assert done.created + done.existing == 40 and done.failed == 0
        per_session = pipeline_sql(
            "SELECT count(p.id) FROM assessment_sessions s LEFT JOIN profiles p ON p.session_id = s.id"
            " WHERE s.id = ANY(%s::uuid[]) GROUP BY s.id",
            [ids],
            "all",
        )
        assert sorted(c for (c,) in per_session) == [1] * 40
        assert not done.items.filter(outcome="pending").exists()


def test_a_cluster_on_the_redis_broker_runs_a_backfill(pipeline_db, redis_url):
    """Workers on any host share runs through the broker: here Redis instead of the database."""
    load_reference_data()
    with clear_write_path():
        ids = [make_session(seed=100 + i) for i in range(6)]
        redis_env = {"Q_BROKER": "redis", "REDIS_URL": redis_url}
        cluster = start_cluster(**redis_env)
        try:
            env = {
                **os.environ,
                "DATABASE_URL": db_url("default"),
                "PIPELINE_DATABASE_URL": db_url("pipeline"),
                "DEBUG": "true",
                **redis_env,
            }
            out = subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "manage.py"),
                    "backfill",
                    "--ids",
                    *ids,
                    "--batch-size",
                    "2",
                    "--no-wait",
                ],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            run_id = int(out.stdout.split("#", 1)[1].split(":", 1)[0])
            done = wait_for(
                lambda: (r := run_state(run_id)).state == "succeeded" and r, 60, "the run"
            )
        finally:
            kill_cluster(cluster)
        assert done.created == 6
        count = pipeline_sql(
            "SELECT count(*) FROM profiles WHERE session_id = ANY(%s::uuid[])", [ids], "one"
        )
        assert count[0] == 6


def test_two_clusters_share_one_run_and_write_each_session_once(pipeline_db):
    """Two worker hosts (two clusters on one broker) take batches of the same runs."""
    load_reference_data()
    with clear_write_path():
        ids = [make_session(seed=200 + i) for i in range(30)]
        clusters = [start_cluster(Q_WORKERS="2"), start_cluster(Q_WORKERS="2")]
        try:
            runs = [
                bf.backfill_start(selection="ids", ids=ids[:20], batch_size=2),
                bf.backfill_start(selection="ids", ids=ids[10:], batch_size=2),
            ]
            done = [
                wait_for(lambda r=r: (x := run_state(r.pk)).state == "succeeded" and x, 90, "a run")
                for r in runs
            ]
        finally:
            for c in clusters:
                kill_cluster(c)
        assert sum(d.created for d in done) == 30
        assert sum(d.existing for d in done) == 10
        assert (
            pipeline_sql(
                "SELECT count(*) FROM profiles WHERE session_id = ANY(%s::uuid[])", [ids], "one"
            )[0]
            == 30
        )
