"""The IR-07 runbook: live checks, the write-path probe, verification, fixes and gates.

Every figure comes from the database at the moment of the run (the incident's scripts
reported simulated "PASS" lines; this never does). Checks read the live catalog
(pg_policies, pg_roles, pg_constraint, pg_trigger, information_schema) rather than assume
the emulated schema.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from django.core.management import call_command
from django.db import DatabaseError, connections, transaction
from django.utils import timezone

from remediation import pipeline_write as pw

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
Q_FC_BLOCKS = "SELECT COUNT(*) FROM fc_blocks WHERE version = 'v1.2'"
Q_RECENT_ORPHANS = (
    "SELECT COUNT(*) FROM assessment_sessions s LEFT JOIN profiles p ON p.session_id = s.id"
    " WHERE s.completed_at >= NOW() - INTERVAL '7 days' AND s.status = 'completed' AND p.id IS NULL"
)
Q_RESULTS_VERSION = "SELECT value #>> '{}' FROM scoring_config WHERE key = 'results_version'"
Q_NULL_TOKENS = (
    "SELECT COUNT(*) FROM assessment_sessions WHERE created_at >= NOW() - INTERVAL '7 days'"
    " AND (share_token IS NULL OR share_token = '')"
)
Q_NO_FC_SCORES = (
    "SELECT COUNT(*) FROM assessment_sessions s WHERE s.status = 'completed'"
    " AND s.completed_at >= NOW() - INTERVAL '7 days'"
    " AND NOT EXISTS (SELECT 1 FROM fc_scores f WHERE f.session_id = s.id)"
)
Q_POLICIES = (
    "SELECT policyname, cmd, array_to_string(roles, ','), coalesce(qual, ''), coalesce(with_check, '')"
    " FROM pg_policies WHERE schemaname = 'public' AND tablename = 'profiles' ORDER BY policyname"
)
Q_BYPASS = "SELECT rolbypassrls FROM pg_roles WHERE rolname = 'service_role'"
Q_CHECKS = (
    "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
    " WHERE conrelid = 'public.profiles'::regclass AND contype = 'c' ORDER BY conname"
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
ENGINE_VOCABULARY = {"overlay_neuro": "none", "overlay_state": "none", "fc_coverage_bucket": "full"}


def _check_policy_count() -> Check:
    n = _one(Q_POLICY_COUNT)
    return Check(
        "policy_count", "Policies on profiles (plan: expected 0 before Fix A)",
        PASS if n == 0 else WARN, str(n), "0 before Fix A; 1 after", Q_POLICY_COUNT,
        "No policy: with RLS on, a role without BYPASSRLS can write nothing." if n == 0
        else "Policies exist; see their definitions below.",
    )  # fmt: skip


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
        "fc_blocks_v12", "fc_blocks rows for v1.2 (plan: expected 0)", PASS if n == 0 else INFO, str(n),
        "0 while the FC infrastructure is empty", Q_FC_BLOCKS,
        "FC empty: every finalize takes the legacy fallback (fc_fallback_legacy)." if n == 0
        else "FC v1.2 is seeded: finalizes with FC responses use FC scores.",
    )  # fmt: skip


def _check_recent_orphans() -> Check:
    n = _one(Q_RECENT_ORPHANS)
    return Check(
        "recent_orphans", "Completed sessions of the last 7 days without a profile (plan: expected > 0)",
        PASS if n > 0 else INFO, str(n), "> 0 confirms the incident; 0 once recovered", Q_RECENT_ORPHANS,
    )  # fmt: skip


def _check_results_version() -> Check:
    v = _one(Q_RESULTS_VERSION)
    return Check(
        "results_version", "scoring_config.results_version", PASS if v == "v1.2.1" else FAIL, str(v),
        '"v1.2.1"', Q_RESULTS_VERSION,
    )  # fmt: skip


def _banded(n: int, warn_max: int) -> str:
    """The incident's bands: 0 pass, up to warn_max warn, more fail."""
    return PASS if n == 0 else WARN if n <= warn_max else FAIL


