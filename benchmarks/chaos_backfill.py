"""Chaos: `kill -9` the whole django-q2 cluster during a backfill, then roll the run back.

    .venv/bin/python benchmarks/chaos_backfill.py --orphans 2000 --kills 5 [--seed S]
        [--variant emulation|rebuilt] [--rollback-kills 0] [--batch-size 200]
        [--server postgres://user:password@host:5432/postgres] [--keep]

Not a timed test: a script that measures what a crash does to a run. In two fresh
databases with unique names (on its own embedded PostgreSQL, `.pgdata-chaos/`, or on the
server given by --server / CHAOS_PG_URL; dropped at the end unless --keep):

1. migrates the portal database, loads the emulated pipeline schema (--variant), seeds
   exactly N orphaned completed sessions with full answer sets (the demo seeding the
   benchmarks use), applies the fixes the runbook's checks call for (`manage.py fix apply`)
   and snapshots the tables a backfill changes (profiles, assessment_sessions, fc_scores:
   row counts and an md5 over each table's rows in key order);
2. starts a backfill of every orphan (as the admin does) and runs it through a real
   `manage.py qcluster` in its own process group; K times, at random moments (seeded RNG,
   printed) while the run is not finished, kills the whole group with SIGKILL, waits a
   random short moment and starts a new cluster. This script calls the run watchdog
   (`runs_watchdog`, what the `backfill-watchdog` schedule runs once a minute) every
   --stale seconds, with BACKFILL_STALE_SECONDS = --stale (3), so an interrupted run
   resumes within seconds (a first batch waiting longer than that for a starting cluster
   is re-enqueued too; the older task then finds a new token and does nothing);
3. compares the run's figures with the database (orphans left, duplicate profiles and
   attempts, every figure the run reports), printing each disagreement on its own line;
4. rolls the run back through the cluster (with --rollback-kills kills), and compares the
   three tables with the snapshot.

The last line is `orphans_left=A duplicates=B count_mismatches=C rollback_exact=yes|no`;
the exit status is 0 when they are 0, 0, 0 and yes, else 1 (2 when a setup step could not be done).
The emulated roles are cluster-wide: do not point --server at a server others use.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from _setup import ROOT, machine

TABLES = ("profiles", "assessment_sessions", "fc_scores")
T0 = time.monotonic()


def say(msg: str) -> None:
    print(f"{datetime.now(UTC):%H:%M:%S} +{time.monotonic() - T0:7.1f}s {msg}", flush=True)


# --- Databases ------------------------------------------------------------------------------
@dataclass
class Server:
    """Where the throwaway databases live, and how to reach them."""

    conninfo: dict[str, Any]  # psycopg keyword arguments, without dbname
    embedded_dir: Path | None = None
    started: bool = False  # this script started the embedded server

    def url(self, dbname: str) -> str:
        c = self.conninfo
        user, password = quote(c.get("user") or ""), quote(c.get("password") or "")
        if str(c.get("host", "")).startswith("/"):
            return f"postgres://{user}:{password}@/{dbname}?host={c['host']}"
        return f"postgres://{user}:{password}@{c['host']}:{c.get('port') or 5432}/{dbname}"

    def connect(self, dbname: str = "postgres") -> Any:
        import psycopg

        return psycopg.connect(dbname=dbname, autocommit=True, **self.conninfo)


def open_server(url: str | None, pg_dir: Path) -> Server:
    if url:
        parts = urlsplit(url)
        return Server(
            {
                "host": parts.hostname or "localhost",
                "port": parts.port or 5432,
                "user": parts.username or "postgres",
                "password": parts.password or "",
            }
        )
    from opsportal import embedded_pg

    server = embedded_pg.start(pg_dir, databases=())
    return Server(
        {"host": server.socket_dir, "user": "postgres"},
        embedded_dir=pg_dir,
        started=server.started,
    )


def create_databases(server: Server, names: tuple[str, ...]) -> None:
    from psycopg import sql

    with server.connect() as conn:
        for name in names:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_databases(server: Server, names: tuple[str, ...]) -> None:
    from psycopg import sql

    with server.connect() as conn:
        for name in names:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


# --- Snapshots --------------------------------------------------------------------------------
@dataclass
class Snapshot:
    tables: dict[str, tuple[int, str]]  # table -> (rows, md5 over its rows in key order)
    profiled: set[str] = field(default_factory=set)  # sessions with a profile


def snapshot(conn: Any) -> Snapshot:
    tables = {}
    for table in TABLES:
        keys = [
            r[0]
            for r in conn.execute(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
                " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
                " WHERE i.indrelid = %s::regclass AND i.indisprimary"
                " ORDER BY array_position(i.indkey::int2[], a.attnum)",
                [f"public.{table}"],
            )
        ]
        order = ", ".join(f't."{k}"' for k in keys) or "t::text"
        rows, digest = conn.execute(
            f"SELECT count(*), md5(coalesce(string_agg(md5(t::text), '' ORDER BY {order}), ''))"
            f" FROM public.{table} t"
        ).fetchone()
        tables[table] = (rows, digest)
    profiled = {r[0] for r in conn.execute("SELECT session_id::text FROM profiles")}
    return Snapshot(tables, profiled)


# --- The cluster ----------------------------------------------------------------------------
class Cluster:
    """`manage.py qcluster` in its own process group, killed with SIGKILL as a whole."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(ROOT / "manage.py"), "qcluster"],
                cwd=ROOT,
                env=self.env,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def kill(self) -> None:
        if self.proc is None:
            return
        pgid = self.proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        self.proc.wait(30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # every process of the group is gone
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        self.proc = None


# --- Driving a run through kills ---------------------------------------------------------------
def drive(
    run_id: int, *, kills: int, cluster: Cluster, rng: random.Random, args: argparse.Namespace
) -> tuple[Any, int, bool]:
    """Run `run_id` through the cluster, killing it `kills` times at random moments while
    the run is not finished. Returns (the run, kills done, whether it ended in time).

    The moments: K points drawn uniformly over the run's sessions (a kill is due once
    `processed` reaches the next point, and a worker has taken the run since the last
    restart), each followed by a random delay of up to one batch's duration (as measured,
    at most --max-kill-delay), so the kills spread over the whole run and land anywhere
    inside a batch's cycle: reading, writing, committing, recording, moving the cursor,
    enqueueing the next batch, finishing."""
    from remediation.jobs import ENDED, runs_watchdog
    from remediation.models import BackfillRun

    stuck = {BackfillRun.State.ERRORED, BackfillRun.State.CANCELLED, BackfillRun.State.PAUSED}
    deadline = time.monotonic() + args.timeout
    done = 0
    if cluster.pid is None:
        cluster.start()
        say(f"cluster started (pid {cluster.pid})")

    def fresh() -> Any:
        return BackfillRun.objects.get(pk=run_id)

    run = fresh()
    points = sorted(rng.uniform(0, run.estimated_total) for _ in range(kills))
    if points:
        say(f"kills due at processed >= {', '.join(f'{p:,.0f}' for p in points)}")
    batch_seconds = 1.0  # a batch's cycle, measured between two changes of `processed`
    last_change: tuple[float, int] | None = None
    mark = (run.heartbeat_at, run.processed)
    active = False  # a worker took the run since the (re)start
    kill_at: float | None = None
    next_print = next_watchdog = 0.0
    while True:
        now = time.monotonic()
        run = fresh()
        if run.state in ENDED or run.state in stuck:
            say(progress(run))
            if done < kills:
                say(f"the run ended after {done} of {kills} kills")
            return run, done, run.state in ENDED
        if now > deadline:
            say(f"TIMEOUT: run #{run_id} did not end within {args.timeout:.0f}s")
            say(progress(run))
            return run, done, False
        if now >= next_print:
            say(progress(run) + f" [cluster pid {cluster.pid}]")
            next_print = now + 1.0
        if now >= next_watchdog:  # what the backfill-watchdog schedule does, more often
            for resumed in runs_watchdog():
                say(f"watchdog: run #{resumed} interrupted (no heartbeat), resumed")
            next_watchdog = now + args.stale
        if not active and (run.heartbeat_at, run.processed) != mark:
            active, last_change = True, (now, run.processed)
        elif last_change is not None and run.processed != last_change[1]:
            batch_seconds = 0.7 * batch_seconds + 0.3 * (now - last_change[0])
            last_change = (now, run.processed)
        if kill_at is None and active and done < kills and run.processed >= points[done]:
            kill_at = now + rng.uniform(0.0, min(batch_seconds, args.max_kill_delay))
        if kill_at is not None and now >= kill_at:
            cluster.kill()
            done += 1
            run = fresh()
            say(f"KILL {done}/{kills}: SIGKILL to the cluster's process group; {progress(run)}")
            down = rng.uniform(0.0, args.max_down)
            time.sleep(down)
            cluster.start()
            say(f"cluster restarted after {down:.2f}s (pid {cluster.pid})")
            run = fresh()
            mark = (run.heartbeat_at, run.processed)
            active, kill_at, last_change = False, None, None
            continue
        time.sleep(0.05)


def progress(run: Any) -> str:
    return (
        f"{run.kind} run #{run.pk} {run.state}: processed {run.processed:,}/"
        f"{run.estimated_total:,} (created {run.created:,}, existing {run.existing:,},"
        f" failed {run.failed:,}, counts {dict(sorted((run.counts or {}).items()))})"
    )


# --- Measuring ----------------------------------------------------------------------------------
def measure(run: Any, before: Snapshot, pipeline: Any) -> tuple[int, int, list[str]]:
    """(orphans left, duplicates, the mismatches between the run's figures and the database)."""
    from remediation.models import BackfillItem, FinalizeAttempt
    from remediation.selectors.sessions import ORPHAN_SQL

    orphans_left = pipeline.execute(
        f"SELECT count(*) FROM assessment_sessions s WHERE {ORPHAN_SQL}"
    ).fetchone()[0]
    profiles_now = {
        sid: pid for sid, pid in pipeline.execute("SELECT session_id::text, id::text FROM profiles")
    }
    multi_profiles = pipeline.execute(
        "SELECT count(*) FROM (SELECT session_id FROM profiles GROUP BY session_id"
        " HAVING count(*) > 1) d"
    ).fetchone()[0]

    items = list(
        BackfillItem.objects.filter(run=run).values_list("session_id", "outcome", "profile_id")
    )
    sessions = {str(sid) for sid, _, _ in items}
    tally = Counter(outcome for _, outcome, _ in items)
    # Attempts of this run, by round (a retry round starts at its entry's started_at).
    starts = sorted(
        datetime.fromisoformat(r["started_at"])
        for r in (run.rounds or [])[1:]
        if r.get("retry") and r.get("started_at")
    )
    attempts = list(
        FinalizeAttempt.objects.filter(run_id=run.pk).values_list(
            "session_id", "started_at", "outcome"
        )
    )
    per_round = Counter((str(sid), sum(1 for s in starts if s <= at)) for sid, at, _ in attempts)
    multi_attempts = sum(1 for n in per_round.values() if n > 1)
    extra_attempts = sum(n - 1 for n in per_round.values() if n > 1)
    duplicates = multi_profiles + multi_attempts
    print(f"duplicates: {multi_profiles} sessions with more than one profile")
    print(
        f"duplicates: {multi_attempts} sessions with more than one finalize attempt of run"
        f" #{run.pk} in one round ({extra_attempts} extra attempts)"
    )

    mismatches: list[str] = []

    def check(what: str, run_says: Any, database_says: Any) -> None:
        if run_says != database_says:
            mismatches.append(
                f"MISMATCH {what}: the run says {run_says}, the database {database_says}"
            )

    counts = Counter(run.counts or {})
    newly = len({s for s in sessions if s in profiles_now and s not in before.profiled})
    had = len(sessions & before.profiled)
    still = len(sessions - set(profiles_now))
    check("processed vs the run's items", run.processed, len(items))
    check("processed vs the sum of its counts", run.processed, sum(counts.values()))
    check(
        "created + re-scored vs its sessions with no profile before and one now",
        run.created + run.rescored,
        newly,
    )
    check("existing vs its sessions that had a profile before the run", run.existing, had)
    check(
        "failed + unknown vs its sessions still without a profile",
        run.failed + counts.get("unknown", 0),
        still,
    )
    for outcome in sorted(set(counts) | set(tally)):
        check(f"counts[{outcome}] vs its items with that outcome", counts[outcome], tally[outcome])
    for column in ("created", "rescored", "existing", "failed", "skipped"):
        check(f"{column} vs counts[{column}]", getattr(run, column), counts[column])
    unsettled = sum(tally[o] for o in (BackfillItem.Outcome.PENDING, BackfillItem.Outcome.BUSY))
    check("ended with items still pending or busy", 0, unsettled)
    written = [(str(s), p) for s, o, p in items if o in ("created", "rescored")]
    check(
        "items created/re-scored whose session has no profile",
        0,
        sum(1 for s, _ in written if s not in profiles_now),
    )
    check(
        "items created/re-scored whose profile id is not the session's profile",
        0,
        sum(1 for s, p in written if s in profiles_now and str(p) != profiles_now[s]),
    )
    if run.backend == "local" and not run.dry_run:
        by_outcome = Counter(o for _, _, o in attempts)
        check("processed vs the run's finalize attempts", run.processed, len(attempts))
        for outcome in sorted(set(counts) | set(by_outcome)):
            check(
                f"counts[{outcome}] vs the run's attempts with that outcome",
                counts[outcome],
                by_outcome[outcome],
            )
        attempted = {str(sid) for sid, _, _ in attempts}
        check("sessions of the run without a finalize attempt", 0, len(sessions - attempted))
    return orphans_left, duplicates, mismatches


def rollback_report(run_id: int, rollback_id: int, timeout: float = 30.0) -> dict[str, Any]:
    """The source run's rollback report, once the rollback run wrote it (just after it ended)."""
    from remediation.models import BackfillRun

    deadline = time.monotonic() + timeout
    while True:
        report = BackfillRun.objects.get(pk=run_id).rollback_report or {}
        if report.get("rollback_run") == rollback_id or time.monotonic() > deadline:
            return report
        time.sleep(0.1)


# --- Setup ----------------------------------------------------------------------------------------
def seed_orphans(n: int) -> float:
    """Exactly `n` orphans with 248 answers each (the demo seeding, trimmed); seconds taken."""
    from django.db import connections

    from remediation.dev.demo import seed_demo
    from remediation.selectors.sessions import ORPHAN_SQL

    t = time.perf_counter()
    sessions = max(60, int(n / 0.955) + 100)
    while True:
        stats = seed_demo(
            sessions=sessions, days=20, now=datetime.now(UTC), answer_sets=sessions, force=True
        )
        if stats.orphans >= n:
            break
        sessions = int(sessions * 1.2) + 100
    with connections["pipeline"].cursor() as cur:
        cur.execute("SET statement_timeout = 0")
        # The surplus orphans (newest first) go, with their rows: N orphans exactly.
        cur.execute(
            f"CREATE TEMP TABLE surplus AS SELECT s.id FROM assessment_sessions s WHERE {ORPHAN_SQL}"
            " ORDER BY s.completed_at DESC, s.id LIMIT %s",
            [stats.orphans - n],
        )
        for table in ("fc_scores", "fc_responses", "assessment_responses", "assessment_sessions"):
            column = "id" if table == "assessment_sessions" else "session_id"
            cur.execute(f"DELETE FROM public.{table} WHERE {column} IN (SELECT id FROM surplus)")
        cur.execute("DROP TABLE surplus")
        cur.execute("ANALYZE public.assessment_sessions, public.assessment_responses")
        cur.execute(f"SELECT count(*) FROM assessment_sessions s WHERE {ORPHAN_SQL}")
        left = cur.fetchone()[0]
    if left != n:
        raise SystemExit(f"seeding gave {left} orphans, not {n}")
    return time.perf_counter() - t


def apply_fixes() -> list[str]:
    """The fixes the runbook's checks call for, applied as `manage.py fix apply` does."""
    from django.core.management import call_command

    from remediation.selectors import checks
    from remediation.selectors.sessions import newest_orphan_id
    from remediation.services import session_diagnose

    by_key = {c.key: c for c in checks.run_checks()}
    needed = []
    if by_key["service_role_bypassrls"].figure != "true" and by_key["policy_count"].figure == "0":
        needed.append("A")
    if by_key["check_constraints"].status == checks.FAIL:
        needed.append("D")
    if by_key["triggers"].status == checks.FAIL:
        needed.append("E")
    for name in needed:
        call_command("fix", "apply", name)
    newest = newest_orphan_id()
    if newest is None:
        raise SystemExit("no orphan was seeded")
    diagnosis = session_diagnose(session_id=newest)
    if diagnosis.category != "would_succeed":
        raise SystemExit(
            f"after fixes {needed or 'none'} the newest orphan's write still fails:"
            f" {diagnosis.category} {diagnosis.sqlstate}"
        )
    return needed


# --- Main ------------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orphans", type=int, default=2000, help="orphaned sessions to seed")
    parser.add_argument("--kills", type=int, default=5, help="SIGKILLs during the backfill")
    parser.add_argument(
        "--rollback-kills", type=int, default=0, help="SIGKILLs during the rollback"
    )
    parser.add_argument("--seed", type=int, default=None, help="the RNG seed (default: random)")
    parser.add_argument("--variant", choices=("emulation", "rebuilt"), default="emulation")
    parser.add_argument("--batch-size", type=int, default=200, help="the backfill's batch size")
    parser.add_argument("--workers", type=int, default=2, help="the cluster's Q_WORKERS")
    parser.add_argument(
        "--stale", type=int, default=3, help="BACKFILL_STALE_SECONDS for the watchdog (seconds)"
    )
    parser.add_argument(
        "--max-kill-delay",
        type=float,
        default=3.0,
        help="longest delay (seconds) of a kill after its point (at most one batch's cycle)",
    )
    parser.add_argument(
        "--max-down", type=float, default=1.0, help="longest wait (seconds) before a restart"
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="per run (seconds)")
    parser.add_argument(
        "--server",
        default=os.environ.get("CHAOS_PG_URL") or None,
        help="a PostgreSQL server URL (default: CHAOS_PG_URL, else an embedded server)",
    )
    parser.add_argument("--pg-dir", type=Path, default=ROOT / ".pgdata-chaos")
    parser.add_argument("--keep", action="store_true", help="keep the databases (and the server)")
    parser.add_argument("--log", type=Path, default=ROOT / "test-artifacts" / "chaos_qcluster.log")
    args = parser.parse_args()
    # SIGTERM (and SIGINT, ignored in background jobs) end the script through its cleanup:
    # the cluster killed, the databases dropped.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    rng = random.Random(seed)
    say(
        f"chaos: {args.orphans:,} orphans, {args.kills} kills (+{args.rollback_kills} during"
        f" the rollback), variant {args.variant}, seed {seed}"
    )
    say(f"machine: {machine()}")

    server = open_server(args.server, args.pg_dir)
    stamp = f"{datetime.now(UTC):%Y%m%d%H%M%S}_{os.getpid()}"
    names = (f"chaos_{stamp}_portal", f"chaos_{stamp}_pipeline")
    create_databases(server, names)
    say(f"databases {names[0]}, {names[1]} on {server.conninfo['host']}")
    env = {
        "DJANGO_SETTINGS_MODULE": "opsportal.settings",
        "DATABASE_URL": server.url(names[0]),
        "PIPELINE_DATABASE_URL": server.url(names[1]),
        "DEBUG": "true",
        "DEV_TOOLS": "true",
        "EMULATED_SCHEMA": args.variant,
        "BACKFILL_STALE_SECONDS": str(args.stale),
        "Q_WORKERS": str(args.workers),
        "Q_POLL": "0.2",
        "Q_CLUSTER_NAME": "chaos",
        "LOG_FORMAT": "text",
    }
    os.environ.update(env)
    args.log.parent.mkdir(parents=True, exist_ok=True)
    cluster = Cluster({**os.environ, **env}, args.log)
    code, summary = 2, ""
    try:
        code, summary = chaos(args, rng, server, names, cluster)
    except SystemExit as exc:  # a setup step that could not be done, with its reason
        say(f"setup failed: {exc}")
    finally:
        cluster.kill()
        from django.db import connections

        connections.close_all()
        if args.keep:
            say(f"kept the databases {names[0]}, {names[1]}")
        else:
            drop_databases(server, names)
            say("dropped the databases")
            if server.started and server.embedded_dir is not None:
                from opsportal import embedded_pg

                embedded_pg.stop(server.embedded_dir)
                say("stopped the embedded server this script started")
        if summary:
            say(f"elapsed {time.monotonic() - T0:.1f}s, seed {seed}")
    if summary:
        print(summary, flush=True)  # the last line
    return code


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def chaos(
    args: argparse.Namespace,
    rng: random.Random,
    server: Server,
    names: tuple[str, str],
    cluster: Cluster,
) -> tuple[int, str]:
    import django

    django.setup()
    import logging

    from django.core.management import call_command

    from remediation import jobs
    from remediation.dev.emulation import load_emulated_schema
    from remediation.models import BackfillRun

    for name in ("django-q", "remediation"):  # this script's own lines say what happens
        logging.getLogger(name).setLevel(logging.WARNING)
    call_command("migrate", verbosity=0)
    load_emulated_schema(variant=args.variant)
    seconds = seed_orphans(args.orphans)
    say(f"seeded {args.orphans:,} orphans with 248 answers each in {seconds:.1f}s")
    fixes = apply_fixes()
    say(f"fixes applied: {', '.join(fixes) or 'none needed'}")
    pipeline = server.connect(names[1])
    before = snapshot(pipeline)
    for table, (rows, digest) in before.tables.items():
        say(f"snapshot {table}: {rows:,} rows, md5 {digest}")

    run = jobs.backfill_start(selection="filter", batch_size=args.batch_size, actor="chaos")
    say(f"backfill run #{run.pk}: {run.estimated_total:,} sessions, batch size {run.batch_size}")
    t = time.monotonic()
    run, kills, ended = drive(run.pk, kills=args.kills, cluster=cluster, rng=rng, args=args)
    say(f"backfill {run.state} after {time.monotonic() - t:.1f}s and {kills} kills: {run.message}")
    orphans_left, duplicates, mismatches = measure(run, before, pipeline)
    if not ended:
        mismatches.append(f"MISMATCH run state: {run.state}, not an ended state")

    rollback_exact = False
    try:
        rollback = jobs.run_rollback(run.pk, actor="chaos")
    except jobs.RunError as exc:
        say(f"no rollback run: {exc}")
        rollback = None
    if rollback is not None:
        say(f"rollback run #{rollback.pk}: {rollback.estimated_total:,} sessions")
        t = time.monotonic()
        rollback, rkills, rended = drive(
            rollback.pk, kills=args.rollback_kills, cluster=cluster, rng=rng, args=args
        )
        say(f"rollback {rollback.state} after {time.monotonic() - t:.1f}s and {rkills} kills")
        # The report is written just after the rollback run ends: the cluster stays up for it.
        report = rollback_report(run.pk, rollback.pk) if rended else {}
        cluster.kill()
        if report.get("rollback_run") != rollback.pk:
            say(f"the source run #{run.pk} holds no report of rollback run #{rollback.pk}")
        say(
            f"rollback report: restored {report.get('restored')}, conflicts"
            f" {len(report.get('conflicts') or [])}, errors {len(report.get('errors') or [])},"
            f" exact {report.get('exact')}, not restored {report.get('not_restored')}"
        )
        rollback_exact = bool(
            rended and rollback.state == BackfillRun.State.SUCCEEDED and report.get("exact")
        )
    after = snapshot(pipeline)
    for table in TABLES:
        (rows0, md0), (rows1, md1) = before.tables[table], after.tables[table]
        same = "equal" if (rows0, md0) == (rows1, md1) else "DIFFERENT"
        say(f"after rollback {table}: {rows1:,} rows (before {rows0:,}), md5 {same}")
        rollback_exact = rollback_exact and (rows0, md0) == (rows1, md1)
    pipeline.close()

    for line in mismatches:
        print(line)
    good = orphans_left == 0 and duplicates == 0 and not mismatches and rollback_exact
    summary = (
        f"orphans_left={orphans_left} duplicates={duplicates} count_mismatches={len(mismatches)}"
        f" rollback_exact={'yes' if rollback_exact else 'no'}"
    )
    return (0 if good else 1), summary


if __name__ == "__main__":
    sys.exit(main())
