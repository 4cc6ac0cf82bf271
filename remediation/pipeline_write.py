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
    # Read from the live catalog: a real profiles.share_token may have no default, and
    # then the profile takes the session's token (unique as well).
    profile_token_needed: bool = False

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
    with connections[using].cursor() as cur:
        cur.execute(
            "SELECT is_nullable = 'NO' AND column_default IS NULL FROM information_schema.columns"
            " WHERE table_schema = 'public' AND table_name = 'profiles' AND column_name = 'share_token'"
        )
        row = cur.fetchone()
    return PipelineContext(
        config, scorer, calibration, fc_options, profile_token_needed=bool(row and row[0])
    )


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


@dataclass
class SessionOutcome:
    """What happened to one session of a batch (committed, or rolled back for a dry run)."""

    session_id: str
    outcome: str  # created, rescored, existing, failed, skipped (dry run), busy
    reason: str = ""
    explanation: str = ""
    error: DbErrorInfo | None = None
    profile_id: str | None = None
    share_token: str = ""
    results_url: str = ""
    type_code: str = ""
    results_version: str = ""
    events: list[Event] = field(default_factory=list)
    pre_image: dict[str, Any] | None = None
    post_fingerprint: dict[str, Any] | None = None

    def refuse(self, reason: str, explanation: str) -> SessionOutcome:
        self.outcome, self.reason, self.explanation = "failed", reason, explanation
        return self


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
    """Finalize one session inside the caller's transaction; raise on refusal or DB error."""
    (o,) = write_batch(
        ctx, [session_id], rescore=rescore, now=now, using=using, lock=lock,
        honour_maintenance=honour_maintenance,
    )  # fmt: skip
    if o.error is not None:
        raise ProfileWriteFailed(o.error, o.events)
    if o.outcome in ("failed", "busy"):
        raise FinalizeRefused(o.reason or o.outcome, o.explanation)
    return WriteResult(
        session_id=session_id, outcome=o.outcome, profile_id=o.profile_id,
        share_token=o.share_token, results_url=o.results_url, type_code=o.type_code,
        results_version=o.results_version, events=o.events,
    )  # fmt: skip


@dataclass
class _Unit:
    session_id: str
    row: dict[str, Any]
    answered: int


def write_batch(
    ctx: PipelineContext,
    session_ids: list[str],
    *,
    rescore: bool = False,
    now: datetime,
    using: str = "pipeline",
    lock: str = "skip",
    dry_run: bool = False,
    honour_maintenance: bool = True,
    before_write: Any = None,
) -> list[SessionOutcome]:
    """Finalize many sessions in the caller's transaction; one bad session never stops the rest.

    lock "skip" (FOR UPDATE SKIP LOCKED: sessions another worker holds come back "busy")
    or "wait" (FOR UPDATE). `before_write(outcomes)` is called with the pre-images of the
    sessions about to be written, before any pipeline row changes, so a caller can store
    them durably (exact rollback). With dry_run everything is rolled back and sessions that
    would be written come back "skipped".
    """
    outcomes = {sid: SessionOutcome(sid, "pending") for sid in session_ids}
    ordered = [outcomes[sid] for sid in session_ids]
    for sid in session_ids:
        try:
            canonical = str(uuid.UUID(sid)) == sid
        except ValueError:
            canonical = False
        if not canonical:
            outcomes[sid].refuse(
                "invalid_id", f"{sid!r} is not a session id in canonical UUID form"
            )
    session_ids = [sid for sid in session_ids if outcomes[sid].outcome == "pending"]
    if honour_maintenance and ctx.maintenance:
        status = ctx.system_status
        for o in ordered:
            o.refuse(
                "maintenance",
                f"scoring_config.system_status is {status.get('status')!r}: scoring is paused "
                f"({status.get('message') or 'no message'})",
            )
        return ordered
    conn = connections[using]
    with conn.cursor() as cur:
        todo = _lock_and_sort(cur, ctx, outcomes, session_ids, rescore, lock)
        if not todo:
            return ordered
        answers = _read_answers_many(cur, todo)
        for sid in list(todo):
            if not answers.get(sid):
                outcomes[sid].refuse("no_answers", "the session has no answers to score")
                todo.remove(sid)
        fc_rows = _fc_responses_many(cur, todo)
        _fill_pre_images(cur, outcomes, todo)
    if not todo:
        return ordered
    if before_write is not None:
        before_write([outcomes[sid] for sid in todo])
    with transaction.atomic(using=using), conn.cursor() as cur:
        units = _score_units(cur, ctx, outcomes, todo, answers, fc_rows, now, using)
        written = _write_units(cur, units, outcomes, now, using)
        _fingerprint(cur, outcomes, written)
        for sid in written:
            o = outcomes[sid]
            o.results_url = results_url(sid, o.share_token)
            o.results_version = scoring.ENGINE_VERSION
            if dry_run:
                o.explanation = f"dry run: would {'re-score' if o.outcome == 'rescored' else 'create'} {o.type_code}"
                o.outcome, o.reason, o.profile_id, o.post_fingerprint = (
                    "skipped",
                    "dry_run",
                    None,
                    None,
                )
        if dry_run:
            transaction.set_rollback(True, using=using)
    return ordered