def _check_null_tokens() -> Check:
    n = _one(Q_NULL_TOKENS)
    status = _banded(n, 5)
    return Check(
        "null_share_tokens", "Recent sessions (7 days) with no share token", status, str(n),
        "0 pass, ≤ 5 warn, > 5 fail", Q_NULL_TOKENS,
    )  # fmt: skip


def _check_no_fc_scores() -> Check:
    n = _one(Q_NO_FC_SCORES)
    status = _banded(n, 10)
    return Check(
        "no_fc_scores", "Completed sessions of the last 7 days without fc_scores", status, str(n),
        "0 pass, ≤ 10 warn, > 10 fail", Q_NO_FC_SCORES,
    )  # fmt: skip


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
        "policies", "Policy definitions on profiles", WARN if spoofable else INFO, str(len(rows)),
        "policies scoped TO service_role, not TO public", Q_POLICIES, detail, rows,
    )  # fmt: skip


def _check_bypass() -> Check:
    bypass = _one(Q_BYPASS)
    detail = (
        "service_role bypasses RLS (hosted Supabase): a missing policy cannot block its writes, "
        "so Fix A cannot be the root cause."
        if bypass
        else "service_role does not bypass RLS here: without a policy its profile writes fail with 42501."
    )
    return Check(
        "service_role_bypassrls", "service_role has BYPASSRLS", INFO, str(bool(bypass)).lower(),
        "true on hosted Supabase", Q_BYPASS, detail,
    )  # fmt: skip


def _check_constraints() -> Check:
    rows = [list(r) for r in _rows(Q_CHECKS)]
    rejecting = []
    for name, definition in rows:
        for column, value in ENGINE_VOCABULARY.items():
            if column in definition and f"'{value}'" not in definition:
                rejecting.append(f"{name} rejects {column} = '{value}'")
    return Check(
        "check_constraints", "CHECK constraints on profiles vs the v1.2.1 vocabulary",
        FAIL if rejecting else PASS, str(len(rejecting)), "0 constraints rejecting the engine's values",
        Q_CHECKS, "; ".join(rejecting) or "The engine's values ('none', 'full'/'low') are accepted.", rows,
    )  # fmt: skip


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
        "triggers", "Triggers on profiles", FAIL if recursive else PASS, str(len(rows)),
        "no trigger that re-fires itself", Q_TRIGGERS,
        "; ".join(recursive) or "No recursive trigger.", rows,
    )  # fmt: skip


def _check_grants() -> Check:
    rows = [list(r) for r in _rows(Q_GRANTS)]
    missing = [r[0] for r in rows if r[0] == "service_role" and not (r[1] and r[2] and r[3])]
    return Check(
        "grants", "Grants on profiles per role (SELECT, INSERT, UPDATE, DELETE)", FAIL if missing else PASS,
        "; ".join(f"{r[0]}: {'/'.join('y' if x else 'n' for x in r[1:])}" for r in rows),
        "service_role: SELECT, INSERT, UPDATE", Q_GRANTS,
        "service_role lacks a grant the upsert needs" if missing else "", rows,
    )  # fmt: skip


def _check_system_status() -> Check:
    raw = _one(Q_SYSTEM_STATUS)
    value = json.loads(raw) if raw else {}
    status = value.get("status") if isinstance(value, dict) else value
    return Check(
        "system_status", "scoring_config.system_status (the maintenance gate)", PASS if status == "ok" else WARN,
        str(status), '"ok" (anything else pauses finalize and backfill)', Q_SYSTEM_STATUS,
        str(value.get("message", "")) if isinstance(value, dict) else "",
    )  # fmt: skip


