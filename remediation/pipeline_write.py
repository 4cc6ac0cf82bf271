"""Writing a profile the way the pipeline does, and explaining when the database refuses.

Everything here runs inside a transaction on the `pipeline` connection that the caller
owns (services.py). One session's work happens under a savepoint, so a batch can carry
on after one bad session, and a failure leaves nothing of that session half-written.

The profile (and FC scores) are written after `SET LOCAL ROLE service_role` with
`request.jwt.claims` set as PostgREST sets them, so RLS policies, grants, CHECK
constraints and triggers apply exactly as they did to the edge function. The session
row is locked and updated with the portal's own connection role.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg
from django.conf import settings
from django.db import DatabaseError, connections, transaction
from psycopg.types.json import Jsonb

import scoring
from scoring import Event, UnscorableSession

FC_VERSION = "v1.2"
SHARE_TOKEN_DAYS = 30


# --- Context: what every finalize reads once -----------------------------------------
@dataclass
class PipelineContext:
    """Scoring key, config, prototypes, calibration and FC options, read once per batch."""

    config: dict[str, Any]
    scorer: scoring.Scorer
    calibration_models: list[dict[str, Any]]
    fc_options: dict[str, scoring.FcOption]
    loaded_at: float = field(default_factory=time.monotonic)

    @property
    def results_version(self) -> str:
        value = self.config.get("results_version")
        return value if isinstance(value, str) else scoring.ENGINE_VERSION

    @property
    def system_status(self) -> dict[str, Any]:
        value = self.config.get("system_status")
        return value if isinstance(value, dict) else {"status": str(value)}

    @property
    def maintenance(self) -> bool:
        """True when scoring_config.system_status is anything but status "ok"."""
        return self.system_status.get("status") != "ok"


def load_context(using: str = "pipeline") -> PipelineContext:
    """Read the scoring inputs shared by all sessions (scoring key, config, …)."""
    with connections[using].cursor() as cur:
        cur.execute(
            "SELECT question_id, tag, scale_type, reverse_scored, fc_map FROM assessment_scoring_key"
        )
        key = [scoring.KeyEntry(q, t, s, r, _json(f)) for q, t, s, r, f in cur.fetchall()]
        cur.execute("SELECT key, value FROM scoring_config")
        config = {k: _json(v) for k, v in cur.fetchall()}
        cur.execute("SELECT type_code, func, block FROM type_prototypes")
        proto_rows = cur.fetchall()
        cur.execute(
            "SELECT id, version, stratum, knots, trained_at FROM calibration_model"
            " WHERE version = %s",
            [scoring.ENGINE_VERSION],
        )
        calibration = [
            {"id": i, "version": v, "stratum": _json(s), "knots": _json(k), "trained_at": t}
            for i, v, s, k, t in cur.fetchall()
        ]
        cur.execute(
            "SELECT o.id::text, o.block_id::text, o.option_code, o.weights_json FROM fc_options o"
        )
        fc_options = {
            oid: scoring.FcOption(oid, bid, code, _json(weights) or {})
            for oid, bid, code, weights in cur.fetchall()
        }
    # The pipeline uses the type_prototypes table only when it has exactly 128 rows.
    prototypes = scoring.prototypes_from_table_rows(
        {"type_code": t, "func": f, "block": b} for t, f, b in proto_rows
    )
    scorer = scoring.Scorer(key, scoring.EngineConfig.from_mapping(config), prototypes)
    return PipelineContext(config, scorer, calibration, fc_options)


def portal_event(name: str, session_id: str, **fields: Any) -> Event:
    """An event the portal records beside the engine's (fc_scoring_attempted, …)."""
    return Event(name, {"session_id": session_id, **fields})


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


# --- Errors ----------------------------------------------------------------------
@dataclass(frozen=True)
class DbErrorInfo:
    """A database error as PostgreSQL reported it, and in plain words."""

    category: str  # rls, grant, check, trigger, other
    sqlstate: str
    message: str
    explanation: str
    constraint: str = ""
    table: str = ""
    column: str = ""
    value: str = ""
    detail: str = ""
    context: str = ""


class FinalizeRefused(Exception):
    """The session cannot be finalized for a reason that is not a database error."""

    def __init__(self, reason: str, explanation: str) -> None:
        super().__init__(explanation)
        self.reason = reason
        self.explanation = explanation


