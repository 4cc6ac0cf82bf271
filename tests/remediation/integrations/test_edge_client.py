"""The edge client (remediation/integrations/edge.py) against a real HTTP server on loopback:
Retry-After is capped and may be malformed, a read timeout is never re-POSTed, a body that
breaks off is an outcome (not an exception) and never carries the service-role key.

(Retries of 5xx, a short Retry-After, redirects, refused connections and malformed JSON
through session_finalize are in tests/remediation/services/test_edge.py.)
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import override_settings

from opsportal.secrets import Secret
from remediation.integrations import edge

CANARY = "canary-edge-client-key-5d2e81"
SID = "6f1c2b9a-3c1e-4a57-9d8e-1b2c3d4e5f60"


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, respond: Callable[[BaseHTTPRequestHandler, int], None]) -> None:
        self.respond = respond
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.requests.append(
                {"path": self.path, "body": json.loads(body), "auth": self.headers["Authorization"]}
            )
            number = len(self.server.requests)
        self.server.respond(self, number)

    def log_message(self, *args: object) -> None:
        pass


def send(handler: BaseHTTPRequestHandler, status: int, body: bytes, **headers: str) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    for name, value in headers.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.end_headers()
    handler.wfile.write(body)


def success(handler: BaseHTTPRequestHandler) -> None:
    body = {
        "ok": True,
        "status": "success",
        "session_id": SID,
        "share_token": "tok",
        "results_url": f"https://prism.example/results/{SID}?t=tok",
        "profile": {"type_code": "INTJ"},
    }
    send(handler, 200, json.dumps(body).encode())


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(respond: Callable[[BaseHTTPRequestHandler, int], None], **settings: object) -> Server:
        server = Server(respond)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        values = {
            "SUPABASE_URL": server.url,
            "SUPABASE_SERVICE_ROLE_KEY": Secret(CANARY),
            "EDGE_CONNECT_TIMEOUT": 1.0,
            "EDGE_READ_TIMEOUT": 2.0,
            "EDGE_MAX_RETRIES": 1,
            "EDGE_BACKOFF_BASE": 0.01,
            "EDGE_RETRY_AFTER_CAP": 0.2,
            **settings,
        }
        override = override_settings(**values)
        override.enable()
        overrides.append(override)
        return server

    overrides: list[override_settings] = []
    yield start
    for override in reversed(overrides):
        override.disable()
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_long_retry_after_is_waited_at_most_the_cap(serve):
    server = serve(lambda h, n: send(h, 429, b'{"error": "slow down"}', Retry_After="3600"))
    started = time.monotonic()
    call = edge.post_finalize(SID)
    elapsed = time.monotonic() - started
    assert elapsed < 2.0, f"waited {elapsed:.1f}s for Retry-After: 3600"
    assert len(server.requests) == 2  # 1 + EDGE_MAX_RETRIES
    assert (call.kind, call.status, call.tries) == ("rate_limited", 429, 2)
    assert edge.explain(call) == "Rate limited (429) after 2 tries."
    # The same session, to the function's path, with the key in the header only.
    assert {r["path"] for r in server.requests} == {"/functions/v1/finalizeAssessment"}
    assert all(r["body"] == {"session_id": SID} for r in server.requests)
    assert all(r["auth"] == f"Bearer {CANARY}" for r in server.requests)


def test_the_cap_is_what_is_waited_not_zero(serve):
    server = serve(lambda h, n: send(h, 429, b"{}", Retry_After="3600"), EDGE_RETRY_AFTER_CAP=0.6)
    started = time.monotonic()
    call = edge.post_finalize(SID)
    elapsed = time.monotonic() - started
    assert call.kind == "rate_limited" and len(server.requests) == 2
    assert 0.55 <= elapsed < 2.0


def test_a_malformed_retry_after_does_not_raise(serve):
    def respond(h: BaseHTTPRequestHandler, n: int) -> None:
        if n == 1:
            send(h, 429, b"{}", Retry_After="soon")
        else:
            success(h)

    server = serve(respond)
    started = time.monotonic()
    call = edge.post_finalize(SID)
    assert time.monotonic() - started < 2.0
    assert (call.kind, call.status, call.tries) == ("ok", 200, 2)
    assert call.body["session_id"] == SID
    assert len(server.requests) == 2


def test_a_malformed_retry_after_on_a_503_waits_one_backoff_step(serve):
    server = serve(lambda h, n: send(h, 503, b"{}", Retry_After="soon, maybe"))
    call = edge.post_finalize(SID)
    assert (call.kind, call.status) == ("http_error", 503)
    assert len(server.requests) == 2


def test_a_read_timeout_is_timeout_and_never_posted_again(serve):
    def respond(h: BaseHTTPRequestHandler, n: int) -> None:
        time.sleep(1.5)  # longer than EDGE_READ_TIMEOUT: the function may well have run
        success(h)

    server = serve(respond, EDGE_READ_TIMEOUT=0.4, EDGE_MAX_RETRIES=3)
    started = time.monotonic()
    call = edge.post_finalize(SID)
    elapsed = time.monotonic() - started
    assert (call.kind, call.status, call.tries) == ("timeout", None, 1)
    assert call.detail == "no response within 0.4s"
    assert elapsed < 1.4  # it did not wait for the answer
    time.sleep(1.5)  # a retry would have arrived by now
    assert len(server.requests) == 1


def test_a_body_that_breaks_off_is_an_outcome_without_the_key(serve):
    def respond(h: BaseHTTPRequestHandler, n: int) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", "5000")
        h.end_headers()
        h.wfile.write(b'{"ok": true, "status": "succ')
        h.wfile.flush()
        h.close_connection = True  # the server closes the socket mid-body

    server = serve(respond, EDGE_MAX_RETRIES=3)
    call = edge.post_finalize(SID)  # no exception
    assert isinstance(call, edge.EdgeCall)
    assert call.kind == "connection" and "broke off" in call.detail
    assert CANARY not in call.detail and CANARY not in edge.explain(call)
    assert CANARY not in repr(call)
    assert len(server.requests) == 1  # the request was sent: never re-POSTed


# --- A misbehaving server: every fault is an outcome, none carries the key -------------------
def _raw(handler: BaseHTTPRequestHandler, data: bytes) -> None:
    handler.wfile.write(data)
    handler.wfile.flush()
    handler.close_connection = True


def chunked_cut(h: BaseHTTPRequestHandler, n: int) -> None:
    _raw(
        h,
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"400\r\n" + b'{"ok": true, "status": "su',
    )


def bad_encoding(h: BaseHTTPRequestHandler, n: int) -> None:
    body = b"this is not gzip at all"
    _raw(
        h,
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body,
    )


def invalid_header(h: BaseHTTPRequestHandler, n: int) -> None:
    _raw(h, b"HTTP/1.1 200 OK\r\nContent-Length: lots\r\n\r\n{}")


def no_colon(h: BaseHTTPRequestHandler, n: int) -> None:
    _raw(h, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nNo colon here\r\n\r\n{}")


def huge_header(h: BaseHTTPRequestHandler, n: int) -> None:
    _raw(h, b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 200_000 + b"\r\nContent-Length: 2\r\n\r\n{}")


def many_headers(h: BaseHTTPRequestHandler, n: int) -> None:
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(500))
    _raw(h, b"HTTP/1.1 200 OK\r\n" + headers + b"Content-Length: 2\r\n\r\n{}")


def closes(h: BaseHTTPRequestHandler, n: int) -> None:
    h.close_connection = True  # no status line at all


def garbage_status(h: BaseHTTPRequestHandler, n: int) -> None:
    _raw(h, b"SMTP ready\r\n\r\n")


def deep_json(h: BaseHTTPRequestHandler, n: int) -> None:
    send(h, 200, b"[" * 200_000 + b"]" * 200_000)


def huge_body(h: BaseHTTPRequestHandler, n: int) -> None:
    send(h, 200, b'{"pad": "' + b"x" * 3_000_000 + b'"}')


def bad_charset(h: BaseHTTPRequestHandler, n: int) -> None:
    h.send_response(502)
    h.send_header("Content-Type", "text/html; charset=no-such-charset")
    h.send_header("Content-Length", "4")
    h.end_headers()
    h.wfile.write(b"\xff\xfe<b")


def slow_drip(h: BaseHTTPRequestHandler, n: int) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", "100")
    h.end_headers()
    try:
        for _ in range(100):  # each byte well within the read timeout, all of them not
            h.wfile.write(b" ")
            h.wfile.flush()
            time.sleep(0.1)
    except OSError:
        pass  # the client hung up, as it should


FAULTS = {
    "chunked body ends mid-body": (chunked_cut, "connection"),
    "bad Content-Encoding": (bad_encoding, "connection"),
    # http.client reads to the end on an unparsable length: what arrives is not the answer.
    "invalid Content-Length header": (invalid_header, "malformed_response"),
    "a header line without a colon": (no_colon, "malformed_response"),
    "huge header": (huge_header, "connection"),
    "500 headers": (many_headers, "connection"),
    "connection closed without an answer": (closes, "connection"),
    "not HTTP at all": (garbage_status, "connection"),
    "JSON nested 200 000 deep": (deep_json, "malformed_response"),
    "a 3 MB body": (huge_body, "malformed_response"),
    "unknown charset on a 502": (bad_charset, "http_error"),
    "slow drip past the read timeout": (slow_drip, "timeout"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_every_fault_of_a_misbehaving_server_is_an_outcome_without_the_key(serve, fault):
    respond, kind = FAULTS[fault]
    server = serve(respond, EDGE_READ_TIMEOUT=0.8, EDGE_MAX_RETRIES=2)
    started = time.monotonic()
    call = edge.post_finalize(SID)  # never raises
    elapsed = time.monotonic() - started
    assert isinstance(call, edge.EdgeCall)
    assert call.kind == kind, (fault, call)
    assert elapsed < 3.0, f"{fault}: {elapsed:.1f}s"
    assert CANARY not in repr(call) and CANARY not in edge.explain(call)
    if kind in ("connection", "timeout"):
        # The request reached the server: it may have run; never POSTed again.
        assert len(server.requests) == 1, fault


def test_a_key_requests_refuses_to_send_is_an_outcome_without_the_key(serve):
    serve(success, SUPABASE_SERVICE_ROLE_KEY=Secret(CANARY + "\n"))
    call = edge.post_finalize(SID)
    assert call.kind == "connection" and "InvalidHeader" in call.detail
    assert CANARY not in repr(call)


def test_a_key_http_client_cannot_encode_is_an_outcome_without_the_key(serve):
    serve(success, SUPABASE_SERVICE_ROLE_KEY=Secret(CANARY + "\u2019"))
    call = edge.post_finalize(SID)
    assert call.kind == "connection" and CANARY not in repr(call)
