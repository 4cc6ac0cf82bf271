"""Building pipeline rows for tests (real SQL on the emulated Supabase database)."""

from __future__ import annotations

import contextlib
import random
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import psycopg
from django.db import connections
from django.utils import timezone

from remediation import reference_data
from remediation.dev.demo import load_reference_data
from remediation.dev.emulation import table_columns

__all__ = [
    "apply_plan_policy",
    "clear_write_path",
    "held_elsewhere",
    "load_reference_data",
    "make_session",
    "pipeline_sql",
    "relax_checks",
    "reload_variant",
]


def pipeline_sql(sql: str, params=None, fetch: str | None = None):
    with connections["pipeline"].cursor() as cur:
        cur.execute(sql, params or [])
        if fetch == "one":
            return cur.fetchone()
        if fetch == "all":
            return cur.fetchall()
        return None


@contextlib.contextmanager
def held_elsewhere(sql: str, params=None, using: str = "pipeline") -> Iterator[psycopg.Connection]:
    """Another connection to the `using` database (psycopg, its own transaction, as another
    worker, a support engineer or a migration would be) runs `sql`, a `LOCK TABLE ...`, a
    `SELECT ... FOR UPDATE` or an advisory lock, and holds what it took until the block ends
    (rolled back, then closed). Yields the connection: `conn.rollback()` releases a
    transaction's lock earlier."""
    conf = connections[using].settings_dict
    with psycopg.connect(
        host=conf["HOST"] or conf.get("OPTIONS", {}).get("host"),
        port=conf["PORT"] or None,
        user=conf["USER"],
        password=conf["PASSWORD"] or None,
        dbname=conf["NAME"],
        autocommit=False,
    ) as other:
        other.execute(sql, params)
        try:
            yield other
        finally:
            other.rollback()


def make_session(
    *,
    seed: int = 1,
    status: str = "completed",
    numeric_only: bool = False,
    answers: dict[int, str | None] | None = None,
    completed_at: datetime | None = None,
    share_token: str | None = None,
) -> str:
    """A session with a full 248-answer set (or `answers`), returns its id."""
    rng = random.Random(seed)
    sid = str(uuid.uuid4())  # answers follow `seed`; ids are always fresh
    now = timezone.now()
    completed = completed_at or (now - timedelta(days=2) if status == "completed" else None)
    row = {
        "id": sid,
        "status": status,
        "started_at": now - timedelta(days=3),
        "completed_at": completed,
        "share_token": share_token or uuid.uuid4().hex,
        "email": f"t{seed}@example.org",
        "finalized_at": completed,  # absent in the rebuilt variant
    }
    present = set(table_columns("assessment_sessions"))
    names = [c for c in row if c in present]
    pipeline_sql(
        f"INSERT INTO assessment_sessions ({', '.join(names)})"
        f" VALUES ({', '.join(['%s'] * len(names))})",
        [row[c] for c in names],
    )
    if answers is None:
        answers = {}
        for row in reference_data.scoring_key_rows():
            st = row.scale_type
            if st.startswith(("LIKERT_1_5",)):
                answers[row.question_id] = str(rng.randint(1, 5))
            elif st.startswith(("LIKERT_1_7", "STATE")):
                answers[row.question_id] = str(rng.randint(1, 7))
            elif row.fc_map:
                answers[row.question_id] = rng.choice(sorted(row.fc_map))
            else:
                answers[row.question_id] = "n/a"
        answers[247] = "free text"
        answers[248] = "free text"
    key = {r.question_id: r for r in reference_data.scoring_key_rows()}
    with connections["pipeline"].cursor() as cur:
        for qid, value in answers.items():
            numeric = int(value) if value is not None and value.isdigit() else None
            is_likert = qid in key and key[qid].scale_type.startswith("LIKERT")
            stored_value = None if (numeric_only and is_likert and numeric is not None) else value
            cur.execute(
                "INSERT INTO assessment_responses (session_id, question_id, question_text,"
                " question_type, question_section, answer_value, answer_numeric)"
                " VALUES (%s, %s, 'q', 't', 'core', %s, %s)",
                [sid, qid, stored_value, numeric],
            )
    return sid


# scoring.md §8: option A in all six v1.2 blocks (functions basis, blocks_answered 6).
OPTION_A_EVERYWHERE = {
    "Te": 90,
    "Ti": 90,
    "Fe": 50,
    "Fi": 60,
    "Ne": 80,
    "Ni": 100,
    "Se": 70,
    "Si": 50,
}

PLAN_POLICY = (
    'CREATE POLICY "Service role can manage profiles" ON public.profiles FOR ALL TO public'
    " USING (auth.role() = 'service_role') WITH CHECK (auth.role() = 'service_role')"
)


def apply_plan_policy() -> None:
    pipeline_sql(PLAN_POLICY)


# The migrations' CHECK constraints on profiles (as both variants' SQL creates them).
CHECKS = {
    "profiles_overlay_neuro_check": "overlay_neuro IN ('+', '–', '0')",
    "profiles_overlay_state_check": "overlay_state IN ('+', '–', '0')",
    "profiles_fc_coverage_bucket_check": "fc_coverage_bucket IN ('None', 'Partial', 'Full')",
}


def relax_checks() -> None:
    """The three CHECK constraints accept the engine's vocabulary (what Fix D does)."""
    pipeline_sql("ALTER TABLE profiles " + ", ".join(f"DROP CONSTRAINT {name}" for name in CHECKS))


