"""The edge-function client: POST finalizeAssessment with timeouts and bounded retries.

One `requests.Session` per worker thread (connections are reused) with urllib3's `Retry`:
connection errors (the request never left) and 429/502/503/504 answers are retried with
exponential backoff, honouring `Retry-After` up to EDGE_RETRY_AFTER_CAP; a read timeout
or a connection lost after the request was sent is never retried, because the function
may have run: the caller settles it by reading the database. Redirects are not followed.
The service-role key travels only in the request headers, never in a message.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
)
from urllib3.util.retry import Retry

RETRY_STATUSES = frozenset({429, 502, 503, 504})


@dataclass
class EdgeCall:
    """The outcome of the HTTP exchange before the database is consulted."""

    kind: str  # ok, timeout, connection, redirect, http_error, malformed_response, rate_limited
    status: int | None = None
    body: dict[str, Any] | None = None
    detail: str = ""
    tries: int = 0
    # The request reached the function, which may have run: settle by reading the database.
    sent: bool = True


class _CappedRetry(Retry):
    """Retry whose Retry-After wait is capped (a hostile or confused server cannot park us)."""

    retry_after_cap: float = 30.0

    def parse_retry_after(self, retry_after: str) -> float:
        """Seconds (fractions too) or an HTTP date; anything else waits one backoff step."""
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            pass
        try:
            return float(super().parse_retry_after(retry_after))
        except Exception:  # a malformed header must not break the call
            return float(self.backoff_factor)

    def get_retry_after(self, response: Any) -> float | None:
        value = super().get_retry_after(response)
        return None if value is None else max(0.0, min(value, self.retry_after_cap))

    def new(self, **kw: Any) -> _CappedRetry:
        retry = super().new(**kw)
        retry.retry_after_cap = self.retry_after_cap
        return retry


def retry_policy(retries: int, backoff: float, retry_after_cap: float) -> Retry:
    """POST retried only where the request cannot have run: connect errors and 429/5xx."""
    retry = _CappedRetry(
        total=None,
        connect=retries,
        read=False,  # never re-POST after the request was sent: the read error is raised
        status=retries,
        redirect=0,
        other=0,
        allowed_methods=frozenset({"POST"}),
        status_forcelist=RETRY_STATUSES,
        backoff_factor=backoff,
        backoff_jitter=backoff,
        respect_retry_after_header=True,
        raise_on_status=False,
        raise_on_redirect=False,
    )
    retry.retry_after_cap = retry_after_cap
    return retry


_local = threading.local()


def http_session() -> requests.Session:
    """This thread's session for the configured retry policy (rebuilt when settings change)."""
    key = (settings.EDGE_MAX_RETRIES, settings.EDGE_BACKOFF_BASE, settings.EDGE_RETRY_AFTER_CAP)
    cached = getattr(_local, "session", None)
    if cached is None or cached[0] != key:
        session = requests.Session()
        adapter = HTTPAdapter(max_retries=retry_policy(*key), pool_maxsize=16)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        _local.session = (key, session)
    return _local.session[1]


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
    flat = " ".join(re.sub(r"<[^>]+>", " ", text).split())
    return flat[:limit] + ("…" if len(flat) > limit else "")


def _tries(resp: requests.Response) -> int:
    retries = getattr(resp.raw, "retries", None)
    return len(getattr(retries, "history", ()) or ()) + 1


MAX_BODY_BYTES = 1_000_000  # a finalizeAssessment answer is a few kB; more is not an answer


def post_finalize(session_id: str, http: requests.Session | None = None) -> EdgeCall:
    """POST finalizeAssessment for one session; every failure becomes an EdgeCall kind.

    Nothing raises out of here: every exception requests, urllib3, http.client or the JSON
    decoder can raise (a body that breaks off, a bad Content-Encoding, an invalid or huge
    header, a closed connection, JSON nested too deep to decode) is an outcome, and its
    detail names only the exception's type (the key is in the request headers, and so in
    the locals of requests' frames: an exception that escaped would carry it to a
    traceback). The body is read with a deadline (EDGE_READ_TIMEOUT in all, not per read),
    so a server that drips a byte at a time cannot hold the call forever.
    """
    http = http or http_session()
    timeout = (settings.EDGE_CONNECT_TIMEOUT, settings.EDGE_READ_TIMEOUT)
    payload = json.dumps({"session_id": session_id})
    started = time.monotonic()
    try:
        resp = http.post(
            function_url(),
            data=payload,
            headers=_headers(),
            timeout=timeout,
            allow_redirects=False,
            stream=True,
        )
    except requests.exceptions.ReadTimeout:
        return _timed_out()
    except (requests.exceptions.ConnectionError, requests.exceptions.ConnectTimeout) as exc:
        tries = settings.EDGE_MAX_RETRIES + 1 if _never_sent(exc) else 1
        return EdgeCall(
            "connection", detail=_connection_detail(exc), tries=tries, sent=not _unconnected(exc)
        )
    except Exception as exc:  # bad header, invalid URL, …: the type only, never the message
        return EdgeCall(
            "connection", detail=f"the request failed: {type(exc).__name__}", tries=1, sent=False
        )
    try:
        return _answer(resp, session_id, started)
    finally:
        with contextlib.suppress(Exception):
            resp.close()


