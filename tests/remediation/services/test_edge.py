"""The edge finalizer against a real HTTP server on loopback: the emulator, faults included."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from django.test import override_settings

from opsportal.secrets import Secret
from remediation.dev.edge_emulator import Faults, start_in_thread
from remediation.models import FinalizeAttempt
from remediation.services import session_finalize
from tests.factories import (
    load_reference_data,
    make_session,
    pipeline_sql,
    rollback_run,
)

CANARY = "canary-service-role-key-7f3a9c"
pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


@pytest.fixture
def emulator(pipeline_db):
    load_reference_data()
    server = start_in_thread()
    with override_settings(
        SUPABASE_URL=server.url,
        SUPABASE_SERVICE_ROLE_KEY=Secret(CANARY),
        EDGE_CONNECT_TIMEOUT=1.0,
        EDGE_READ_TIMEOUT=1.5,
        EDGE_MAX_RETRIES=2,
        EDGE_BACKOFF_BASE=0.01,
        EDGE_RETRY_AFTER_CAP=0.2,
    ):
        yield server
    server.shutdown()
    server.server_close()


def _faults(server, **values):
    server.faults = Faults(**values)


def test_ok_without_a_profile_is_recorded_as_failed(emulator):
    sid = make_session()
    attempt = session_finalize(session_id=sid, backend="edge")
    assert attempt.outcome == "ok_without_profile"
    assert attempt.http_status == 200
    assert "answered success" in attempt.explanation
    # The emulator is faithful: it marked the session completed anyway.
    assert (
        pipeline_sql("SELECT status FROM assessment_sessions WHERE id = %s", [sid], "one")[0]
        == "completed"
    )


def test_edge_success_is_confirmed_by_reading_the_profile(emulator, clear_path):
    sid = make_session()
    attempt = session_finalize(session_id=sid, backend="edge")
    assert attempt.outcome == "created", attempt.explanation
    assert attempt.results_version == "v1.2.1" and attempt.profile_id
    token = pipeline_sql("SELECT share_token FROM assessment_sessions WHERE id = %s", [sid], "one")[
        0
    ]
    assert attempt.results_url.endswith(f"/results/{sid}?t={token}")
    # A second finalize does not post again: the profile is returned.
    seen = emulator.requests_seen
    again = session_finalize(session_id=sid, backend="edge")
    assert again.outcome == "existing" and emulator.requests_seen == seen


def test_a_timeout_is_unknown_and_settled_by_reading_the_database(emulator, clear_path):
    sid = make_session()
    _faults(emulator, hang_seconds=2.5)
    attempt = session_finalize(session_id=sid, backend="edge")
    # Not posted again blindly: one request only.
    assert emulator.requests_seen == 1
    # The read timed out before the function wrote anything: unknown, not failed.
    assert (attempt.outcome, attempt.reason) == ("unknown", "timeout")
    # The hung request finishes and writes the profile; a later finalize reads it.
    import time

    time.sleep(2.0)
    later = session_finalize(session_id=sid, backend="edge")
    assert later.outcome == "existing"


def test_timeout_with_no_profile_stays_unknown(emulator):
    sid = make_session()
    _faults(emulator, hang_seconds=2.5)
    attempt = session_finalize(session_id=sid, backend="edge")
    assert (attempt.outcome, attempt.reason) == ("unknown", "timeout")
    assert emulator.requests_seen == 1


def test_5xx_with_html_is_retried_then_classified(emulator):
    sid = make_session()
    _faults(emulator, status=502)
    attempt = session_finalize(session_id=sid, backend="edge")
    assert (attempt.outcome, attempt.reason, attempt.http_status) == ("failed", "http_error", 502)
    assert emulator.requests_seen == 3  # 1 + EDGE_MAX_RETRIES
    assert (
        "<html>" not in attempt.explanation
        and "upstream edge runtime unavailable" in attempt.explanation
    )


def test_a_transient_503_recovers_on_retry(emulator, clear_path):
    sid = make_session()
    _faults(emulator, status=503, status_times=1)
    attempt = session_finalize(session_id=sid, backend="edge")
    assert attempt.outcome == "created" and emulator.requests_seen == 2


def test_429_honours_retry_after(emulator, clear_path):
    sid = make_session()
    _faults(emulator, rate_limit_times=1, retry_after="0.1")
    attempt = session_finalize(session_id=sid, backend="edge")
    assert attempt.outcome == "created" and emulator.requests_seen == 2


def test_malformed_json_is_classified(emulator):
    sid = make_session()
    _faults(emulator, malformed_json=True)
    attempt = session_finalize(session_id=sid, backend="edge")
    assert (attempt.outcome, attempt.reason) == ("failed", "malformed_response")
    assert emulator.requests_seen == 1


def test_a_malformed_answer_with_the_fresh_profile_in_the_database_counts_as_created(
    emulator, clear_path
):
    sid = make_session()
    _faults(emulator, malformed_json=True)
    attempt = session_finalize(session_id=sid, backend="edge")
    assert (attempt.outcome, attempt.reason) == ("created", "malformed_settled")
    assert attempt.results_version == "v1.2.1" and attempt.profile_id
    assert "malformed" in attempt.explanation and "database shows" in attempt.explanation
    assert emulator.requests_seen == 1


def test_a_connection_lost_after_the_request_was_sent_is_unknown_not_failed(pipeline_db):
    load_reference_data()
    sid = make_session()

    class Hangup(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.close_connection = True  # read the request, answer nothing

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hangup)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with override_settings(
            SUPABASE_URL=f"http://127.0.0.1:{server.server_address[1]}",
            SUPABASE_SERVICE_ROLE_KEY=Secret(CANARY),
            EDGE_MAX_RETRIES=2,
        ):
            attempt = session_finalize(session_id=sid, backend="edge")
    finally:
        server.shutdown()
        server.server_close()
    assert (attempt.outcome, attempt.reason) == ("unknown", "connection_lost")
    assert "Not posted again" in attempt.explanation


def test_a_redirect_to_another_host_is_not_followed(emulator):
    sid = make_session()
    _faults(emulator, redirect_to="http://attacker.invalid/steal")
    attempt = session_finalize(session_id=sid, backend="edge")
    assert (attempt.outcome, attempt.reason, attempt.http_status) == ("failed", "redirect", 302)
    assert "attacker.invalid" in attempt.explanation


def test_connection_refused_is_retried_and_classified(pipeline_db):
    load_reference_data()
    sid = make_session()
    with override_settings(
        SUPABASE_URL="http://127.0.0.1:9",
        SUPABASE_SERVICE_ROLE_KEY=Secret(CANARY),
        EDGE_MAX_RETRIES=1,
        EDGE_BACKOFF_BASE=0.01,
    ):
        attempt = session_finalize(session_id=sid, backend="edge")
    assert (attempt.outcome, attempt.reason) == ("failed", "connection")
    assert "after 2 tries" in attempt.explanation


def test_a_lying_response_for_another_session_is_malformed(pipeline_db):
    load_reference_data()
    sid = make_session()

    class Liar(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            body = json.dumps(
                {
                    "ok": True,
                    "status": "success",
                    "session_id": "someone-else",
                    "share_token": "x",
                    "results_url": "y",
                    "profile": {},
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Liar)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with override_settings(
            SUPABASE_URL=f"http://127.0.0.1:{server.server_address[1]}",
            SUPABASE_SERVICE_ROLE_KEY=Secret(CANARY),
        ):
            attempt = session_finalize(session_id=sid, backend="edge")
    finally:
        server.shutdown()
        server.server_close()
    assert (attempt.outcome, attempt.reason) == ("failed", "malformed_response")
    assert "someone-else" in attempt.explanation


def test_the_emulator_refuses_a_wrong_key(emulator):
    resp = requests.post(
        f"{emulator.url}/functions/v1/finalizeAssessment",
        json={"session_id": make_session()},
        headers={"Authorization": "Bearer wrong"},
        timeout=5,
    )
    assert resp.status_code == 401
    resp = requests.post(
        f"{emulator.url}/functions/v1/finalizeAssessment",
        json={},
        headers={"Authorization": f"Bearer {CANARY}"},
        timeout=5,
    )
    assert resp.status_code == 400


def test_the_service_role_key_never_leaks(emulator, caplog):
    caplog.set_level(logging.DEBUG)
    sid = make_session()
    attempts = [session_finalize(session_id=sid, backend="edge")]
    _faults(emulator, status=502)
    attempts.append(session_finalize(session_id=make_session(seed=2), backend="edge"))
    _faults(emulator, redirect_to="http://x.invalid/")
    attempts.append(session_finalize(session_id=make_session(seed=3), backend="edge"))
    for attempt in FinalizeAttempt.objects.all():
        record = json.dumps({f.name: str(getattr(attempt, f.name)) for f in attempt._meta.fields})
        assert CANARY not in record
    assert CANARY not in caplog.text
    assert len(attempts) == 3


def test_the_key_is_never_rendered_in_admin_pages(emulator, client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "r@example.org", "pw")
    client.force_login(user)
    sid = make_session()
    _faults(emulator, status=502)
    session_finalize(session_id=sid, backend="edge")
    pages = [
        "/admin/remediation/finalizeattempt/",
        f"/admin/remediation/assessmentsession/{sid}/change/",
        f"/admin/remediation/assessmentsession/{sid}/finalize/",
        "/admin/remediation/orphanedsession/",
    ]
    attempt = FinalizeAttempt.objects.get(session_id=sid)
    pages.append(f"/admin/remediation/finalizeattempt/{attempt.pk}/change/")
    for url in pages:
        resp = client.get(url)
        assert resp.status_code == 200, url
        assert CANARY not in resp.content.decode(), url


def test_a_backfill_through_the_edge_backend_is_verified_and_reversible(emulator, clear_path):
    from remediation import jobs as bf

    ids = [make_session(seed=i) for i in range(3)]
    run = bf.run_until_done(
        bf.backfill_start(selection="ids", ids=ids, backend="edge", enqueue=False).pk
    )
    assert (run.state, run.created, run.failed) == ("succeeded", 3, 0)
    assert emulator.requests_seen == 3
    assert (
        FinalizeAttempt.objects.filter(run_id=run.pk, backend="edge", outcome="created").count()
        == 3
    )
    report = rollback_run(run.pk)
    assert report["restored"] == 3
    assert (
        pipeline_sql(
            "SELECT count(*) FROM profiles WHERE session_id = ANY(%s::uuid[])", [ids], "one"
        )[0]
        == 0
    )


def test_an_edge_backfill_counts_ok_without_profile_as_failed(emulator):
    from remediation import jobs as bf

    ids = [make_session(seed=i) for i in range(2)]
    run = bf.run_until_done(
        bf.backfill_start(selection="ids", ids=ids, backend="edge", enqueue=False).pk
    )
    assert (run.created, run.failed) == (0, 2)
    assert run.failed_by_reason == {"ok_without_profile": 2}