def _check_numeric_only() -> Check:
    rows, sessions = _rows(Q_NUMERIC_ONLY)[0]
    return Check(
        "answers_numeric_only", "Answers stored only in answer_numeric", WARN if rows else PASS,
        f"{rows} answers in {sessions} sessions", "0 (the v1.2.1 scorer read only answer_value)",
        Q_NUMERIC_ONLY,
        "The portal scores coalesce(answer_value, answer_numeric::text); the deployed scorer dropped these."
        if rows else "",
    )  # fmt: skip


CHECKS: list[Callable[[], Check]] = [
    _check_policy_count, _check_rls, _check_fc_blocks, _check_recent_orphans, _check_results_version,
    _check_null_tokens, _check_no_fc_scores, _check_policies, _check_bypass, _check_constraints,
    _check_triggers, _check_grants, _check_system_status, _check_numeric_only,
]  # fmt: skip


def run_checks() -> list[Check]:
    """Every check, live; a check whose query fails reports FAIL with the database's error."""
    out = []
    for fn in CHECKS:
        try:
            with transaction.atomic(using="pipeline"):
                out.append(fn())
        except DatabaseError as exc:
            name = fn.__name__.removeprefix("_check_")
            out.append(
                Check(name, name.replace("_", " "), FAIL, "error", "", "", str(exc).splitlines()[0])
            )
    return out


# --- The write-path probe --------------------------------------------------------------
@dataclass
class ProbeCell:
    role: str
    claim: str
    select: str
    insert: str


def probe_write_path() -> dict[str, Any]:
    """SELECT and INSERT on profiles as each role, with PostgREST's claims, all rolled back."""
    with connections["pipeline"].cursor() as cur:
        cur.execute("SELECT current_user")
        own = cur.fetchone()[0]
        cur.execute("SELECT rolbypassrls FROM pg_roles WHERE rolname = 'service_role'")
        row = cur.fetchone()
        bypass = bool(row and row[0])
        cur.execute(
            "SELECT count(*) FROM pg_policies WHERE schemaname = 'public' AND tablename = 'profiles'"
        )
        policies = cur.fetchone()[0]
    cases = [
        ("anon", "anon"),
        ("authenticated", "authenticated"),
        ("service_role", "service_role"),
        (own, "(none: the portal's own connection)"),
        ("authenticated", "service_role (forged)"),
    ]
    cells = [ProbeCell(role, claim, *_probe(role, claim, own)) for role, claim in cases]
    forged = cells[-1]
    notes = []
    if forged.insert == "allowed" and policies:
        notes.append(
            "A forged claim gets through: a session running as authenticated that sets "
            "request.jwt.claims role=service_role passes the plan's policy (TO public, auth.role() "
            "= 'service_role'). Scope the policy to the role instead: " + STRICT_POLICY_SQL
        )
    if bypass:
        notes.append(
            "service_role has BYPASSRLS: its writes ignore every policy, so the plan's policy "
            "changes nothing for the real edge function."
        )
    return {"own_role": own, "bypassrls": bypass, "policies": policies, "cells": [asdict(c) for c in cells],
            "notes": notes, "strict_policy": STRICT_POLICY_SQL}  # fmt: skip


def _probe(role: str, claim: str, own: str) -> tuple[str, str]:
    results = []
    for op in ("select", "insert"):
        try:
            with transaction.atomic(using="pipeline"), connections["pipeline"].cursor() as cur:
                sid = None
                if op == "insert":
                    cur.execute(
                        "INSERT INTO assessment_sessions (status, share_token) VALUES ('completed',"
                        " 'probe-' || gen_random_uuid()::text) RETURNING id::text"
                    )
                    sid = cur.fetchone()[0]
                if role != own:
                    cur.execute(f'SET LOCAL ROLE "{role}"')
                if not claim.startswith("(none"):
                    cur.execute(
                        "SELECT set_config('request.jwt.claims', %s, true)",
                        [pw.postgrest_claims(claim.split(" ")[0])],
                    )
                if op == "select":
                    cur.execute("SELECT count(*) FROM profiles")
                    results.append(f"allowed ({cur.fetchone()[0]} rows visible)")
                else:
                    cur.execute(
                        "INSERT INTO profiles (session_id, overlay_neuro, overlay_state, fc_coverage_bucket,"
                        " results_version) VALUES (%s, '0', '0', 'None', 'probe')",
                        [sid],
                    )
                    results.append("allowed")
                transaction.set_rollback(True, using="pipeline")
        except DatabaseError as exc:
            info = pw.classify_error(exc)
            results.append(f"refused: {info.sqlstate} {info.category}")
    return results[0], results[1]


