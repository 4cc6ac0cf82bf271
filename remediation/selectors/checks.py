"""The IR-07 runbook's checks: live reads of the pipeline's catalog and data.

Every figure comes from the database at the moment of the run (the incident's scripts
reported simulated "PASS" lines; this never does). Checks read the live catalog
(pg_policies, pg_roles, pg_constraint, pg_trigger, information_schema) rather than assume
the emulated schema. A new check is one `_check_<name>()` function returning a `Check`,
listed in CHECKS.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections
from django.utils import timezone

from remediation import display
from remediation.pipeline.constraints import Violation, check_constraints, violations
from remediation.pipeline.context import FC_VERSION, load_context
from remediation.pipeline.samples import engine_sample_rows, engine_values
from remediation.pipeline.timeouts import PipelineTimeout
from remediation.pipeline.transaction import pipeline_transaction
from remediation.selectors.sessions import ORPHAN_SQL

PASS, WARN, FAIL, INFO = "PASS", "WARN", "FAIL", "INFO"
PLAN_POLICY = "Service role can manage profiles"
STRICT_POLICY_SQL = (
    'CREATE POLICY "Service role writes profiles" ON public.profiles\n'
    "  FOR ALL TO service_role USING (true) WITH CHECK (true);"
)


@dataclass
class Check:
    """One verification: what was asked, what the database answered, against what."""

    key: str
    title: str
    status: str
    figure: str
    expected: str
    query: str
    detail: str = ""
    rows: list[list[Any]] = field(default_factory=list)


def _rows(sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with connections["pipeline"].cursor() as cur:
        cur.execute(sql, params or [])
        return list(cur.fetchall())


def _one(sql: str, params: list[Any] | None = None) -> Any:
    rows = _rows(sql, params)
    return rows[0][0] if rows else None


# --- The plan's and the incident's pre-apply checks --------------------------------------
Q_POLICY_COUNT = (
    "SELECT COUNT(*) FROM pg_policies WHERE schemaname = 'public' AND tablename = 'profiles'"
)
Q_RLS = "SELECT relrowsecurity FROM pg_class WHERE oid = 'public.profiles'::regclass"
Q_FC_BLOCKS = f"SELECT COUNT(*) FROM fc_blocks WHERE version = '{FC_VERSION}'"
Q_RECENT_ORPHANS = (
    "SELECT COUNT(*) FROM assessment_sessions s"
    f" WHERE s.completed_at >= NOW() - INTERVAL '7 days' AND {ORPHAN_SQL}"
)
Q_RESULTS_VERSION = "SELECT value #>> '{}' FROM scoring_config WHERE key = 'results_version'"
Q_NULL_TOKENS = (
    "SELECT COUNT(*) FROM assessment_sessions WHERE created_at >= NOW() - INTERVAL '7 days'"
    " AND (share_token IS NULL OR share_token = '')"
)
Q_NO_FC_SCORES = (
    "SELECT COUNT(*) FROM assessment_sessions s WHERE s.status = 'completed'"
    " AND s.completed_at >= NOW() - INTERVAL '7 days'"
    " AND EXISTS (SELECT 1 FROM fc_responses r WHERE r.session_id = s.id)"
    " AND NOT EXISTS (SELECT 1 FROM fc_scores f WHERE f.session_id = s.id)"
)
Q_POLICIES = (
    "SELECT policyname, cmd, array_to_string(roles, ','), coalesce(qual, ''), coalesce(with_check, '')"
    " FROM pg_policies WHERE schemaname = 'public' AND tablename = 'profiles' ORDER BY policyname"
)
Q_BYPASS = "SELECT rolbypassrls FROM pg_roles WHERE rolname = 'service_role'"
Q_CHECKS = (
    "SELECT conname, pg_get_expr(conbin, conrelid) FROM pg_constraint"
    " WHERE conrelid = 'public.profiles'::regclass AND contype = 'c' ORDER BY conname;\n"
    "-- then per constraint and per row the engine writes here (rolled back, nothing written):\n"
    "SELECT NOT coalesce((<expression>), true)"
    " FROM jsonb_populate_record(NULL::public.profiles, '<engine row>'::jsonb) AS profiles"
)
Q_TRIGGERS = (
    "SELECT t.tgname, p.proname, pg_get_triggerdef(t.oid), pg_get_functiondef(p.oid)"
    " FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid"
    " WHERE t.tgrelid = 'public.profiles'::regclass AND NOT t.tgisinternal ORDER BY t.tgname"
)
Q_GRANTS = (
    "SELECT r.role, has_table_privilege(r.role, 'public.profiles', 'SELECT'),"
    " has_table_privilege(r.role, 'public.profiles', 'INSERT'),"
    " has_table_privilege(r.role, 'public.profiles', 'UPDATE'),"
    " has_table_privilege(r.role, 'public.profiles', 'DELETE')"
    " FROM (VALUES ('anon'), ('authenticated'), ('service_role')) AS r(role)"
    " WHERE EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r.role)"
)
Q_SYSTEM_STATUS = "SELECT value::text FROM scoring_config WHERE key = 'system_status'"
Q_NUMERIC_ONLY = (
    "SELECT COUNT(*), COUNT(DISTINCT session_id) FROM assessment_responses"
    " WHERE answer_value IS NULL AND answer_numeric IS NOT NULL"
)


def _check_policy_count() -> Check:
    n = _one(Q_POLICY_COUNT)
    return Check(
        "policy_count",
        "Policies on profiles (plan: expected 0 before Fix A)",
        PASS if n == 0 else WARN,
        str(n),
        "0 before Fix A; 1 after",
        Q_POLICY_COUNT,
        "No policy: with RLS on, a role without BYPASSRLS can write nothing."
        if n == 0
        else "Policies exist; see their definitions below.",
    )


def _check_rls() -> Check:
    on = bool(_one(Q_RLS))
    return Check(
        "rls_enabled",
        "RLS enabled on profiles",
        PASS if on else WARN,
        str(on).lower(),
        "true",
        Q_RLS,
    )


def _check_fc_blocks() -> Check:
    n = _one(Q_FC_BLOCKS)
    return Check(
        "fc_blocks_v12",
        "fc_blocks rows for v1.2 (plan: expected 0)",
        PASS if n == 0 else INFO,
        str(n),
        "0 while the FC infrastructure is empty",
        Q_FC_BLOCKS,
        "FC empty: every finalize takes the legacy fallback (fc_fallback_legacy)."
        if n == 0
        else "FC v1.2 is seeded: finalizes with FC responses use FC scores.",
    )


def _check_recent_orphans() -> Check:
    n = _one(Q_RECENT_ORPHANS)
    return Check(
        "recent_orphans",
        "Completed sessions of the last 7 days without a profile (plan: expected > 0)",
        PASS if n > 0 else INFO,
        str(n),
        "> 0 confirms the incident; 0 once recovered",
        Q_RECENT_ORPHANS,
    )


def _check_results_version() -> Check:
    v = _one(Q_RESULTS_VERSION)
    return Check(
        "results_version",
        "scoring_config.results_version",
        PASS if v == "v1.2.1" else FAIL,
        str(v),
        '"v1.2.1"',
        Q_RESULTS_VERSION,
    )


def _banded(n: int, warn_max: int) -> str:
    """The incident's bands: 0 pass, up to warn_max warn, more fail."""
    return PASS if n == 0 else WARN if n <= warn_max else FAIL


