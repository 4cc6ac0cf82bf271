"""The edge backend: POST finalizeAssessment, then believe only the database.

On the day of the incident the function answered {"ok": true} for sessions that never
got a profile. Here a 200 is only a claim: the attempt succeeds when a profile with the
configured results version exists afterwards. A read timeout is "unknown" and is
settled by reading the database, never by posting again blindly.
"""

from __future__ import annotations

import time
from typing import Any

import requests
from django.db import connections
from django.utils import timezone

from remediation.integrations.edge import explain, post_finalize
from remediation.models import FinalizeAttempt
from remediation.pipeline import results_url
from remediation.selectors.config import configured_results_version


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
) -> FinalizeAttempt:
    """Finalize through the edge function and record what the database shows afterwards."""
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
        _call_and_settle(attempt, session_id, before, expected, http)
    attempt.finished_at = timezone.now()
    attempt.duration_ms = (time.perf_counter() - t0) * 1000
    attempt.save()
    return attempt


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