# --- Verification (the plan's success criteria) ------------------------------------------
def verify(*, session_id: str | None = None, actor: Any = None) -> dict[str, Any]:
    """Finalize a test session (default: the newest orphan) and check the success criteria."""
    from remediation import selectors
    from remediation.services import session_finalize

    if session_id is None:
        newest = (
            selectors.orphaned_sessions()
            .order_by("-completed_at")
            .values_list("pk", flat=True)
            .first()
        )
        if newest is None:
            return {"session_id": None, "checks": [asdict(Check(
                "test_session", "A test session to finalize", FAIL, "none", "an orphaned session",
                "", "There is no orphaned session left to verify with; pass one explicitly.",
            ))]}  # fmt: skip
        session_id = str(newest)
    attempt = session_finalize(session_id=session_id, actor=actor, source="runbook")
    version = _one("SELECT results_version FROM profiles WHERE session_id = %s", [session_id])
    fc_blocks = _one(Q_FC_BLOCKS)
    names = [e.get("name") for e in attempt.events]
    since = timezone.now() - timedelta(hours=1)
    from remediation.models import FinalizeAttempt

    rls_hour = (
        FinalizeAttempt.objects.filter(reason="rls", started_at__gte=since)
        .exclude(pk=attempt.pk)
        .count()
    )
    checks = [
        Check("profile_v121", "Test session has a profile with results_version v1.2.1",
              PASS if version == "v1.2.1" else FAIL, str(version), "v1.2.1",
              "SELECT results_version FROM profiles WHERE session_id = '<id>'",
              f"finalize: {attempt.outcome} {attempt.reason} {attempt.sqlstate} {attempt.explanation}".strip()),
        Check("no_rls_violation", "No RLS violation", PASS if attempt.reason != "rls" else FAIL,
              f"this finalize: {attempt.reason or attempt.outcome}; RLS failures in the last hour: {rls_hour}",
              "no 42501 row-level security", "finalize attempt + FinalizeAttempt(reason='rls', last hour)"),
        Check("fc_fallback_logged", "fc_fallback_legacy recorded while FC is empty",
              (PASS if "fc_fallback_legacy" in names else FAIL) if fc_blocks == 0 else INFO,
              ", ".join(n for n in names if n) or "no events", "fc_fallback_legacy when fc_blocks v1.2 = 0",
              Q_FC_BLOCKS, "" if fc_blocks == 0 else f"FC v1.2 has {fc_blocks} blocks: not applicable"),
    ]  # fmt: skip
    return {"session_id": session_id, "attempt_id": attempt.pk, "results_url": attempt.results_url,
            "checks": [asdict(c) for c in checks]}  # fmt: skip


# --- Fixes, rollback and gates -----------------------------------------------------------
FIXES = {
    # name: (migration that applies it, migration before it)
    "A": ("0005_fix_a_service_role_policy", "0004_runbook_records"),
    "D": ("0007_fix_d_check_vocabulary", "0006_health"),
    "E": ("0008_fix_e_trigger_guard", "0007_fix_d_check_vocabulary"),
}


def fix_state(name: str) -> bool:
    """Whether the fix's migration is recorded as applied in the pipeline database."""
    from django.db.migrations.recorder import MigrationRecorder

    recorder = MigrationRecorder(connections["pipeline"])
    if not recorder.has_table():
        return False
    return ("remediation", FIXES[name][0]) in recorder.applied_migrations()