def _check_null_tokens() -> Check:
    n = _one(Q_NULL_TOKENS)
    status = _banded(n, 5)
    return Check(
        "null_share_tokens",
        "Recent sessions (7 days) with no share token",
        status,
        str(n),
        "0 pass, ≤ 5 warn, > 5 fail",
        Q_NULL_TOKENS,
    )


def _check_no_fc_scores() -> Check:
    n = _one(Q_NO_FC_SCORES)
    status = _banded(n, 10)
    return Check(
        "no_fc_scores",
        "Completed sessions of the last 7 days with FC responses but no fc_scores",
        status,
        str(n),
        "0 pass, ≤ 10 warn, > 10 fail",
        Q_NO_FC_SCORES,
    )


def _check_policies() -> Check:
    rows = [list(r) for r in _rows(Q_POLICIES)]
    spoofable = [
        r[0] for r in rows if "public" in r[2].split(",") and "auth.role()" in (r[3] + r[4])
    ]
    detail = ""
    if spoofable:
        detail = (
            f"{', '.join(spoofable)}: TO public with a check on auth.role() — any session that can "
            "run SQL sets the claim itself and passes. Stricter: " + STRICT_POLICY_SQL
        )
    return Check(
        "policies",
        "Policy definitions on profiles",
        WARN if spoofable else INFO,
        str(len(rows)),
        "policies scoped TO service_role, not TO public",
        Q_POLICIES,
        detail,
        rows,
    )


def _check_bypass() -> Check:
    bypass = _one(Q_BYPASS)
    detail = (
        "service_role bypasses RLS (hosted Supabase): a missing policy cannot block its writes, "
        "so Fix A cannot be the root cause."
        if bypass
        else "service_role does not bypass RLS here: without a policy its profile writes fail with 42501."
    )
    return Check(
        "service_role_bypassrls",
        "service_role has BYPASSRLS",
        INFO,
        str(bool(bypass)).lower(),
        "true on hosted Supabase",
        Q_BYPASS,
        detail,
    )


