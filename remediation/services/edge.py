"""The edge backend: POST finalizeAssessment, then believe only the database.

On the day of the incident the function answered {"ok": true} for sessions that never
got a profile. Here a 200 is only a claim: the attempt succeeds when a profile with the
configured results version exists afterwards. A read timeout is "unknown" and is
settled by reading the database, never by posting again blindly.

The deployed function also overwrites `completed_at` on every call (pipeline.md §3).
After every call that reached it, `completed_at` is put back to the pre-image's value
when the function changed it (`completed_at_restore`), and that is recorded on the
attempt (`completed_at_restored`), in its explanation and in the audit trail. The single
finalize and the backfill both come through here; a backfill's settlements of lost or
unknown calls (remediation/jobs/finalize.py) call `completed_at_restore` too.
"""

from __future__ import annotations

import time
from typing import Any

import requests
from django.db import DatabaseError, connections
from django.utils import timezone

from remediation.integrations.edge import explain, post_finalize
from remediation.jobs import crashpoints
from remediation.models import FinalizeAttempt
from remediation.pipeline import pipeline_transaction, read_pre_images, results_url
from remediation.pipeline.images import restore_completed_at
from remediation.selectors.config import configured_results_version
from remediation.services.audit import audit_record


def _read_profile(session_id: str) -> tuple[str, str, str, Any] | None:
    with connections["pipeline"].cursor() as cur:
        cur.execute(
            "SELECT p.id::text, coalesce(p.results_version, ''), coalesce(p.type_code, ''),"
            " s.share_token FROM profiles p JOIN assessment_sessions s ON s.id = p.session_id"
            " WHERE p.session_id = %s",
            [session_id],
        )
        return cur.fetchone()


def edge_finalize(
    *,
    session_id: str,
    actor: Any = None,
    rescore: bool = False,
    source: str = "admin",
    run_id: int | None = None,
    http: requests.Session | None = None,
    pre_image: dict[str, Any] | None = None,
) -> FinalizeAttempt:
    """Finalize through the edge function and record what the database shows afterwards.

    `pre_image`: the session's rows before the call (a backfill has committed it on its
    item); without it the session row is read here. Either way `completed_at` is put back
    from it after the call when the function changed it."""
    from remediation.services.sessions import actor_fields

    started = timezone.now()
    t0 = time.perf_counter()
    attempt = FinalizeAttempt(
        session_id=session_id,
        backend="edge",
        source=source,
        rescore=rescore,
        started_at=started,
        run_id=run_id,
        **actor_fields(actor),
    )
    expected = configured_results_version()
    before = _read_profile(session_id)
    with connections["pipeline"].cursor() as cur:
        cur.execute("SELECT 1 FROM assessment_sessions WHERE id = %s", [session_id])
        known = cur.fetchone() is not None
    if not known:
        _fail(attempt, "unknown_session", f"no session with id {session_id}")
    elif before is not None and not rescore:
        attempt.outcome = FinalizeAttempt.Outcome.EXISTING
        attempt.profile_id, attempt.results_version, attempt.type_code, token = before
        attempt.results_url = results_url(session_id, token)
    else:
        if pre_image is None:
            with connections["pipeline"].cursor() as cur:
                pre_image = read_pre_images(cur, [session_id]).get(session_id)
        _call_and_settle(attempt, session_id, before, expected, http)
        crashpoints.reached("edge.answered")
        if pre_image is not None:
            _record_restore(attempt, completed_at_restore(session_id, pre_image), pre_image)
    attempt.finished_at = timezone.now()
    attempt.duration_ms = (time.perf_counter() - t0) * 1000
    attempt.save()
    if attempt.completed_at_restored:
        completed_at_audit(actor, attempt.completed_at_restored, session_id, attempt=attempt)
    return attempt


def completed_at_restore(session_id: str, pre_image: dict[str, Any]) -> dict[str, Any] | None:
    """Put `completed_at` back to the pre-image's value when the edge function changed it
    (its own pipeline transaction; a repeat finds nothing to do). The record of what was
    done ({"from", "to"}, or {"error"} when the database refused), or None when it was
    unchanged."""
    try:
        with pipeline_transaction() as conn, conn.cursor() as cur:
            changed = restore_completed_at(cur, session_id, pre_image.get("session") or {})
    except DatabaseError as exc:
        return {"error": str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__}
    if changed is None:
        return None
    found, put_back = changed
    return {"from": _iso(found), "to": _iso(put_back)}


def completed_at_words(note: dict[str, Any]) -> str:
    """The restore in words, for the attempt's and the item's explanation."""
    if "error" in note:
        return (
            "The portal could not check or put back completed_at, which the edge function "
            f"overwrites: {note['error']}."
        )
    return (
        f"The edge function overwrote completed_at ({note['from']}); the portal put back "
        f"{note['to']} from the pre-image."
    )