def apply_fix(name: str, *, reverse: bool = False) -> str:
    """manage.py migrate remediation <target> --database pipeline, as the runbook's button."""
    forward, before = FIXES[name]
    target = before if reverse else forward
    call_command(
        "migrate", "remediation", target, database="pipeline", interactive=False, verbosity=0
    )
    return target


def set_results_version(version: str) -> None:
    """scoring_config.results_version (the plan's full rollback: back to v1.2.0)."""
    if version not in ("v1.2.1", "v1.2.0"):
        raise ValueError("results_version must be v1.2.1 or v1.2.0")
    with connections["pipeline"].cursor() as cur:
        cur.execute(
            "UPDATE scoring_config SET value = to_jsonb(%s::text), updated_at = now() WHERE key = 'results_version'",
            [version],
        )


def set_maintenance(on: bool, *, message: str = "", actor: str = "") -> None:
    """scoring_config.system_status: anything but "ok" pauses finalize and backfill."""
    value = {
        "status": "maintenance" if on else "ok",
        "message": message or ("IR-07 maintenance" if on else "PRISM online"),
        "updated_by": actor or "opsportal",
        "last_updated": timezone.now().isoformat(),
    }
    with connections["pipeline"].cursor() as cur:
        cur.execute(
            "INSERT INTO scoring_config (key, value, updated_at) VALUES ('system_status', %s::jsonb, now())"
            " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
            [json.dumps(value)],
        )


# --- The steps, in order, with their evidence ---------------------------------------------
FIX_TITLES = {
    "A": "Fix A: the plan's policy on profiles",
    "D": "Fix D: CHECK constraints accept the v1.2.1 vocabulary",
    "E": "Fix E: guard the recursive trigger on profiles",
}


def test_session() -> str | None:
    """The session the runbook diagnoses: the newest orphan."""
    from remediation import selectors

    pk = (
        selectors.orphaned_sessions().order_by("-completed_at").values_list("pk", flat=True).first()
    )
    return str(pk) if pk else None


def diagnose_test_session(session_id: str | None = None) -> dict[str, Any]:
    """Why the test session has no profile, by a rolled-back write (not saved)."""
    from remediation.services import session_diagnose

    sid = session_id or test_session()
    if sid is None:
        return {
            "session_id": None,
            "category": "no_orphans",
            "sqlstate": "",
            "explanation": "No orphaned session left.",
        }
    d = session_diagnose(session_id=sid, save=False)
    return {
        "session_id": sid,
        "category": d.category,
        "sqlstate": d.sqlstate,
        "explanation": d.explanation,
    }