def _check_constraints() -> Check:
    """Every value the engine can write here, against every CHECK on profiles, by PostgreSQL."""
    ctx = load_context()
    rows = engine_sample_rows(ctx, timezone.now())
    rejecting: list[Violation] = []
    table_rows: list[list[Any]] = []
    with connections["pipeline"].cursor() as cur:
        constraints = check_constraints(cur)
        for c in constraints:
            if not any(col in row for _, row in rows for col in c.columns):
                table_rows.append([c.name, c.definition, "not written by the engine"])
                continue
            refused = [v for _, row in rows for v in violations(cur, row, [c])]
            refused = list(dict.fromkeys(refused))
            rejecting.extend(refused)
            verdict = "; ".join(f"refuses {v.column} = {v.value!r}" for v in refused)
            table_rows.append([c.name, c.definition, verdict or "accepts the engine's values"])
    checked = {col for c in constraints for col in c.columns}
    written = engine_values(rows, checked)
    tested = "; ".join(f"{col} {', '.join(map(repr, vals))}" for col, vals in written.items())
    basis = (
        f"The engine writes here (scoring_config fc_expected_min = "
        f"{ctx.scorer.config.fc_expected_min:g}, {len(rows)} sample sessions): {tested or 'none'}."
    )
    detail = (
        "; ".join(f"{v.constraint} rejects {v.column} = {v.value!r}" for v in rejecting)
        + ". "
        + basis
        if rejecting
        else "Every CHECK constraint accepts every value the engine writes. " + basis
    )
    return Check(
        "check_constraints",
        "CHECK constraints on profiles vs the values the engine writes",
        FAIL if rejecting else PASS,
        str(len(rejecting)),
        "0 (constraint, value) pairs rejecting a value the engine writes",
        Q_CHECKS,
        detail,
        table_rows,
    )


def recursive_triggers() -> list[str]:
    """Triggers on profiles whose function updates profiles with no trigger-depth guard."""
    found = []
    for tgname, proname, trigger_def, source in _rows(Q_TRIGGERS):
        body = source.lower() + " " + trigger_def.lower()
        updates_profiles = "update public.profiles" in body or "update profiles" in body
        if updates_profiles and "pg_trigger_depth()" not in body:
            found.append(f"{tgname} ({proname}) updates profiles with no pg_trigger_depth() guard")
    return found


def _check_triggers() -> Check:
    rows = [[r[0], r[1], r[2]] for r in _rows(Q_TRIGGERS)]
    recursive = recursive_triggers()
    return Check(
        "triggers",
        "Triggers on profiles",
        FAIL if recursive else PASS,
        str(len(rows)),
        "no trigger that re-fires itself",
        Q_TRIGGERS,
        "; ".join(recursive) or "No recursive trigger.",
        rows,
    )


def _check_grants() -> Check:
    rows = [list(r) for r in _rows(Q_GRANTS)]
    missing = [r[0] for r in rows if r[0] == "service_role" and not (r[1] and r[2] and r[3])]
    return Check(
        "grants",
        "Grants on profiles per role (SELECT, INSERT, UPDATE, DELETE)",
        FAIL if missing else PASS,
        "; ".join(f"{r[0]}: {'/'.join('y' if x else 'n' for x in r[1:])}" for r in rows),
        "service_role: SELECT, INSERT, UPDATE",
        Q_GRANTS,
        "service_role lacks a grant the upsert needs" if missing else "",
        rows,
    )


def _check_system_status() -> Check:
    raw = _one(Q_SYSTEM_STATUS)
    value = json.loads(raw) if raw else {}
    status = value.get("status") if isinstance(value, dict) else value
    return Check(
        "system_status",
        "scoring_config.system_status (the maintenance gate)",
        PASS if status == "ok" else WARN,
        str(status),
        '"ok" (anything else pauses finalize and backfill)',
        Q_SYSTEM_STATUS,
        str(value.get("message", "")) if isinstance(value, dict) else "",
    )


def _check_numeric_only() -> Check:
    rows, sessions = _rows(Q_NUMERIC_ONLY)[0]
    return Check(
        "answers_numeric_only",
        "Answers stored only in answer_numeric",
        WARN if rows else PASS,
        f"{rows} answers in {sessions} sessions",
        "0 (the v1.2.1 scorer read only answer_value)",
        Q_NUMERIC_ONLY,
        "The portal scores coalesce(answer_value, answer_numeric::text); the deployed scorer dropped these."
        if rows
        else "",
    )