def _lock_and_sort(
    cur: Any, ctx: PipelineContext, outcomes: dict[str, SessionOutcome], ids: list[str],
    rescore: bool, lock: str,
) -> list[str]:  # fmt: skip
    suffix = " SKIP LOCKED" if lock == "skip" else ""
    cur.execute(
        "SELECT id::text, status, share_token, to_jsonb(s)::text FROM assessment_sessions s"
        " WHERE id = ANY(%s::text::uuid[]) ORDER BY id FOR UPDATE" + suffix,
        [uuid_array(ids)],
    )
    locked = {sid: (status, token, image) for sid, status, token, image in cur.fetchall()}
    missing = [sid for sid in ids if sid not in locked]
    if missing:
        cur.execute(
            "SELECT id::text FROM assessment_sessions WHERE id = ANY(%s::text::uuid[])",
            [uuid_array(missing)],
        )
        held = {r[0] for r in cur.fetchall()}
        for sid in missing:
            if sid in held:
                outcomes[sid].outcome = "busy"
                outcomes[sid].reason = "busy"
                outcomes[sid].explanation = "another worker holds this session; retried later"
            else:
                outcomes[sid].refuse("unknown_session", f"no session with id {sid}")
    cur.execute(
        "SELECT session_id::text, id::text, type_code, results_version, to_jsonb(p)::text"
        " FROM profiles p WHERE session_id = ANY(%s::text::uuid[])",
        [uuid_array(list(locked))],
    )
    profiles = {r[0]: r[1:] for r in cur.fetchall()}
    todo = []
    for sid in ids:
        if sid not in locked:
            continue
        status, token, image = locked[sid]
        o = outcomes[sid]
        o.share_token = token or ""
        o.pre_image = {"session": json.loads(image), "profile": None, "fc_scores": []}
        if status == "abandoned":
            o.refuse(
                "abandoned", "the session was abandoned; finalizing it would mark it completed"
            )
            continue
        if sid in profiles:
            pid, type_code, version, pimage = profiles[sid]
            o.pre_image["profile"] = json.loads(pimage)
            if not rescore:
                o.outcome, o.profile_id = "existing", pid
                o.type_code, o.results_version = type_code or "", version or ""
                o.results_url = results_url(sid, o.share_token) if o.share_token else ""
                o.pre_image = None
                continue
        todo.append(sid)
    return todo


def _read_answers_many(cur: Any, ids: list[str]) -> dict[str, scoring.AnswerColumns]:
    """Effective answers, coalesce(answer_value, answer_numeric::text), latest per question,
    as two columns per session (one row per session from the database)."""
    cur.execute(
        "SELECT session_id::text, array_agg(question_id ORDER BY question_id),"
        " array_agg(v ORDER BY question_id) FROM ("
        "  SELECT DISTINCT ON (session_id, question_id) session_id, question_id,"
        "  coalesce(answer_value, answer_numeric::text) AS v FROM assessment_responses"
        "  WHERE session_id = ANY(%s::text::uuid[])"
        "  ORDER BY session_id, question_id, created_at DESC) latest GROUP BY session_id",
        [uuid_array(ids)],
    )
    return {sid: scoring.AnswerColumns(qids, values) for sid, qids, values in cur.fetchall()}


def _fc_responses_many(cur: Any, ids: list[str]) -> dict[str, list[tuple[str, str]]]:
    cur.execute(
        "SELECT session_id::text, block_id::text, option_id::text FROM fc_responses"
        " WHERE session_id = ANY(%s::text::uuid[])",
        [uuid_array(ids)],
    )
    out: dict[str, list[tuple[str, str]]] = {}
    for sid, block, option in cur.fetchall():
        out.setdefault(sid, []).append((block, option))
    return out


def _fill_pre_images(cur: Any, outcomes: dict[str, SessionOutcome], ids: list[str]) -> None:
    cur.execute(
        "SELECT session_id::text, to_jsonb(f)::text FROM fc_scores f"
        " WHERE session_id = ANY(%s::text::uuid[]) ORDER BY session_id, version, fc_kind",
        [uuid_array(ids)],
    )
    for sid, image in cur.fetchall():
        pre = outcomes[sid].pre_image
        if pre is not None:
            pre["fc_scores"].append(json.loads(image))


