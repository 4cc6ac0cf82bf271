"""Writing profiles the way the pipeline does, for one session or a batch.

Everything here runs inside a transaction on the `pipeline` connection that the caller
owns (pipeline_transaction()). One session's work happens under a savepoint, so a batch
can carry on after one bad session, and a failure leaves nothing of that session
half-written.

The profile (and FC scores) are written after `SET LOCAL ROLE service_role` with
`request.jwt.claims` set as PostgREST sets them, so RLS policies, grants, CHECK
constraints and triggers apply exactly as they did to the edge function. The session
row is locked and updated with the portal's own connection role.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections, transaction

import scoring
from remediation.pipeline.context import FC_VERSION, PipelineContext, portal_event
from remediation.pipeline.errors import (
    DbErrorInfo,
    FinalizeRefused,
    ProfileWriteFailed,
    classify_error,
)
from remediation.pipeline.fc import score_fc
from remediation.pipeline.images import fill_pre_images, fingerprint_many
from remediation.pipeline.reads import fc_responses_many, read_answers_many
from remediation.pipeline.sql import as_service_role, json_default, uuid_array
from scoring import Event, UnscorableSession

SHARE_TOKEN_DAYS = 30


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
        answers = read_answers_many(cur, todo)
        for sid in list(todo):
            if not answers.get(sid):
                outcomes[sid].refuse("no_answers", "the session has no answers to score")
                todo.remove(sid)
        fc_rows = fc_responses_many(cur, todo)
        fill_pre_images(cur, outcomes, todo)
    if not todo:
        return ordered
    if before_write is not None:
        before_write([outcomes[sid] for sid in todo])
    with transaction.atomic(using=using), conn.cursor() as cur:
        units = _score_units(cur, ctx, outcomes, todo, answers, fc_rows, now, using)
        written = _write_units(cur, units, outcomes, now, using)
        fingerprint_many(cur, outcomes, written)
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



def _score_units(
    cur: Any, ctx: PipelineContext, outcomes: dict[str, SessionOutcome], todo: list[str],
    answers: dict[str, scoring.AnswerColumns], fc_rows: dict[str, list[tuple[str, str]]],
    now: datetime, using: str,
) -> list[_Unit]:  # fmt: skip
    """score_fc_session where there are FC responses (best effort, Fix C), then score_prism."""
    if fc_rows:
        as_service_role(cur)
        for sid in todo:
            if sid in fc_rows:
                score_fc(cur, ctx, sid, fc_rows[sid], outcomes[sid].events, using)
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
            ids = upsert_profiles(cur, [u.row for u in units])
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
                ids = upsert_profiles(cur, [u.row])
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



def upsert_profiles(cur: Any, rows: list[dict[str, Any]]) -> dict[str, str]:
    """Upsert on session_id as service_role, as score_prism did; session id -> profile id.

    The rows travel as one JSON parameter (jsonb_populate_recordset): the same typed row,
    RLS, CHECKs and triggers as a VALUES list, without thousands of bind parameters.
    """
    as_service_role(cur)
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
        [json.dumps(rows, default=json_default)],
    )
    ids = {sid: pid for sid, pid in cur.fetchall()}
    cur.execute("RESET ROLE")
    return ids



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