class ProfileWriteFailed(Exception):
    """The database refused the profile (or FC/session) write; carries its diagnostics."""

    def __init__(self, info: DbErrorInfo, events: list[Event]) -> None:
        super().__init__(info.explanation)
        self.info = info
        self.events = events


# --- One session ----------------------------------------------------------------------
@dataclass
class WriteResult:
    """What happened to one session (committed or, for a diagnosis, rolled back)."""

    session_id: str
    outcome: str  # created, rescored, existing
    profile_id: str | None
    share_token: str
    results_url: str
    type_code: str = ""
    results_version: str = ""
    events: list[Event] = field(default_factory=list)


def results_url(session_id: str, share_token: str) -> str:
    """<RESULTS_BASE_URL>/results/<session_id>?t=<share_token>, as finalizeAssessment builds it."""
    return f"{settings.RESULTS_BASE_URL}/results/{session_id}?t={share_token}"


def postgrest_claims(role: str = "service_role") -> str:
    """The JWT claims PostgREST puts in request.jwt.claims for a service-role key."""
    now = int(time.time())
    return json.dumps({"iss": "supabase", "role": role, "iat": now, "exp": now + 3600})


def write_session(
    ctx: PipelineContext,
    session_id: str,
    *,
    rescore: bool = False,
    now: datetime,
    using: str = "pipeline",
    lock: str = "wait",
    honour_maintenance: bool = True,
) -> WriteResult:
    """Finalize one session inside the caller's transaction, under its own savepoint.

    lock: "wait" (FOR UPDATE) or "skip" (FOR UPDATE SKIP LOCKED: a session another
    worker holds raises FinalizeRefused("busy")).
    """
    conn = connections[using]
    events: list[Event] = []
    with conn.cursor() as cur:
        if honour_maintenance and ctx.maintenance:
            raise FinalizeRefused(
                "maintenance",
                "scoring_config.system_status is "
                f"{ctx.system_status.get('status')!r}: scoring is paused "
                f"({ctx.system_status.get('message') or 'no message'})",
            )
        suffix = " SKIP LOCKED" if lock == "skip" else ""
        cur.execute(
            "SELECT id::text, status, share_token, completed_at FROM assessment_sessions"
            " WHERE id = %s FOR UPDATE" + suffix,
            [session_id],
        )
        row = cur.fetchone()
        if row is None:
            if lock == "skip":
                cur.execute("SELECT 1 FROM assessment_sessions WHERE id = %s", [session_id])
                if cur.fetchone():
                    raise FinalizeRefused("busy", "another worker is finalizing this session")
            raise FinalizeRefused("unknown_session", f"no session with id {session_id}")
        _, status, share_token, _completed_at = row
        if status == "abandoned":
            raise FinalizeRefused(
                "abandoned", "the session was abandoned; finalizing it would mark it completed"
            )
        cur.execute(
            "SELECT id::text, submitted_at, created_at, type_code, results_version"
            " FROM profiles WHERE session_id = %s",
            [session_id],
        )
        existing = cur.fetchone()
        if existing is not None and not rescore:
            token = share_token or ""
            return WriteResult(
                session_id=session_id,
                outcome="existing",
                profile_id=existing[0],
                share_token=token,
                results_url=results_url(session_id, token) if token else "",
                type_code=existing[3] or "",
                results_version=existing[4] or "",
            )
        answers = read_answers(cur, session_id)
        if not answers:
            raise FinalizeRefused("no_answers", "the session has no answers to score")

    try:
        with transaction.atomic(using=using), conn.cursor() as cur:
            _as_service_role(cur)
            fc_scores = _score_fc(cur, ctx, session_id, events, using)
            # score_prism's own log lines (Fix B): one of these for every finalize.
            if fc_scores is None:
                reason = "no_fc_infrastructure" if not ctx.fc_options else "no_fc_scores"
                events.append(portal_event("fc_fallback_legacy", session_id, reason=reason))
            else:
                events.append(portal_event("fc_scores_loaded", session_id))
            try:
                result = ctx.scorer.score(
                    [scoring.Response(q, a) for q, a in answers],
                    fc_scores,
                    session_id=session_id,
                )
            except UnscorableSession as exc:
                raise FinalizeRefused("unscorable", f"nothing to score: {exc}") from exc
            logged = {e.name for e in events}
            events.extend(e for e in result.events if e.name not in logged)
            stored = scoring.stored_confidence(result, ctx.scorer.config, ctx.calibration_models)
            row_values = scoring.build_profile_row(
                result,
                stored,
                session_id,
                now,
                existing_submitted_at=existing[1] if existing else None,
                had_profile=existing is not None,
                existing_created_at=existing[2] if existing else None,
            )
            profile_id = _upsert_profile(cur, row_values)
            cur.execute("RESET ROLE")
            token = _update_session(cur, session_id, share_token, len(answers), now)
    except DatabaseError as exc:
        info = classify_error(exc, using=using, attempted_row=locals().get("row_values"))
        events.append(portal_event("profile_write_failed", session_id, sqlstate=info.sqlstate))
        raise ProfileWriteFailed(info, events) from exc

    return WriteResult(
        session_id=session_id,
        outcome="rescored" if existing is not None else "created",
        profile_id=profile_id,
        share_token=token,
        results_url=results_url(session_id, token),
        type_code=result.type_code,
        results_version=scoring.ENGINE_VERSION,
        events=events,
    )