def _score_units(
    cur: Any, ctx: PipelineContext, outcomes: dict[str, SessionOutcome], todo: list[str],
    answers: dict[str, scoring.AnswerColumns], fc_rows: dict[str, list[tuple[str, str]]],
    now: datetime, using: str,
) -> list[_Unit]:  # fmt: skip
    """score_fc_session where there are FC responses (best effort, Fix C), then score_prism."""
    if fc_rows:
        _as_service_role(cur)
        for sid in todo:
            if sid in fc_rows:
                _score_fc(cur, ctx, sid, fc_rows[sid], outcomes[sid].events, using)
        cur.execute("RESET ROLE")
    cur.execute(
        "SELECT session_id::text, scores_json::text FROM fc_scores WHERE session_id = ANY(%s::text::uuid[])"
        " AND version = %s AND fc_kind = 'functions'",
        [uuid_array(todo), FC_VERSION],
    )
    fc_scores = {sid: json.loads(v) for sid, v in cur.fetchall()}
    requests = []
    for sid in todo:
        events = outcomes[sid].events
        # score_prism's own log lines (Fix B): one of these for every finalize.
        if sid in fc_scores:
            events.append(portal_event("fc_scores_loaded", sid))
        else:
            reason = "no_fc_infrastructure" if not ctx.fc_options else "no_fc_scores"
            events.append(portal_event("fc_fallback_legacy", sid, reason=reason))
        requests.append(scoring.ScoreRequest(answers[sid], fc_scores.get(sid), sid))
    units = []
    for sid, result in zip(todo, ctx.scorer.score_batch(requests), strict=True):
        o = outcomes[sid]
        if isinstance(result, UnscorableSession):
            o.refuse("unscorable", f"nothing to score: {result}")
            continue
        logged = {e.name for e in o.events}
        o.events.extend(e for e in result.events if e.name not in logged)
        stored = scoring.stored_confidence(result, ctx.scorer.config, ctx.calibration_models)
        pre_profile = (o.pre_image or {}).get("profile")
        row = scoring.build_profile_row(
            result, stored, sid, now,
            existing_submitted_at=_ts(pre_profile, "submitted_at"),
            had_profile=pre_profile is not None,
            existing_created_at=_ts(pre_profile, "created_at"),
        )  # fmt: skip
        if ctx.profile_token_needed:
            # NOT NULL is checked on the proposed row, before ON CONFLICT: always send one.
            existing_token = (pre_profile or {}).get("share_token")
            row["share_token"] = existing_token or o.share_token or uuid.uuid4().hex
        o.type_code = result.type_code
        units.append(_Unit(sid, row, len(answers[sid])))
    return units


def _ts(image: dict[str, Any] | None, column: str) -> datetime | None:
    if not image or not image.get(column):
        return None
    return datetime.fromisoformat(str(image[column]))


def _write_units(
    cur: Any, units: list[_Unit], outcomes: dict[str, SessionOutcome], now: datetime, using: str
) -> list[str]:
    """Profiles (as service_role) and session updates: all at once, else one by one."""
    if not units:
        return []
    written: list[str] = []
    try:
        with transaction.atomic(using=using):
            ids = _upsert_profiles(cur, [u.row for u in units])
            tokens = _update_sessions(cur, units, now)
        for u in units:
            _written(outcomes[u.session_id], ids[u.session_id], tokens[u.session_id])
            written.append(u.session_id)
        return written
    except DatabaseError:
        pass  # find the sessions the database refuses, one by one
    for u in units:
        try:
            with transaction.atomic(using=using):
                ids = _upsert_profiles(cur, [u.row])
                tokens = _update_sessions(cur, [u], now)
            _written(outcomes[u.session_id], ids[u.session_id], tokens[u.session_id])
            written.append(u.session_id)
        except DatabaseError as exc:
            info = classify_error(exc, using=using, attempted_row=u.row)
            o = outcomes[u.session_id]
            o.outcome, o.reason, o.explanation, o.error = (
                "failed",
                info.category,
                info.explanation,
                info,
            )
            o.events.append(
                portal_event("profile_write_failed", u.session_id, sqlstate=info.sqlstate)
            )
    return written


def _written(o: SessionOutcome, profile_id: str, token: str) -> None:
    o.outcome = "rescored" if (o.pre_image or {}).get("profile") else "created"
    o.profile_id, o.share_token = profile_id, token


