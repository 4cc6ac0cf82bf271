"""The edge backend: POST finalizeAssessment, then believe only the database.

On the day of the incident the function answered {"ok": true} for sessions that never
got a profile. Here a 200 is only a claim: the attempt succeeds when a profile with the
configured results version exists afterwards. A read timeout is "unknown" and is
settled by reading the database, never by posting again blindly.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import requests
from django.conf import settings
from django.db import connections
from django.utils import timezone

from remediation.models import FinalizeAttempt

RETRY_STATUSES = {502, 503, 504}


@dataclass
class EdgeCall:
    """The outcome of the HTTP exchange before the database is consulted."""

    kind: str  # ok, timeout, connection, redirect, http_error, malformed_response, rate_limited
    status: int | None = None
    body: dict[str, Any] | None = None
    detail: str = ""
    tries: int = 0


def function_url(name: str = "finalizeAssessment") -> str:
    return f"{settings.SUPABASE_URL}/functions/v1/{name}"


def _headers() -> dict[str, str]:
    key = settings.SUPABASE_SERVICE_ROLE_KEY.reveal()
    return {
        "Authorization": f"Bearer {key}",
        "apikey": key,
        "Content-Type": "application/json",
        "User-Agent": "prism-opsportal",
    }


def _snippet(text: str, limit: int = 200) -> str:
    import re

    flat = re.sub(r"<[^>]+>", " ", text)
    flat = " ".join(flat.split())
    return flat[:limit] + ("…" if len(flat) > limit else "")


def _sleep_backoff(attempt: int) -> None:
    base = settings.EDGE_BACKOFF_BASE
    time.sleep(base * (2**attempt) + random.uniform(0, base))


def post_finalize(session_id: str, session: requests.Session | None = None) -> EdgeCall:
    """POST with timeouts; retry only connection errors, 502/503/504 and 429 (Retry-After)."""
    http = session or requests.Session()
    url = function_url()
    payload = json.dumps({"session_id": session_id})
    timeout = (settings.EDGE_CONNECT_TIMEOUT, settings.EDGE_READ_TIMEOUT)
    last = EdgeCall("connection", detail="not attempted")
    for attempt in range(settings.EDGE_MAX_RETRIES + 1):
        last_try = attempt == settings.EDGE_MAX_RETRIES
        try:
            resp = http.post(
                url, data=payload, headers=_headers(), timeout=timeout, allow_redirects=False
            )
        except requests.exceptions.ReadTimeout:
            return EdgeCall(
                "timeout",
                detail=f"no response within {settings.EDGE_READ_TIMEOUT:g}s",
                tries=attempt + 1,
            )
        except (requests.exceptions.ConnectionError, requests.exceptions.ConnectTimeout) as exc:
            last = EdgeCall("connection", detail=_connection_detail(exc), tries=attempt + 1)
            if not last_try:
                _sleep_backoff(attempt)
            continue
        if resp.is_redirect or 300 <= resp.status_code < 400:
            location = resp.headers.get("Location", "")
            host = urlparse(location).netloc or "(same host)"
            return EdgeCall(
                "redirect", resp.status_code,
                detail=f"redirect to {host} not followed", tries=attempt + 1,
            )  # fmt: skip
        if resp.status_code == 429:
            last = EdgeCall("rate_limited", 429, detail="rate limited (429)", tries=attempt + 1)
            if not last_try:
                time.sleep(_retry_after(resp.headers.get("Retry-After")))
            continue
        if resp.status_code in RETRY_STATUSES:
            last = EdgeCall(
                "http_error", resp.status_code, detail=_snippet(resp.text), tries=attempt + 1
            )
            if not last_try:
                _sleep_backoff(attempt)
            continue
        if resp.status_code >= 400:
            return EdgeCall(
                "http_error", resp.status_code, detail=_snippet(resp.text), tries=attempt + 1
            )
        try:
            body = resp.json()
        except ValueError:
            return EdgeCall(
                "malformed_response", resp.status_code,
                detail=f"not JSON: {_snippet(resp.text, 80)!r}", tries=attempt + 1,
            )  # fmt: skip
        problem = _validate(body, session_id)
        if problem:
            return EdgeCall(
                "malformed_response", resp.status_code, detail=problem, tries=attempt + 1
            )
        return EdgeCall("ok", resp.status_code, body=body, tries=attempt + 1)
    return last


def _connection_detail(exc: Exception) -> str:
    # requests' messages carry the URL (no secret in it), never the headers.
    return f"cannot reach {urlparse(function_url()).netloc}: {type(exc).__name__}"


def _retry_after(value: str | None) -> float:
    cap = settings.EDGE_RETRY_AFTER_CAP
    try:
        seconds = float(value) if value is not None else settings.EDGE_BACKOFF_BASE
    except ValueError:
        seconds = settings.EDGE_BACKOFF_BASE
    return max(0.0, min(seconds, cap))


def _validate(body: Any, session_id: str) -> str:
    """The 200 body of finalizeAssessment, as pipeline.md defines it."""
    if not isinstance(body, dict):
        return "the response is not a JSON object"
    if body.get("ok") is not True or body.get("status") != "success":
        return f"ok/status are {body.get('ok')!r}/{body.get('status')!r}, not true/'success'"
    if body.get("session_id") != session_id:
        return f"the response is for session {body.get('session_id')!r}"
    for name in ("share_token", "results_url"):
        if not isinstance(body.get(name), str) or not body.get(name):
            return f"{name} is missing"
    if not isinstance(body.get("profile"), dict):
        return "profile is missing"
    return ""


def _read_profile(session_id: str) -> tuple[str, str, str, Any] | None:
    with connections["pipeline"].cursor() as cur:
        cur.execute(
            "SELECT p.id::text, coalesce(p.results_version, ''), coalesce(p.type_code, ''),"
            " s.share_token FROM profiles p JOIN assessment_sessions s ON s.id = p.session_id"
            " WHERE p.session_id = %s",
            [session_id],
        )
        return cur.fetchone()


def _configured_version() -> str:
    with connections["pipeline"].cursor() as cur:
        cur.execute("SELECT value #>> '{}' FROM scoring_config WHERE key = 'results_version'")
        row = cur.fetchone()
    return row[0] if row and row[0] else "v1.2.1"


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
    from remediation.pipeline_write import results_url
    from remediation.services import _actor_fields

    started = timezone.now()
    t0 = time.perf_counter()
    attempt = FinalizeAttempt(
        session_id=session_id, backend="edge", source=source, rescore=rescore,
        started_at=started, run_id=run_id, **_actor_fields(actor),
    )  # fmt: skip
    expected = _configured_version()
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
        call = post_finalize(session_id, http)
        attempt.http_status = call.status
        after = _read_profile(session_id)
        fresh = after is not None and after[1] == expected
        if call.kind == "ok":
            if fresh:
                _succeed(attempt, after, before, session_id)
            else:
                attempt.outcome = FinalizeAttempt.Outcome.OK_WITHOUT_PROFILE
                attempt.reason = "ok_without_profile"
                attempt.explanation = (
                    "The edge function answered success, but the database has "
                    + (
                        "no profile for this session"
                        if after is None
                        else f"a {after[1]} profile, not {expected}"
                    )
                    + ": its own profile write failed and it did not say so."
                )
                attempt.error_message = attempt.explanation
        elif call.kind == "timeout":
            if fresh:
                _succeed(attempt, after, before, session_id)
                attempt.reason = "timeout_settled"
                attempt.explanation = f"Timed out ({call.detail}); the database shows the profile."
            else:
                attempt.outcome = FinalizeAttempt.Outcome.UNKNOWN
                attempt.reason = "timeout"
                attempt.explanation = (
                    f"Timed out ({call.detail}) and no profile yet: the function may still be "
                    "running. Not posted again; read the session later or diagnose it."
                )
                attempt.error_message = attempt.explanation
        else:
            _fail(attempt, call.kind, _explain(call))
            if fresh and call.kind != "malformed_response":
                attempt.explanation += " (a profile exists in the database all the same)"
    attempt.finished_at = timezone.now()
    attempt.duration_ms = (time.perf_counter() - t0) * 1000
    attempt.save()
    return attempt


def _succeed(attempt: FinalizeAttempt, after: Any, before: Any, session_id: str) -> None:
    from remediation.pipeline_write import results_url

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


def _explain(call: EdgeCall) -> str:
    tries = f" after {call.tries} tries" if call.tries > 1 else ""
    if call.kind == "connection":
        return f"Connection failed{tries}: {call.detail}."
    if call.kind == "redirect":
        return f"The function answered {call.status} with a {call.detail}."
    if call.kind == "rate_limited":
        return f"Rate limited (429){tries}."
    if call.kind == "http_error":
        return f"The function answered HTTP {call.status}{tries}: {call.detail or '(empty body)'}"
    if call.kind == "malformed_response":
        return f"The function's response was malformed: {call.detail}."
    return call.detail