Q_OPTIONAL_COLUMNS = (
    "SELECT table_name, column_name FROM information_schema.columns"
    " WHERE table_schema = 'public' AND table_name = ANY(%s)"
)


def _check_optional_columns() -> Check:
    """Which of the optional columns the portal writes this database has (it writes only those)."""
    from remediation.pipeline.schema import OPTIONAL_COLUMNS

    present = {(t, c) for t, c in _rows(Q_OPTIONAL_COLUMNS, [list(OPTIONAL_COLUMNS)])}
    rows = [
        [table, column, "present" if (table, column) in present else "absent"]
        for table, columns in OPTIONAL_COLUMNS.items()
        for column in columns
    ]
    absent = [f"{t}.{c}" for t, c, state in rows if state == "absent"]
    return Check(
        "optional_columns",
        "Optional columns the portal writes (it writes only those that exist)",
        INFO,
        f"{len(rows) - len(absent)} of {len(rows)} present",
        "any: the live schema decides",
        Q_OPTIONAL_COLUMNS,
        ("Absent here, so never written or shown: " + ", ".join(absent))
        if absent
        else "All present.",
        rows,
    )


def _check_orphan_ledger() -> Check:
    """Whether the orphan list's ledger (portal schema) and the completed_at index its live
    tail reads exist, and whether the ledger is current (remediation/selectors/orphan_ledger.py)."""
    from remediation.selectors import orphan_ledger as ledger

    state = ledger.ledger_state()
    now = timezone.now()
    index = "present" if state.tail_index else "absent"
    rows = [
        ["ledger", f"{ledger._schema()}.{ledger.LEDGER}", "present" if state.exists else "absent"],
        ["tail index", "assessment_sessions (completed_at …)", index],
    ]
    query = f"{ledger.Q_LEDGER_EXISTS};\n{ledger.Q_TAIL_INDEX};\n{ledger.q_state()}"
    title = "Orphan ledger (the orphan list's fast sorts and filters)"
    expected = (
        f"present, intact, refreshed within {2 * settings.ORPHAN_LEDGER_REFRESH_MINUTES} min;"
        " tail index present"
    )
    if not state.exists:
        return Check(
            "orphan_ledger",
            title,
            WARN,
            "absent",
            expected,
            query,
            "The orphan list reads the plain definition: oldest-first and filtered pages walk"
            " every session with a profile. Create the ledger: Orphan ledger… below (confirm page).",
            rows,
        )
    age = state.age_seconds(now)
    figure = (
        f"{state.rows:,} rows, refreshed {int(age)} s ago" if age is not None else "never refreshed"
    )
    problems = []
    if state.refreshed_at is None:
        problems.append("never refreshed")
    elif not state.intact:
        problems.append(
            "profiles were deleted (or truncated) since the refresh: the list reads the plain"
            " definition until the next refresh"
        )
    elif not state.current(now):
        problems.append("older than twice the refresh interval: is the job cluster running?")
    if not state.tail_index:
        problems.append(
            "assessment_sessions has no index on completed_at: the live tail is a sequential"
            " scan. Recommended: CREATE INDEX CONCURRENTLY assessment_sessions_completed_idx"
            " ON public.assessment_sessions (completed_at DESC) WHERE status = 'completed';"
        )
    return Check(
        "orphan_ledger",
        title,
        WARN if problems else PASS,
        figure,
        expected,
        query,
        "; ".join(problems)
        or f"Current; completions since {display.when(state.horizon)} are read live.",
        rows,
    )


CHECKS: list[Callable[[], Check]] = [
    _check_policy_count,
    _check_rls,
    _check_fc_blocks,
    _check_recent_orphans,
    _check_results_version,
    _check_null_tokens,
    _check_no_fc_scores,
    _check_policies,
    _check_bypass,
    _check_constraints,
    _check_triggers,
    _check_grants,
    _check_system_status,
    _check_numeric_only,
    _check_optional_columns,
    _check_orphan_ledger,
]


def run_checks() -> list[Check]:
    """Every check, live; a check whose query fails reports FAIL with the database's error."""
    out = []
    for fn in CHECKS:
        try:
            with pipeline_transaction():
                out.append(fn())
        except PipelineTimeout:
            # A locked table: every further check would wait the timeout again. The caller
            # (page, command) reports it once.
            raise
        except DatabaseError as exc:
            name = fn.__name__.removeprefix("_check_")
            out.append(
                Check(name, name.replace("_", " "), FAIL, "error", "", "", str(exc).splitlines()[0])
            )
    return out