def read_answers(cur: Any, session_id: str) -> list[tuple[int, str | None]]:
    """Effective answers: coalesce(answer_value, answer_numeric::text), latest per question."""
    cur.execute(
        "SELECT DISTINCT ON (question_id) question_id, coalesce(answer_value, answer_numeric::text)"
        " FROM assessment_responses WHERE session_id = %s"
        " ORDER BY question_id, created_at DESC",
        [session_id],
    )
    return list(cur.fetchall())


def _as_service_role(cur: Any) -> None:
    cur.execute("SET LOCAL ROLE service_role")
    cur.execute(
        "SELECT set_config('request.jwt.claims', %s, true),"
        " set_config('request.method', 'POST', true),"
        " set_config('request.path', '/rest/v1/profiles', true)",
        [postgrest_claims()],
    )


def _score_fc(
    cur: Any, ctx: PipelineContext, session_id: str, events: list[Event], using: str
) -> dict[str, Any] | None:
    """score_fc_session (best effort, Fix C), then read the FC scores score_prism uses."""
    cur.execute(
        "SELECT block_id::text, option_id::text FROM fc_responses WHERE session_id = %s",
        [session_id],
    )
    fc_rows = cur.fetchall()
    if fc_rows:
        try:
            with transaction.atomic(using=using):
                fc = scoring.score_fc_session(
                    [scoring.FcResponse(b, o) for b, o in fc_rows],
                    ctx.fc_options,
                    "functions",
                    session_id=session_id,
                )
                events.extend(fc.events)
                if fc.should_write:
                    cur.execute(
                        "INSERT INTO fc_scores (session_id, version, fc_kind, scores_json,"
                        " blocks_answered) VALUES (%s, %s, %s, %s, %s)"
                        " ON CONFLICT (session_id, version, fc_kind) DO UPDATE SET"
                        " scores_json = EXCLUDED.scores_json,"
                        " blocks_answered = EXCLUDED.blocks_answered",
                        [
                            session_id,
                            FC_VERSION,
                            fc.fc_kind,
                            Jsonb(fc.scores_json()),
                            fc.blocks_answered,
                        ],
                    )
            events.append(portal_event("fc_scoring_attempted", session_id, success=True))
        except DatabaseError as exc:
            info = classify_error(exc, using=using)
            events.append(
                portal_event(
                    "fc_scoring_attempted",
                    session_id,
                    success=False,
                    error=f"{info.sqlstate} {info.message}",
                )
            )
    cur.execute(
        "SELECT scores_json FROM fc_scores WHERE session_id = %s AND version = %s"
        " AND fc_kind = 'functions'",
        [session_id, FC_VERSION],
    )
    row = cur.fetchone()
    return _json(row[0]) if row else None


_JSON_COLUMNS = {
    "top_types", "top_3_fits", "strengths", "dimensions", "dims_highlights", "blocks_norm",
    "validity",
}  # fmt: skip


def _upsert_profile(cur: Any, values: dict[str, Any]) -> str:
    columns = list(values)
    params = [Jsonb(values[c]) if c in _JSON_COLUMNS else values[c] for c in columns]
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c != "session_id")
    cur.execute(
        f"INSERT INTO profiles ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"
        f" ON CONFLICT (session_id) DO UPDATE SET {updates} RETURNING id::text",
        params,
    )
    return str(cur.fetchone()[0])