def steps(checks: dict[str, Check] | None = None) -> list[dict[str, Any]]:
    """checks → Fix A → verify → Fix D → verify → Fix E → verify → backfill → success criteria."""
    from remediation import health, selectors
    from remediation.models import RunbookRecord

    checks = checks if checks is not None else {c.key: c for c in run_checks()}
    diagnosis = diagnose_test_session()
    changes = {
        r.results.get("fix"): r
        for r in RunbookRecord.objects.filter(kind="change").exclude(results__fix=None)
    }
    out: list[dict[str, Any]] = []
    last_checks = RunbookRecord.objects.filter(kind="checks").first()
    checks_evidence = (
        f"checks #{last_checks.pk} at {last_checks.created_at:%Y-%m-%d %H:%M}"
        if last_checks
        else ""
    )
    out.append({"key": "checks", "title": "Run the checks", "state": "done" if last_checks else "to do",
                "evidence": checks_evidence})  # fmt: skip
    bypass = checks["service_role_bypassrls"].figure == "true"
    causes = {
        "A": (not bypass and checks["policy_count"].figure == "0",
              f"service_role BYPASSRLS {checks['service_role_bypassrls'].figure}; "
              f"{checks['policy_count'].figure} policies on profiles"),
        "D": (checks["check_constraints"].status == FAIL, checks["check_constraints"].detail),
        "E": (checks["triggers"].status == FAIL, checks["triggers"].detail),
    }  # fmt: skip
    now_text = f"test session now: {diagnosis['category']} {diagnosis['sqlstate']}".strip()
    for fix in ("A", "D", "E"):
        applied = fix_state(fix)
        cause, evidence = causes[fix]
        state = "applied" if applied else "needed" if cause else "not needed"
        record = changes.get(fix)
        before_after = ""
        if record is not None:
            before_after = (
                f"diagnosis before: {record.results.get('diagnosis_before', {}).get('category', '?')}, "
                f"after: {record.results.get('diagnosis_after', {}).get('category', '?')}"
            )
        out.append({"key": f"fix_{fix.lower()}", "fix": fix, "title": FIX_TITLES[fix], "state": state,
                    "evidence": evidence, "before_after": before_after, "applied": applied})  # fmt: skip
        out.append({"key": f"verify_{fix.lower()}", "title": f"Verify after Fix {fix}", "state": "live",
                    "evidence": now_text})  # fmt: skip
    orphans = selectors.orphaned_sessions().count()
    out.append({"key": "backfill", "title": "Backfill the orphans",
                "state": "done" if orphans == 0 else "ready" if diagnosis["category"] == "would_succeed" else "blocked",
                "evidence": f"{orphans} orphaned sessions; the test session: {diagnosis['category']}"})  # fmt: skip
    now = timezone.now()
    completed, converted = health.conversion(now - timedelta(days=7), now)
    rate = converted / completed if completed else None
    figure = (
        f"{converted}/{completed} = {rate:.1%}" if rate is not None else "no completed sessions"
    )
    out.append({"key": "success", "title": "Success criteria: conversion above 90 % (7 days)",
                "state": "met" if rate is not None and rate > health.CONVERSION_TARGET else "not met",
                "evidence": figure})  # fmt: skip
    return out


def apply_fix_with_evidence(name: str, *, reverse: bool = False) -> dict[str, Any]:
    """Apply or roll back a fix, diagnosing the test session before and after."""
    sid = test_session()
    before = diagnose_test_session(sid)
    target = apply_fix(name, reverse=reverse)
    after = diagnose_test_session(sid)
    verb = "rolled back" if reverse else "applied"
    return {"fix": name, "change": f"Fix {name} {verb} (migrate remediation {target} --database pipeline)",
            "diagnosis_before": before, "diagnosis_after": after}  # fmt: skip


# --- Records and the Markdown export -------------------------------------------------------
def markdown(records: list[Any]) -> str:
    """An incident record of saved runs (checks and verifications), side by side."""
    lines = ["# IR-07 incident record", ""]
    for r in records:
        lines += [f"## {r.get_kind_display()} #{r.pk}: {r.label or ''}".rstrip(": "),
                  f"{r.created_at:%Y-%m-%d %H:%M:%S %Z} by {r.created_by_name or 'system'}", ""]  # fmt: skip
        checks = r.results.get("checks", [])
        if checks:
            lines += ["| check | status | figure | expected |", "|---|---|---|---|"]
            for c in checks:
                lines.append(
                    f"| {c['title']} | {c['status']} | {_md(c['figure'])} | {_md(c['expected'])} |"
                )
            lines.append("")
            for c in checks:
                if c.get("detail"):
                    lines.append(f"- **{c['title']}**: {_md(c['detail'])}")
            lines.append("")
        if r.results.get("cells"):
            lines += ["| role | claim | SELECT | INSERT |", "|---|---|---|---|"]
            for c in r.results["cells"]:
                lines.append(f"| {c['role']} | {c['claim']} | {c['select']} | {c['insert']} |")
            lines += ["", *[f"- {n}" for n in r.results.get("notes", [])], ""]
        if r.results.get("change"):
            lines += [f"- {r.results['change']}", ""]
    return "\n".join(lines)


def _md(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")