def _fingerprint(cur: Any, outcomes: dict[str, SessionOutcome], ids: list[str]) -> None:
    """md5 of each row the run wrote, to recognise later changes by someone else."""
    if not ids:
        return
    cur.execute(
        "SELECT s.id::text, md5(to_jsonb(s)::text),"
        " (SELECT md5(to_jsonb(p)::text) FROM profiles p WHERE p.session_id = s.id),"
        " (SELECT md5(coalesce(jsonb_agg(to_jsonb(f) ORDER BY f.version, f.fc_kind), '[]')::text)"
        "  FROM fc_scores f WHERE f.session_id = s.id)"
        " FROM assessment_sessions s WHERE s.id = ANY(%s::text::uuid[])",
        [uuid_array(ids)],
    )
    for sid, session_md5, profile_md5, fc_md5 in cur.fetchall():
        outcomes[sid].post_fingerprint = {
            "session": session_md5,
            "profile": profile_md5,
            "fc_scores": fc_md5,
        }


def read_answers(cur: Any, session_id: str) -> list[scoring.Response]:
    """Effective answers of one session, latest per question."""
    columns = _read_answers_many(cur, [session_id]).get(session_id)
    return list(columns) if columns is not None else []


def _as_service_role(cur: Any) -> None:
    cur.execute("SET LOCAL ROLE service_role")
    cur.execute(
        "SELECT set_config('request.jwt.claims', %s, true),"
        " set_config('request.method', 'POST', true),"
        " set_config('request.path', '/rest/v1/profiles', true)",
        [postgrest_claims()],
    )


def _score_fc(
    cur: Any, ctx: PipelineContext, session_id: str, fc_rows: list[tuple[str, str]],
    events: list[Event], using: str,
) -> None:  # fmt: skip
    """score_fc_session (best effort, Fix C): upsert fc_scores, record fc_scoring_attempted."""
    try:
        with transaction.atomic(using=using):
            fc = scoring.score_fc_session(
                [scoring.FcResponse(b, o) for b, o in fc_rows], ctx.fc_options, "functions",
                session_id=session_id,
            )  # fmt: skip
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


def _upsert_profiles(cur: Any, rows: list[dict[str, Any]]) -> dict[str, str]:
    """Upsert on session_id as service_role, as score_prism did; session id -> profile id.

    The rows travel as one JSON parameter (jsonb_populate_recordset): the same typed row,
    RLS, CHECKs and triggers as a VALUES list, without thousands of bind parameters.
    """
    _as_service_role(cur)
    columns = list(rows[0])
    names = ", ".join(columns)
    # An existing profile keeps its id, session and share token.
    updates = ", ".join(
        f"{c} = EXCLUDED.{c}" for c in columns if c not in ("session_id", "share_token")
    )
    cur.execute(
        f"INSERT INTO profiles ({names}) SELECT {names}"
        " FROM jsonb_populate_recordset(NULL::profiles, %s::jsonb)"
        f" ON CONFLICT (session_id) DO UPDATE SET {updates} RETURNING session_id::text, id::text",
        [json.dumps(rows, default=_json_default)],
    )
    ids = {sid: pid for sid, pid in cur.fetchall()}
    cur.execute("RESET ROLE")
    return ids


def uuid_array(ids: list[str]) -> str:
    """A uuid[] literal for ids already validated as UUIDs: one text parameter instead of a
    list psycopg would dump element by element."""
    return "{" + ",".join(ids) + "}"


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _update_sessions(cur: Any, units: list[_Unit], now: datetime) -> dict[str, str]:
    """Completed, finalized now, completed_at kept, token reused (else new), expiry now + 30 days."""
    values = ", ".join(["(%s::uuid, %s::int)"] * len(units))
    params: list[Any] = [now, now, now + timedelta(days=SHARE_TOKEN_DAYS), now]
    for u in units:
        params.extend([u.session_id, u.answered])
    cur.execute(
        "UPDATE assessment_sessions s SET status = 'completed', finalized_at = %s,"
        " completed_at = coalesce(s.completed_at, %s),"
        " share_token = CASE WHEN coalesce(s.share_token, '') = ''"
        "   THEN replace(gen_random_uuid()::text, '-', '') ELSE s.share_token END,"
        " share_token_expires_at = %s,"
        " completed_questions = greatest(coalesce(s.completed_questions, 0), v.answered),"
        f" updated_at = %s FROM (VALUES {values}) AS v(id, answered) WHERE s.id = v.id"
        " RETURNING s.id::text, s.share_token",
        params,
    )
    tokens = {sid: token for sid, token in cur.fetchall()}
    if len(tokens) != len(units):
        raise DatabaseError("a session row could not be updated (it vanished or a rule hid it)")
    return tokens


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
    elif sqlstate == "55P03":
        category = "busy"
        explanation = (
            "Another finalize or backfill holds this session (lock timeout, 55P03); nothing was "
            "written. Try again when it has finished."
        )
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