def _update_session(
    cur: Any, session_id: str, share_token: str | None, answered: int, now: datetime
) -> str:
    """Status completed, finalized now, completed_at kept, token reused, expiry now + 30 days."""
    cur.execute(
        "UPDATE assessment_sessions SET status = 'completed', finalized_at = %s,"
        " completed_at = coalesce(completed_at, %s),"
        " share_token = CASE WHEN coalesce(share_token, '') = '' THEN %s ELSE share_token END,"
        " share_token_expires_at = %s, completed_questions = greatest(coalesce(completed_questions, 0), %s),"
        " updated_at = %s WHERE id = %s RETURNING share_token",
        [
            now,
            now,
            str(uuid.uuid4()),
            now + timedelta(days=SHARE_TOKEN_DAYS),
            answered,
            now,
            session_id,
        ],
    )
    row = cur.fetchone()
    if row is None:
        raise FinalizeRefused("session_vanished", "the session row could not be updated")
    return str(row[0])


# --- Reading a database error ----------------------------------------------------------
def classify_error(
    exc: BaseException, *, using: str = "pipeline", attempted_row: dict[str, Any] | None = None
) -> DbErrorInfo:
    """SQLSTATE, constraint, table and message from the driver, and the cause in plain words."""
    cause = exc.__cause__ if isinstance(exc.__cause__, psycopg.Error) else exc
    diag = getattr(cause, "diag", None)
    sqlstate = getattr(cause, "sqlstate", None) or (diag.sqlstate if diag else None) or ""
    message = (diag.message_primary if diag else None) or str(exc).splitlines()[0]
    constraint = (diag.constraint_name if diag else None) or ""
    table = (diag.table_name if diag else None) or ""
    column = (diag.column_name if diag else None) or ""
    detail = (diag.message_detail if diag else None) or ""
    context = (diag.context if diag else None) or ""
    if not table:
        import re

        found = re.search(r'(?:table|relation) "([^"]+)"', message)
        table = found.group(1) if found else ""
    value = ""
    low = message.lower()
    if sqlstate == "42501" and "row-level security" in low:
        category = "rls"
        explanation = (
            f"Row-level security refused the row on {table or 'profiles'} (42501): the writing "
            "role does not bypass RLS and no policy allows this write."
        )
    elif sqlstate == "42501":
        category = "grant"
        explanation = f"A grant is missing (42501, permission denied): {message}."
    elif sqlstate == "23514":
        category = "check"
        column = column or _constraint_column(constraint, table or "profiles", using)
        if attempted_row and column in attempted_row:
            value = str(attempted_row[column])
        explanation = (
            f"The CHECK constraint {constraint or '?'} on {table or 'profiles'} refused "
            + (f"{column} = {value!r}" if column else "the row")
            + " (23514)."
        )
    elif sqlstate == "54001" or "trigger" in context.lower() or _trigger_in_context(context, using):
        category = "trigger"
        fn = _function_in_context(context)
        explanation = (
            f"A trigger on profiles failed ({sqlstate}: {message})"
            + (f" in {fn}" if fn else "")
            + (": it fires itself again with no guard." if sqlstate == "54001" else ".")
        )
    else:
        category = "other"
        explanation = f"The database refused the write ({sqlstate or 'no SQLSTATE'}): {message}"
    return DbErrorInfo(
        category=category, sqlstate=sqlstate, message=message, explanation=explanation,
        constraint=constraint, table=table, column=column, value=value, detail=detail,
        context=context[:2000],
    )  # fmt: skip


def _constraint_column(constraint: str, table: str, using: str) -> str:
    if not constraint:
        return ""
    try:
        with connections[using].cursor() as cur:
            cur.execute(
                "SELECT a.attname FROM pg_constraint c JOIN pg_attribute a"
                " ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)"
                " WHERE c.conname = %s AND c.conrelid = to_regclass(%s) LIMIT 1",
                [constraint, f"public.{table}"],
            )
            row = cur.fetchone()
    except DatabaseError:
        return ""
    return row[0] if row else ""


def _function_in_context(context: str) -> str:
    import re

    found = re.search(r"(?:PL/pgSQL |SQL )?function ([\w.\"]+)\(", context)
    return found.group(1).replace('"', "") + "()" if found else ""


def _trigger_in_context(context: str, using: str) -> bool:
    fn = _function_in_context(context).split("(")[0]
    if not fn:
        return False
    try:
        with connections[using].cursor() as cur:
            cur.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid"
                " WHERE NOT t.tgisinternal AND p.proname = %s)",
                [fn.split(".")[-1]],
            )
            return bool(cur.fetchone()[0])
    except DatabaseError:
        return False
