"""An emulator of the deployed `finalizeAssessment` edge function, with switchable faults.

It serves the contract of pipeline.md over the same database and scoring as the portal,
and it is faithful to the deployed function's defects, because the portal must cope
with them: it rescores on every call, overwrites `completed_at`, and answers success
when its own profile write failed. Faults (latency, hangs, 5xx with HTML bodies,
malformed JSON, rate limiting, a redirect to another host) are switched by command-line
flags or at run time through POST /__emulator/faults (loopback only).

Used by the demo (`manage.py edge_emulator`) and by the tests (a real HTTP server on an
ephemeral loopback port).
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
import uuid
from dataclasses import asdict, dataclass, fields
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections, transaction
from django.utils import timezone

import scoring
from remediation import pipeline as pw
from remediation.pipeline.fc import score_fc
from remediation.pipeline.profiles import upsert_profiles

logger = logging.getLogger("remediation.edge_emulator")


@dataclass
class Faults:
    """What the emulator does wrong on purpose. `*_times` = -1 means every request."""

    latency_ms: int = 0
    hang_seconds: float = 0.0
    status: int = 0  # e.g. 502: answer with this status and an HTML body
    status_times: int = -1
    malformed_json: bool = False
    rate_limit_times: int = 0  # answer 429 with Retry-After this many times
    retry_after: str = "1"
    redirect_to: str = ""  # answer 302 to this URL

    def update(self, data: dict[str, Any]) -> None:
        names = {f.name: f.type for f in fields(self)}
        for key, value in data.items():
            if key not in names:
                raise ValueError(f"unknown fault {key!r}")
            setattr(self, key, type(getattr(self, key))(value))


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], faults: Faults | None = None) -> None:
        super().__init__(address, Handler)
        self.faults = faults or Faults()
        self.lock = threading.Lock()
        self.requests_seen = 0

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host_text = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://{host_text}:{port}"


class Handler(BaseHTTPRequestHandler):
    server: EmulatorServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.client_address[0], *args)

    # --- plumbing ---------------------------------------------------------------
    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data, default=str).encode(), "application/json")

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        if self.path == "/__emulator/faults":
            self._json(200, asdict(self.server.faults))
        elif self.path == "/health":
            self._json(200, {"ok": True})
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        if self.path == "/__emulator/faults":
            return self._set_faults()
        if self.path != "/functions/v1/finalizeAssessment":
            return self._json(404, {"error": "function not found"})
        raw = self._body()
        with self.server.lock:
            self.server.requests_seen += 1
        if not self._authorized():
            return self._json(401, {"error": "Invalid JWT"})
        if self._inject_faults():
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return self._json(400, {"error": "invalid JSON body"})
        session_id = body.get("session_id") if isinstance(body, dict) else None
        if not session_id:
            return self._json(400, {"error": "session_id is required"})
        close_old_connections()
        try:
            status, payload = finalize_like_deployed(str(session_id))
        finally:
            connections.close_all()
        if self.server.faults.malformed_json:
            return self._send(
                200, b'{"ok": true, "status": "success", "profile": {', "application/json"
            )
        self._json(status, payload)

    def _set_faults(self) -> None:
        if self.client_address[0] not in ("127.0.0.1", "::1"):
            return self._json(403, {"error": "faults are set from loopback only"})
        try:
            data = json.loads(self._body() or b"{}")
            with self.server.lock:
                if data.pop("reset", False):
                    self.server.faults = Faults()
                self.server.faults.update(data)
        except (ValueError, TypeError) as exc:
            return self._json(400, {"error": str(exc)})
        self._json(200, asdict(self.server.faults))

    def _authorized(self) -> bool:
        expected = settings.SUPABASE_SERVICE_ROLE_KEY.reveal()
        given = self.headers.get("Authorization", "")
        return bool(expected) and hmac.compare_digest(given, f"Bearer {expected}")

    def _inject_faults(self) -> bool:
        f = self.server.faults
        if f.latency_ms:
            time.sleep(f.latency_ms / 1000)
        if f.hang_seconds:
            time.sleep(f.hang_seconds)
        with self.server.lock:
            rate_limited = f.rate_limit_times != 0
            if f.rate_limit_times > 0:
                f.rate_limit_times -= 1
            do_status = bool(f.status) and f.status_times != 0
            if do_status and f.status_times > 0:
                f.status_times -= 1
        if rate_limited:
            self._send(
                429, b'{"error":"rate limited"}', "application/json", {"Retry-After": f.retry_after}
            )
            return True
        if f.redirect_to:
            self._send(302, b"", "text/plain", {"Location": f.redirect_to})
            return True
        if do_status:
            html = (
                f"<html><head><title>{f.status} Bad Gateway</title></head><body>"
                f"<h1>{f.status}</h1><p>upstream edge runtime unavailable</p></body></html>"
            )
            self._send(f.status, html.encode(), "text/html")
            return True
        return False


def finalize_like_deployed(session_id: str) -> tuple[int, dict[str, Any]]:
    """finalizeAssessment as deployed on 2025-09-17, defects included (see module doc)."""
    # Long on purpose: the deployed function's steps in its order, defects included.
    try:
        uuid.UUID(session_id)
    except ValueError:
        return 400, {"error": "invalid session_id"}
    ctx = pw.load_context()
    now = timezone.now()
    with transaction.atomic(using="pipeline"):
        conn = connections["pipeline"]
        with conn.cursor() as cur:
            cur.execute(
                "SELECT share_token, share_token_expires_at FROM assessment_sessions WHERE id = %s FOR UPDATE",
                [session_id],
            )
            row = cur.fetchone()
            if row is None:
                return 422, {"ok": False, "error": "score_prism failed: session not found"}
            share_token, expires = row
            answers = pw.read_answers(cur, session_id)
            # 2. best effort score_fc_session; 3. score_prism.
            cur.execute(
                "SELECT block_id::text, option_id::text FROM fc_responses WHERE session_id = %s",
                [session_id],
            )
            fc_rows = cur.fetchall()
            if fc_rows:
                pw.as_service_role(cur)
                score_fc(cur, ctx, session_id, fc_rows, [], "pipeline")
                cur.execute("RESET ROLE")
            cur.execute(
                "SELECT scores_json::text FROM fc_scores WHERE session_id = %s AND version = 'v1.2'"
                " AND fc_kind = 'functions'",
                [session_id],
            )
            fc_row = cur.fetchone()
            fc_scores = json.loads(fc_row[0]) if fc_row else None
            try:
                result = ctx.scorer.score(answers, fc_scores, session_id=session_id)
            except scoring.UnscorableSession as exc:
                return 422, {"ok": False, "error": f"score_prism failed: {exc}"}
            stored = scoring.stored_confidence(result, ctx.scorer.config, ctx.calibration_models)
            cur.execute("SELECT submitted_at FROM profiles WHERE session_id = %s", [session_id])
            existing = cur.fetchone()
            profile = scoring.build_profile_row(
                result,
                stored,
                session_id,
                now,
                existing_submitted_at=existing[0] if existing else None,
                had_profile=existing is not None,
            )
            try:
                with transaction.atomic(using="pipeline"):
                    upsert_profiles(cur, [profile])
            except DatabaseError as exc:
                # The deployed score_prism ignored this error and still answered success.
                logger.info("score_prism upsert error ignored: %s", str(exc).splitlines()[0])
            # 4.–5. share token and session update (rescored every call, completed_at overwritten).
            token = share_token or str(uuid.uuid4())
            cur.execute(
                "UPDATE assessment_sessions SET status = 'completed', completed_at = %s,"
                " finalized_at = %s, share_token = %s, share_token_expires_at = %s,"
                " completed_questions = %s, updated_at = %s WHERE id = %s",
                [
                    now,
                    now,
                    token,
                    expires or now + timedelta(days=30),
                    len(answers),
                    now,
                    session_id,
                ],
            )
    body_profile = {
        k: v
        for k, v in profile.items()
        if k not in ("submitted_at", "recomputed_at", "created_at", "updated_at")
    }
    return 200, {
        "ok": True,
        "status": "success",
        "session_id": session_id,
        "share_token": token,
        "profile": body_profile,
        "results_url": pw.results_url(session_id, token),
    }


def start_in_thread(
    host: str = "127.0.0.1", port: int = 0, faults: Faults | None = None
) -> EmulatorServer:
    """Start an emulator on a background thread (tests); returns the running server."""
    server = EmulatorServer((host, port), faults)
    threading.Thread(target=server.serve_forever, name="edge-emulator", daemon=True).start()
    return server
