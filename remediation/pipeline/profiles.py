"""From scored sessions to rows: the profile rows the engine's results become, the upsert
as service_role, and the session update."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError

import scoring
from remediation.pipeline.context import FC_VERSION, PipelineContext, portal_event
from remediation.pipeline.fc import score_fc
from remediation.pipeline.outcomes import SessionOutcome
from remediation.pipeline.reads import fc_responses_many, read_answers_many
from remediation.pipeline.sql import as_service_role, json_default, uuid_array
from scoring import UnscorableSession

SHARE_TOKEN_DAYS = 30


@dataclass
class Unit:
    session_id: str
    row: dict[str, Any]
    answered: int


def score_units(
    cur: Any,
    ctx: PipelineContext,
    outcomes: dict[str, SessionOutcome],
    todo: list[str],
    answers: dict[str, scoring.AnswerColumns],
    fc_rows: dict[str, list[tuple[str, str]]],
    now: datetime,
    using: str,
) -> list[Unit]:
    """score_fc_session where there are FC responses (best effort, Fix C), then score_prism."""
    fc_scores = _fc_scores(cur, ctx, outcomes, todo, fc_rows, using)
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
        if _no_scorable_answers(o, result, len(answers[sid])):
            continue
        logged = {e.name for e in o.events}
        o.events.extend(e for e in result.events if e.name not in logged)
        row = profile_row(ctx, result, sid, now, (o.pre_image or {}).get("profile"), o.share_token)
        validity = scoring.stored_validity(result)
        if validity.flagged:  # recorded with the attempt: why the profile is not 'valid'
            o.events.append(
                portal_event(
                    "validity_flagged",
                    sid,
                    flags=",".join(validity.flags),
                    fc_source=result.fc_source,
                )
            )
        o.type_code = result.type_code
        units.append(Unit(sid, row, len(answers[sid])))
    return units


def profile_row(
    ctx: PipelineContext,
    result: scoring.EngineResult,
    session_id: str,
    now: datetime,
    pre_profile: dict[str, Any] | None = None,
    session_token: str = "",
) -> dict[str, Any]:
    """The profiles row the write path upserts for an engine result: stored confidence,
    build_profile_row, the stored validity (scoring.validity: the one rule that flags a
    profile no Likert answer supports), the share token where the table needs one, only
    existing columns."""
    stored = scoring.stored_confidence(result, ctx.scorer.config, ctx.calibration_models)
    row = scoring.build_profile_row(
        result,
        stored,
        session_id,
        now,
        existing_submitted_at=_ts(pre_profile, "submitted_at"),
        had_profile=pre_profile is not None,
        existing_created_at=_ts(pre_profile, "created_at"),
    )
    validity = scoring.stored_validity(result)
    row["validity_status"], row["validity"] = validity.validity_status, dict(validity.validity)
    if ctx.profile_token_needed:
        # NOT NULL is checked on the proposed row, before ON CONFLICT: always send one.
        existing_token = (pre_profile or {}).get("share_token")
        row["share_token"] = existing_token or session_token or uuid.uuid4().hex
    # Only the columns this database has (a rebuilt one lacks some the engine fills).
    return {k: v for k, v in row.items() if ctx.has("profiles", k)}


def engine_row(
    ctx: PipelineContext, cur: Any, session_id: str, now: datetime, using: str = "pipeline"
) -> tuple[dict[str, Any] | None, SessionOutcome]:
    """The profile row the write path would upsert for one session, and its outcome so far.

    The same reads and steps as write_batch (effective answers, FC responses scored as
    service_role, score_prism, stored confidence) without the lock, the upsert or the
    session update. Scoring FC writes fc_scores, as the write path does: call it inside a
    transaction the caller rolls back. The row is None when the write path would refuse
    the session (no answers, nothing to score); the outcome says why.
    """
    o = SessionOutcome(session_id, "pending")
    cur.execute(
        "SELECT s.share_token, (SELECT to_jsonb(p)::text FROM profiles p"
        " WHERE p.session_id = s.id) FROM assessment_sessions s WHERE s.id = %s",
        [session_id],
    )
    found = cur.fetchone()
    if found is None:
        o.refuse("unknown_session", f"no session with id {session_id}")
        return None, o
    o.share_token = found[0] or ""
    o.pre_image = {"profile": json.loads(found[1]) if found[1] else None}
    answers = read_answers_many(cur, [session_id])
    if not answers.get(session_id):
        o.refuse("no_answers", "the session has no answers to score")
        return None, o
    fc_rows = fc_responses_many(cur, [session_id])
    units = score_units(cur, ctx, {session_id: o}, [session_id], answers, fc_rows, now, using)
    return (units[0].row if units else None), o


def _fc_scores(
    cur: Any,
    ctx: PipelineContext,
    outcomes: dict[str, SessionOutcome],
    todo: list[str],
    fc_rows: dict[str, list[tuple[str, str]]],
    using: str,
) -> dict[str, Any]:
    """score_fc_session as service_role where there are FC responses; the FC scores to use."""
    if fc_rows:
        as_service_role(cur)
        for sid in todo:
            if sid in fc_rows:
                score_fc(cur, ctx, sid, fc_rows[sid], outcomes[sid].events, using)
        cur.execute("RESET ROLE")
    cur.execute(
        "SELECT session_id::text, scores_json::text FROM fc_scores WHERE session_id = ANY(%s::uuid[])"
        " AND version = %s AND fc_kind = 'functions'",
        [uuid_array(todo), FC_VERSION],
    )
    return {sid: json.loads(v) for sid, v in cur.fetchall()}


def _no_scorable_answers(o: SessionOutcome, result: Any, answered: int) -> bool:
    """Refuse a profile no answer supports (unless WRITE_UNSCORABLE_PROFILES allows it)."""
    if result.no_scorable_answers and not settings.WRITE_UNSCORABLE_PROFILES:
        # The engine is faithful (an all-zero profile, as the original); the portal is
        # careful: it does not write a profile that no answer supports.
        o.refuse(
            "unscorable",
            f"no scorable answers: none of the {answered} answers is a numeric answer"
            " to a Likert function item, and there are no forced-choice scores",
        )
        return True
    return False


def _ts(image: dict[str, Any] | None, column: str) -> datetime | None:
    if not image or not image.get(column):
        return None
    return datetime.fromisoformat(str(image[column]))


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


def update_sessions(
    cur: Any, units: list[Unit], now: datetime, ctx: PipelineContext | None = None
) -> dict[str, str]:
    """Completed, finalized now, completed_at kept, token reused (else new), expiry now + 30
    days; only the columns this database has."""
    has = ctx.has if ctx is not None else (lambda table, column: True)
    sets = ["status = 'completed'", "completed_at = coalesce(s.completed_at, %s)"]
    params: list[Any] = [now]
    sets.append(
        "share_token = CASE WHEN coalesce(s.share_token, '') = ''"
        " THEN replace(gen_random_uuid()::text, '-', '') ELSE s.share_token END"
    )
    optional: tuple[tuple[str, str, list[Any]], ...] = (
        ("finalized_at", "finalized_at = %s", [now]),
        (
            "share_token_expires_at",
            "share_token_expires_at = %s",
            [now + timedelta(days=SHARE_TOKEN_DAYS)],
        ),
        (
            "completed_questions",
            "completed_questions = greatest(coalesce(s.completed_questions, 0), v.answered)",
            [],
        ),
        ("updated_at", "updated_at = %s", [now]),
    )
    for column, clause, values_ in optional:
        if has("assessment_sessions", column):
            sets.append(clause)
            params.extend(values_)
    values = ", ".join(["(%s::uuid, %s::int)"] * len(units))
    for u in units:
        params.extend([u.session_id, u.answered])
    cur.execute(
        f"UPDATE assessment_sessions s SET {', '.join(sets)}"
        f" FROM (VALUES {values}) AS v(id, answered) WHERE s.id = v.id"
        " RETURNING s.id::text, s.share_token",
        params,
    )
    tokens = {sid: token for sid, token in cur.fetchall()}
    if len(tokens) != len(units):
        raise DatabaseError("a session row could not be updated (it vanished or a rule hid it)")
    return tokens
