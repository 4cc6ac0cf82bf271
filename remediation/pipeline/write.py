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
from datetime import datetime
from typing import Any

from django.db import DatabaseError, connections, transaction

import scoring
from remediation.pipeline.context import PipelineContext, portal_event
from remediation.pipeline.errors import (
    FinalizeRefused,
    ProfileWriteFailed,
    classify_error,
)
from remediation.pipeline.images import fingerprint_many
from remediation.pipeline.outcomes import SessionOutcome, WriteResult, results_url
from remediation.pipeline.profiles import score_units, update_sessions, upsert_profiles
from remediation.pipeline.reads import UNIQUE_ANSWERS_SQL, batch_inputs
from remediation.pipeline.sql import uuid_array
from remediation.pipeline.timeouts import PipelineTimeout


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
        ctx,
        [session_id],
        rescore=rescore,
        now=now,
        using=using,
        lock=lock,
        honour_maintenance=honour_maintenance,
    )
    if o.error is not None:
        raise ProfileWriteFailed(o.error, o.events)
    if o.outcome in ("failed", "busy"):
        raise FinalizeRefused(o.reason or o.outcome, o.explanation)
    return WriteResult(
        session_id=session_id,
        outcome=o.outcome,
        profile_id=o.profile_id,
        share_token=o.share_token,
        results_url=o.results_url,
        type_code=o.type_code,
        results_version=o.results_version,
        events=o.events,
    )


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
    fingerprint: bool = True,
) -> list[SessionOutcome]:
    """Finalize many sessions in the caller's transaction; one bad session never stops the rest.

    lock "skip" (FOR UPDATE SKIP LOCKED: sessions another worker holds come back "busy")
    or "wait" (FOR UPDATE). `before_write(outcomes)` is called with the pre-images of the
    sessions about to be written, before any pipeline row changes, so a caller can store
    them durably (exact rollback). With dry_run everything is rolled back and sessions that
    would be written come back "skipped". `fingerprint=False`: the caller computes the
    written sessions' fingerprints itself (the run ledger does, in the statement that
    records them).

    Round trips: one statement locks the sessions (and says whether the answers' unique
    key makes DISTINCT ON needless), one reads every pre-image, answer and FC response
    (batch_inputs), then the writes.
    """
    outcomes = {sid: SessionOutcome(sid, "pending") for sid in session_ids}
    ordered = [outcomes[sid] for sid in session_ids]
    session_ids = _valid_ids(outcomes, session_ids)
    if honour_maintenance and ctx.maintenance:
        return _refuse_all(ordered, ctx.system_status)
    conn = connections[using]
    try:
        # A savepoint: a lock or statement timeout here leaves the caller's transaction usable.
        with transaction.atomic(using=using), conn.cursor() as cur:
            todo, answers, fc_rows = _lock_and_read(cur, outcomes, session_ids, rescore, lock)
    except PipelineTimeout as exc:
        # A table the batch reads is locked (LOCK TABLE, a migration): nothing was read or
        # written; every session not refused yet is "busy", retried later like a held row.
        return mark_busy([o for o in ordered if o.outcome == "pending"], exc)
    if not todo:
        return ordered
    if before_write is not None:
        before_write([outcomes[sid] for sid in todo])
    with transaction.atomic(using=using), conn.cursor() as cur:
        written = _write_sessions(cur, ctx, outcomes, todo, answers, fc_rows, now, using)
        if fingerprint and not dry_run:
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


def mark_busy(outcomes: list[SessionOutcome], timeout: PipelineTimeout) -> list[SessionOutcome]:
    """The sessions a lock or statement timeout kept from being read or written: "busy"
    (the run engine retries them with backoff, then counts them as failed "busy")."""
    info = classify_error(timeout)
    for o in outcomes:
        o.outcome, o.reason, o.error = "busy", "busy", info
        o.explanation = f"{timeout.message} Nothing was written; retried later."
        o.pre_image = o.post_fingerprint = o.profile_id = None
        o.type_code = o.results_url = o.results_version = ""
        o.events.append(portal_event("pipeline_timeout", o.session_id, sqlstate=timeout.sqlstate))
    return outcomes