def _timed_out() -> EdgeCall:
    return EdgeCall(
        "timeout", detail=f"no response within {settings.EDGE_READ_TIMEOUT:g}s", tries=1
    )


def _read_body(resp: requests.Response, started: float) -> bytes | EdgeCall:
    """The body within the deadline and MAX_BODY_BYTES, or the EdgeCall saying why not."""
    deadline = started + settings.EDGE_READ_TIMEOUT
    chunks: list[bytes] = []
    size = 0
    # A read blocks until its chunk is full: at the deadline the connection is closed under
    # it (the read then raises, and that is a timeout).
    guard = threading.Timer(max(0.0, deadline - time.monotonic()), _abort, [resp])
    guard.daemon = True
    guard.start()
    try:
        for chunk in resp.iter_content(8192):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return EdgeCall(
                    "malformed_response",
                    resp.status_code,
                    detail=f"the response is larger than {MAX_BODY_BYTES} bytes",
                    tries=_tries(resp),
                )
            if time.monotonic() > deadline:
                return _timed_out()
    except Exception as exc:  # ChunkedEncodingError, ContentDecodingError, ProtocolError, …
        if time.monotonic() >= deadline or "timed out" in str(exc):
            return _timed_out()
        return _broke_off(exc)
    finally:
        guard.cancel()
    if time.monotonic() >= deadline:
        return _timed_out()  # closed by the guard: what was read is not the whole answer
    return b"".join(chunks)


def _abort(resp: requests.Response) -> None:
    """Wake a read blocked on the socket (a close from another thread would not)."""
    # http.client hands the socket to its response: HTTPResponse.fp (buffered) → SocketIO.
    fp = getattr(getattr(resp.raw, "_fp", None), "fp", None)
    sock = getattr(getattr(fp, "raw", None), "_sock", None)
    with contextlib.suppress(Exception):
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(Exception):
        resp.close()


def _broke_off(exc: BaseException) -> EdgeCall:
    # The request was sent: the function may have run, so this is never re-POSTed.
    return EdgeCall("connection", detail=f"the response broke off: {type(exc).__name__}", tries=1)


def _answer(resp: requests.Response, session_id: str, started: float) -> EdgeCall:
    tries = _tries(resp)
    if resp.is_redirect or 300 <= resp.status_code < 400:
        host = urlparse(resp.headers.get("Location", "")).netloc or "(same host)"
        return EdgeCall(
            "redirect", resp.status_code, detail=f"redirect to {host} not followed", tries=tries
        )
    if resp.status_code == 429:
        return EdgeCall("rate_limited", 429, detail="rate limited (429)", tries=tries)
    raw = _read_body(resp, started)
    if isinstance(raw, EdgeCall):
        return raw
    text = raw.decode("utf-8", errors="replace")
    if resp.status_code >= 400:
        return EdgeCall("http_error", resp.status_code, detail=_snippet(text), tries=tries)
    try:
        body = json.loads(text)
    except (ValueError, RecursionError, MemoryError) as exc:
        what = "nested too deep" if isinstance(exc, RecursionError) else "not JSON"
        return EdgeCall(
            "malformed_response",
            resp.status_code,
            detail=f"{what}: {_snippet(text, 80)!r}",
            tries=tries,
        )
    problem = validate_body(body, session_id)
    if problem:
        return EdgeCall("malformed_response", resp.status_code, detail=problem, tries=tries)
    return EdgeCall("ok", resp.status_code, body=body, tries=tries)


def _never_sent(exc: Exception) -> bool:
    """A connect error that exhausted its retries: the request never reached the function."""
    inner = exc.args[0] if exc.args else None
    return isinstance(inner, MaxRetryError) and isinstance(inner.reason, ConnectTimeoutError)


def _unconnected(exc: Exception) -> bool:
    """No connection was made (refused, unresolvable, connect timeout): nothing was sent."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    inner = exc.args[0] if exc.args else None
    reason = getattr(inner, "reason", inner)
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError, NameResolutionError))


def _connection_detail(exc: Exception) -> str:
    # requests' messages carry the URL (no secret in it), never the headers.
    return f"cannot reach {urlparse(function_url()).netloc}: {type(exc).__name__}"


def validate_body(body: Any, session_id: str) -> str:
    """The 200 body of finalizeAssessment, as pipeline.md defines it ("" when valid)."""
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


def explain(call: EdgeCall) -> str:
    """The call's failure in plain words."""
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
