"""Shared pieces of the results-notification tests: a real SMTP server on loopback, sessions
with profiles (written by a real backfill), and reading the links out of received mail."""

from __future__ import annotations

import re
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit

from django.test import override_settings

from remediation import jobs
from remediation.dev.smtp_sink import SinkHandler, start_sink
from remediation.integrations.mail import DJANGO_SMTP
from tests.factories import make_session


@contextmanager
def smtp_server(**handler_kwargs):
    """aiosmtpd in a thread on 127.0.0.1, and the settings that send through it."""
    handler = SinkHandler(**handler_kwargs)
    controller, port = start_sink(handler)
    handler.port = port  # type: ignore[attr-defined]
    try:
        with override_settings(
            EMAIL_BACKEND=DJANGO_SMTP,
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=port,
            EMAIL_HOST_USER="",
            EMAIL_HOST_PASSWORD="",
            EMAIL_USE_TLS=False,
            EMAIL_USE_SSL=False,
            EMAIL_TIMEOUT=10,
            NOTIFY_PER_MINUTE=0,
            NOTIFY_RETRY_BACKOFF=0.01,
            NOTIFY_MAX_TRIES=3,
        ):
            yield handler
    finally:
        handler.release.set()
        controller.stop()


def backfilled(n: int, start: int = 0) -> tuple[int, list[str]]:
    """n orphans given their profiles by a real backfill; (the run's id, the session ids)."""
    ids = [make_session(seed=start + i) for i in range(n)]
    run = jobs.backfill_start(selection="ids", ids=ids, enqueue=False, actor="tester")
    done = jobs.run_until_done(run.pk)
    assert done.created == n, done.message
    return done.pk, ids


LINK = re.compile(r"https?://\S+/results/[0-9a-f-]{36}\?t=\S+")


def link_in(received) -> tuple[str, str]:
    """(session id, token) of the results link in a received message's plain text."""
    msg = received.message
    text = msg.get_body(preferencelist=("plain",)).get_content()
    url = LINK.search(text).group(0)
    parts = urlsplit(url)
    return parts.path.rsplit("/", 1)[1], parse_qs(parts.query)["t"][0]


@contextmanager
def results_site():
    """The results page as the pipeline serves it, on loopback: /results/<session_id>?t=<token>
    answers 200 with the profile's type code when the token is that session's own, else 404.
    Yields its base URL (for RESULTS_BASE_URL)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from django.db import connections

    from tests.factories import pipeline_sql

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            parts = urlsplit(self.path)
            sid = parts.path.rsplit("/", 1)[-1]
            token = parse_qs(parts.query).get("t", [""])[0]
            try:
                row = pipeline_sql(
                    "SELECT p.type_code FROM assessment_sessions s JOIN profiles p"
                    " ON p.session_id = s.id WHERE s.id::text = %s AND s.share_token = %s",
                    [sid, token],
                    "one",
                )
            finally:
                connections.close_all()
            body = (f"results of {sid}: {row[0]}" if row else "not found").encode()
            self.send_response(200 if row and parts.path.startswith("/results/") else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