def _valid_ids(outcomes: dict[str, SessionOutcome], session_ids: list[str]) -> list[str]:
    """The ids in canonical UUID form; the others are refused."""
    valid = []
    for sid in session_ids:
        try:
            canonical = str(uuid.UUID(sid)) == sid
        except ValueError:
            canonical = False
        if canonical:
            valid.append(sid)
        else:
            outcomes[sid].refuse(
                "invalid_id", f"{sid!r} is not a session id in canonical UUID form"
            )
    return valid


def _refuse_all(ordered: list[SessionOutcome], status: dict[str, Any]) -> list[SessionOutcome]:
    """The maintenance gate is closed: every session is refused, nothing is read or written."""
    for o in ordered:
        o.refuse(
            "maintenance",
            f"scoring_config.system_status is {status.get('status')!r}: scoring is paused "
            f"({status.get('message') or 'no message'})",
        )
    return ordered


def _lock_and_read(
    cur: Any,
    outcomes: dict[str, SessionOutcome],
    ids: list[str],
    rescore: bool,
    lock: str,
) -> tuple[list[str], dict[str, scoring.AnswerColumns], dict[str, list[tuple[str, str]]]]:
    """Lock the sessions, sort them (busy, unknown, abandoned, existing, to write) and read
    what the write needs: (sessions to write, their answers, their FC responses). Every
    outcome of a session to write has its whole pre-image."""
    suffix = " SKIP LOCKED" if lock == "skip" else ""
    cur.execute(
        "SELECT id::text, status, share_token, to_jsonb(s)::text, "
        + UNIQUE_ANSWERS_SQL
        + " FROM assessment_sessions s WHERE id = ANY(%s::uuid[]) ORDER BY id FOR UPDATE"
        + suffix,
        [uuid_array(ids)],
    )
    rows = cur.fetchall()
    locked = {sid: (status, token, image) for sid, status, token, image, _ in rows}
    unique_answers = bool(rows and rows[0][4])
    missing = [sid for sid in ids if sid not in locked]
    if missing:
        cur.execute(
            "SELECT id::text FROM assessment_sessions WHERE id = ANY(%s::uuid[])",
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
    inputs = (
        batch_inputs(cur, list(locked), rescore=rescore, unique_answers=unique_answers)
        if locked
        else {}
    )
    todo: list[str] = []
    answers: dict[str, scoring.AnswerColumns] = {}
    fc_rows: dict[str, list[tuple[str, str]]] = {}
    for sid in ids:
        if sid not in locked:
            continue
        status, token, image = locked[sid]
        pid, type_code, version, pimage, fc_image, qids, values, blocks, options = inputs[sid]
        o = outcomes[sid]
        o.share_token = token or ""
        if status == "abandoned":
            o.pre_image = {"session": json.loads(image), "profile": None, "fc_scores": []}
            o.refuse(
                "abandoned", "the session was abandoned; finalizing it would mark it completed"
            )
            continue
        if pid is not None and not rescore:
            o.outcome, o.profile_id = "existing", pid
            o.type_code, o.results_version = type_code or "", version or ""
            o.results_url = results_url(sid, o.share_token) if o.share_token else ""
            continue
        o.pre_image = {
            "session": json.loads(image),
            "profile": json.loads(pimage) if pimage else None,
            "fc_scores": json.loads(fc_image),
        }
        if not qids:
            o.refuse("no_answers", "the session has no answers to score")
            continue
        answers[sid] = scoring.AnswerColumns(qids, values)
        if blocks:
            fc_rows[sid] = list(zip(blocks, options, strict=True))
        todo.append(sid)
    return todo, answers, fc_rows


def _write_sessions(
    cur: Any,
    ctx: PipelineContext,
    outcomes: dict[str, SessionOutcome],
    todo: list[str],
    answers: dict[str, Any],
    fc_rows: dict[str, list[tuple[str, str]]],
    now: datetime,
    using: str,
) -> list[str]:
    """FC scores, profile and session update of every session: all at once, else one by one.

    A session is all or nothing: its FC scores, profile and session update are written
    under one savepoint, so a refused profile or session update takes the session's FC
    scores with it.
    """
    group = list(todo)
    snapshot = {sid: (list(outcomes[sid].events), outcomes[sid].outcome) for sid in group}
    try:
        with transaction.atomic(using=using):
            return _write_group(cur, ctx, outcomes, group, answers, fc_rows, now, using)
    except StatementFailed as exc:
        if isinstance(exc.error, PipelineTimeout):
            # A locked table times out for every session alike: not one by one (each would
            # wait the lock timeout again), the whole group is busy.
            return _busy_group(outcomes, group, snapshot, exc.error)
        # else: find the sessions the database refuses, one by one
    except PipelineTimeout as exc:
        return _busy_group(outcomes, group, snapshot, exc)
    written: list[str] = []
    for n, sid in enumerate(group):
        o = outcomes[sid]
        o.events, o.outcome = list(snapshot[sid][0]), snapshot[sid][1]
        try:
            with transaction.atomic(using=using):
                written += _write_group(cur, ctx, outcomes, [sid], answers, fc_rows, now, using)
        except PipelineTimeout as exc:
            _busy_group(outcomes, group[n:], snapshot, exc)
            break
        except StatementFailed as exc:
            if isinstance(exc.error, PipelineTimeout):
                _busy_group(outcomes, group[n:], snapshot, exc.error)
                break
            row = exc.row if exc.statement == "profile write" else None
            info = classify_error(
                exc.error, using=using, attempted_row=row, statement=exc.statement
            )
            o.outcome, o.reason, o.explanation, o.error = (
                "failed",
                info.category,
                info.explanation,
                info,
            )
            event = "profile_write_failed" if exc.statement == "profile write" else "write_failed"
            o.events.append(
                portal_event(event, sid, sqlstate=info.sqlstate, statement=exc.statement)
            )
    return written


def _busy_group(
    outcomes: dict[str, SessionOutcome],
    group: list[str],
    snapshot: dict[str, tuple[list[Any], str]],
    timeout: PipelineTimeout,
) -> list[str]:
    """The sessions of `group` come back busy (their savepoints rolled back); none written."""
    for sid in group:
        outcomes[sid].events = list(snapshot[sid][0])
    mark_busy([outcomes[sid] for sid in group], timeout)
    return []


class StatementFailed(Exception):
    """A write statement the database refused, named (FC score write, profile write,
    session update), with the original error."""

    def __init__(self, statement: str, error: DatabaseError, row: dict[str, Any] | None = None):
        super().__init__(f"{statement}: {error}")
        self.statement, self.error, self.row = statement, error, row


def _write_group(
    cur: Any,
    ctx: PipelineContext,
    outcomes: dict[str, SessionOutcome],
    group: list[str],
    answers: dict[str, Any],
    fc_rows: dict[str, list[tuple[str, str]]],
    now: datetime,
    using: str,
) -> list[str]:
    """Score and write `group` inside the caller's savepoint; StatementFailed on a refusal."""
    group_fc = {sid: fc_rows[sid] for sid in group if sid in fc_rows}
    units = score_units(cur, ctx, outcomes, group, answers, group_fc, now, using)
    if not units:
        return []
    try:
        ids = upsert_profiles(cur, [u.row for u in units])
    except DatabaseError as exc:
        raise StatementFailed(
            "profile write", exc, units[0].row if len(units) == 1 else None
        ) from exc
    try:
        tokens = update_sessions(cur, units, now, ctx)
    except DatabaseError as exc:
        raise StatementFailed("session update", exc) from exc
    for u in units:
        _written(outcomes[u.session_id], ids[u.session_id], tokens[u.session_id])
    return [u.session_id for u in units]


def _written(o: SessionOutcome, profile_id: str, token: str) -> None:
    o.outcome = "rescored" if (o.pre_image or {}).get("profile") else "created"
    o.profile_id, o.share_token = profile_id, token