def completed_at_audit(actor: Any, note: dict[str, Any], session_id: str, **where: Any) -> None:
    """The audit record of a completed_at restore (or of the failure to make one)."""
    ids = {k: v.pk if hasattr(v, "pk") else v for k, v in where.items()}
    audit_record(
        actor,
        "finalize.completed_at_restored",
        target=session_id,
        sessions=[session_id],
        outcome="failed" if "error" in note else "restored",
        detail={**note, **ids},
    )


def _record_restore(
    attempt: FinalizeAttempt, note: dict[str, Any] | None, pre_image: dict[str, Any]
) -> None:
    if attempt.outcome == FinalizeAttempt.Outcome.UNKNOWN:
        was = (pre_image.get("session") or {}).get("completed_at")
        attempt.explanation += (
            f" The function may still be running and may yet overwrite completed_at (it was "
            f"{was} before the call); "
            + ("Retry failed puts it back." if attempt.run_id else "it is not put back later.")
        )
    if note is None:
        return
    attempt.completed_at_restored = note
    attempt.explanation = " ".join(p for p in (attempt.explanation, completed_at_words(note)) if p)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _call_and_settle(
    attempt: FinalizeAttempt, session_id: str, before: Any, expected: str, http: Any
) -> None:
    """POST, then read the database: only a fresh profile there is a success."""
    call = post_finalize(session_id, http)
    attempt.http_status = call.status
    after = _read_profile(session_id)
    fresh = after is not None and after[1] == expected
    if call.kind == "ok":
        if fresh:
            _succeed(attempt, after, before, session_id)
            return
        attempt.outcome = FinalizeAttempt.Outcome.OK_WITHOUT_PROFILE
        attempt.reason = "ok_without_profile"
        found = (
            "no profile for this session"
            if after is None
            else f"a {after[1]} profile, not {expected}"
        )
        attempt.explanation = (
            f"The edge function answered success, but the database has {found}: its own "
            "profile write failed and it did not say so."
        )
        attempt.error_message = attempt.explanation
    elif call.kind == "timeout" or (call.kind == "connection" and call.sent):
        # The request reached the function and no answer came back whole: it may have run.
        what = (
            f"Timed out ({call.detail})"
            if call.kind == "timeout"
            else f"The connection broke after the request was sent ({call.detail})"
        )
        if fresh:
            _succeed(attempt, after, before, session_id)
            attempt.reason = "timeout_settled" if call.kind == "timeout" else "broken_settled"
            attempt.explanation = f"{what}; the database shows the profile."
            return
        attempt.outcome = FinalizeAttempt.Outcome.UNKNOWN
        attempt.reason = "timeout" if call.kind == "timeout" else "connection_lost"
        attempt.explanation = (
            f"{what} and no profile yet: the function may still be running. Not posted "
            "again; read the session later or diagnose it."
        )
        attempt.error_message = attempt.explanation
    elif call.kind == "malformed_response" and fresh:
        # The database is the truth: the profile is there, only the answer was garbled.
        _succeed(attempt, after, before, session_id)
        attempt.reason = "malformed_settled"
        attempt.explanation = (
            f"{explain(call)} The database shows the fresh profile, so it counts as written."
        )
    else:
        _fail(attempt, call.kind, explain(call))
        if fresh:
            attempt.explanation += " (a profile exists in the database all the same)"


def _succeed(attempt: FinalizeAttempt, after: Any, before: Any, session_id: str) -> None:
    attempt.outcome = (
        FinalizeAttempt.Outcome.RESCORED if before else FinalizeAttempt.Outcome.CREATED
    )
    attempt.profile_id, attempt.results_version, attempt.type_code, token = after
    attempt.results_url = results_url(session_id, token)


def _fail(attempt: FinalizeAttempt, reason: str, explanation: str) -> None:
    attempt.outcome = FinalizeAttempt.Outcome.FAILED
    attempt.reason = reason
    attempt.explanation = explanation
    attempt.error_message = explanation


def edge_failures_predicted(session_ids: list[str]) -> list[Any]:
    """Diagnose each session now (a write tried and rolled back, stored as its diagnosis)
    and return the diagnoses that predict the profile write will fail: the deployed
    function would then answer ok, overwrite completed_at and write no profile. For the
    second confirmation of an edge finalize or backfill (a POST: diagnosing takes locks)."""
    from remediation import pipeline as pw
    from remediation.services.sessions import Diagnosis, session_diagnose

    if not session_ids:
        return []
    try:
        ctx = pw.load_context()
    except DatabaseError as exc:  # e.g. a locked table: no prediction, and the page says so
        why = f"The local diagnosis could not run: {str(exc).splitlines()[0] if str(exc) else exc}"
        return [Diagnosis(str(sid), NOT_DIAGNOSED, why) for sid in session_ids]
    found = [session_diagnose(session_id=str(sid), context=ctx) for sid in session_ids]
    return [d for d in found if d.blocking]


NOT_DIAGNOSED = "not_diagnosed"