def restore_checks() -> None:
    """Put the migrations' CHECK constraints back as the schema has them (after relax_checks
    in a committed test): validated, as the schema's are, unless rows written while they
    were relaxed break one (a test's own profiles, which it may still read): that one
    stays NOT VALID, as a database with such rows would have it. No row is deleted."""
    pipeline_sql(
        "ALTER TABLE profiles "
        + ", ".join(f"DROP CONSTRAINT IF EXISTS {name}" for name in CHECKS)
        + ", "
        + ", ".join(f"ADD CONSTRAINT {name} CHECK ({c}) NOT VALID" for name, c in CHECKS.items())
    )
    for name, check in CHECKS.items():
        if not pipeline_sql(
            f"SELECT EXISTS (SELECT 1 FROM profiles WHERE NOT ({check}))", [], "one"
        )[0]:
            pipeline_sql(f"ALTER TABLE profiles VALIDATE CONSTRAINT {name}")


@contextlib.contextmanager
def clear_write_path(variant: str | None = None):
    """Committed: nothing blocks a profile write of the engine; restored on exit.

    Without `variant` (the emulation): service_role BYPASSRLS and relaxed CHECKs, both
    put back on exit. With a variant name, on that variant: the emulation as above; the
    rebuilt variant's service_role bypasses RLS already, but its writes also meet the
    recursive update_fc_metrics_trigger (54001), so Fix E is applied too. On exit the
    variant is loaded again from its SQL (reload_variant): exactly its catalog, whatever
    the test added (constraints, revoked grants, fixes).
    """
    if variant not in (None, "emulation", "rebuilt"):
        raise ValueError(f"unknown schema variant {variant!r}")
    if variant == "rebuilt":
        from remediation.fixes import executor

        relax_checks()
        executor.run("E")
    else:
        pipeline_sql("ALTER ROLE service_role BYPASSRLS")
        relax_checks()
    try:
        yield
    finally:
        if variant is None:
            pipeline_sql("ALTER ROLE service_role NOBYPASSRLS")
            restore_checks()
        else:
            reload_variant(variant)


def reload_variant(variant: str) -> None:
    """Committed: drop the pipeline tables and load `variant` again from its SQL (the suite's
    knobs), with its seeded rows; the fixes' records in the pipeline database are dropped."""
    from django.conf import settings

    from remediation.dev.emulation import load_emulated_schema, seed_variant_rows

    load_emulated_schema(
        variant=variant, reset=True, service_role_bypassrls=False, fc_metrics_trigger=False
    )
    seed_variant_rows(variant)
    pipeline_sql(f"DROP SCHEMA IF EXISTS {settings.PIPELINE_PORTAL_SCHEMA} CASCADE")


def heartbeat_stale(run_id: int) -> None:
    """The run's heartbeat as a killed worker leaves it: ten minutes old (the watchdog, with
    any stale period under that, takes the run for stopped mid-run)."""
    from remediation.models import BackfillRun

    BackfillRun.objects.filter(pk=run_id).update(
        heartbeat_at=timezone.now() - timedelta(minutes=10)
    )


def rollback_run(run_id: int) -> dict:
    """Roll a finalize run back as the portal does (a rollback run), in this process; its report."""
    from remediation import jobs
    from remediation.models import BackfillRun

    rollback = jobs.run_rollback(run_id, enqueue=False)
    jobs.run_until_done(rollback.pk)
    return BackfillRun.objects.get(pk=run_id).rollback_report


# The fixes each migration target of the old linear chain meant (tests speak in those terms).
_FIXES_AT = {"0004": "", "0005": "A", "0006": "A", "0007": "AD", "0008": "ADE"}


def set_fixes(target: str) -> None:
    """Apply and roll back fixes, each on its own, until exactly those of `target` are applied."""
    from remediation.fixes import executor

    wanted = set(_FIXES_AT[target])
    for name in ("E", "D", "A"):
        if name not in wanted:
            executor.run(name, reverse=True)
    for name in ("A", "D", "E"):
        if name in wanted:
            executor.run(name)


@contextlib.contextmanager
def emulated_edge(**overrides):
    """The edge-function emulator in a thread on loopback, and the settings that call it:
    SUPABASE_URL, a test key and short client timeouts (no retry), each of them changed by
    `overrides`."""
    from django.test import override_settings

    from opsportal.secrets import Secret
    from remediation.dev.edge_emulator import start_in_thread

    client = {
        "SUPABASE_SERVICE_ROLE_KEY": Secret("edge-test-service-role-key"),
        "EDGE_CONNECT_TIMEOUT": 1.0,
        "EDGE_READ_TIMEOUT": 5.0,
        "EDGE_MAX_RETRIES": 0,
        "EDGE_BACKOFF_BASE": 0.01,
    }
    server = start_in_thread()
    try:
        with override_settings(SUPABASE_URL=server.url, **{**client, **overrides}):
            yield server
    finally:
        server.shutdown()
        server.server_close()


def start_new_backfill(client, data: dict, **params):
    """Backfill runs → Add as a person does it: the form (`data`: the selection and its
    parameters), then the confirmation page's "Start backfill" (with `params` changed).
    Returns the confirmation page's response and the final one."""
    from django.urls import reverse

    add = reverse("admin:remediation_backfillrun_add")
    confirm = client.post(add, data)
    assert confirm.status_code == 200, confirm.status_code
    hidden = dict(confirm.context["hidden"])
    form = confirm.context["form"]
    values = {
        name: value
        for name, value in ((f.name, f.value()) for f in form)
        if value not in (None, False, "")
    }
    values = {k: ("on" if v is True else v) for k, v in values.items()}
    done = client.post(add, {**hidden, **values, **params})
    return confirm, done
