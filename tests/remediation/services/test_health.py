"""Health figures against independent computations, alert lifecycle, webhooks, /metrics, /healthz."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from opsportal.secrets import Secret
from remediation.dev.demo import seed_demo
from remediation.models import Alert, FinalizeAttempt, MetricSnapshot
from remediation.selectors import health
from remediation.services import health as health_services
from remediation.services import session_finalize
from tests.factories import load_reference_data, make_session, pipeline_sql, relax_checks

pytestmark = pytest.mark.django_db(databases="__all__")


def _independent_conversion(hours: int) -> tuple[int, int]:
    rows = pipeline_sql(
        "SELECT s.id, p.id FROM assessment_sessions s LEFT JOIN profiles p ON p.session_id = s.id"
        " WHERE s.status = 'completed' AND s.completed_at >= now() - make_interval(hours => %s)",
        [hours],
        "all",
    )
    return len(rows), sum(1 for _, pid in rows if pid is not None)


def test_metrics_on_seeded_data_equal_independent_figures():
    now = timezone.now()
    seed_demo(seed=5, now=now, force=True)
    for window, hours in (("24h", 24), ("7d", 168), ("30d", 720)):
        figures = health.compute(window, now=timezone.now())
        completed, converted = _independent_conversion(hours)
        assert (figures["completed"], figures["converted"]) == (completed, converted), window
    # The incident: nothing completed in the last 20 days has a profile.
    assert health.compute("7d")["conversion"] == 0.0
    month = health.compute("30d")
    assert month["profiles_per_version"] == {"v1.2.0": 131}
    series = health.conversion_series(now - timedelta(days=60), now, "day")
    assert (
        sum(d["completed"] for d in series)
        == pipeline_sql(
            "SELECT count(*) FROM assessment_sessions WHERE status = 'completed' AND completed_at >= %s",
            [now - timedelta(days=60)],
            "one",
        )[0]
    )
    assert all(
        d["orphans"] == d["completed"] for d in series if d["bucket"] >= now - timedelta(days=20)
    )


def test_attempt_figures_fallback_and_write_errors():
    load_reference_data()
    sids = [make_session(seed=i) for i in range(3)]
    for sid in sids:  # the incident: RLS refuses, FC empty -> fallback recorded
        session_finalize(session_id=sid)
    figures = health.attempt_figures(timezone.now() - timedelta(hours=1), timezone.now())
    assert figures["attempts"] == 3 and figures["fallback"] == 3 and figures["fallback_rate"] == 1.0
    assert figures["write_errors"] == [
        {"sqlstate": "42501", "constraint_name": "", "reason": "rls", "n": 3}
    ]
    assert figures["fc_success_rate"] is None


def _snapshot_hours_ago(hours, rate):
    MetricSnapshot.objects.create(
        taken_at=timezone.now() - timedelta(hours=hours),
        window="24h",
        figures={"alert_conversion": rate},
    )


@override_settings(ALERT_WEBHOOK_URL="", ALERT_EMAILS=["oncall@example.org"], ALERT_MIN_SESSIONS=3)
def test_alerts_fire_once_and_resolve_on_their_own():
    load_reference_data()
    sids = [
        make_session(seed=i, completed_at=timezone.now() - timedelta(hours=2)) for i in range(4)
    ]
    for sid in sids:
        session_finalize(session_id=sid)  # RLS: write errors, fallback
    _snapshot_hours_ago(1, 0.0)
    first = health_services.health_check_run()
    assert set(first["opened"]) == {
        "conversion_page",
        "conversion_low",
        "fc_fallback",
        "write_errors",
        "fresh_orphans",  # completed 2 h ago, more than ORPHAN_ALERT_MINUTES, no profile
    }
    assert len(mail.outbox) == 5
    second = health_services.health_check_run()
    assert second == {"opened": [], "resolved": []}  # deduplicated: no new alert, no new mail
    assert Alert.objects.filter(state="open").count() == 5 and len(mail.outbox) == 5
    # The fix: the write path clears, the sessions are finalized, old attempts age out.
    pipeline_sql("ALTER ROLE service_role BYPASSRLS")
    relax_checks()
    FinalizeAttempt.objects.update(started_at=timezone.now() - timedelta(days=2))
    for sid in sids:
        assert session_finalize(session_id=sid).outcome == "created"
    third = health_services.health_check_run()
    assert set(third["resolved"]) == {
        "conversion_page",
        "conversion_low",
        "write_errors",
        "fresh_orphans",
    }
    assert "fc_fallback" not in third["resolved"]  # FC is still empty: fallback stays high
    assert Alert.objects.get(rule="write_errors").resolved_at is not None
    assert len(mail.outbox) == 9


def test_version_override_and_legacy_fc_rules():
    load_reference_data()
    sid = make_session()
    pipeline_sql(
        "INSERT INTO profiles (session_id, results_version, overlay_neuro) VALUES (%s, 'v1.2.0', '0')",
        [sid],
    )
    pipeline_sql(
        "INSERT INTO fc_scores (session_id, version, fc_kind, scores_json, blocks_answered)"
        " VALUES (%s, 'v1.1', 'types', '{}', 1)",
        [sid],
    )
    rules = {r.rule: r for r in health.evaluate()}
    assert rules["version_override"].firing and rules["version_override"].severity == "critical"
    assert rules["legacy_fc"].firing and rules["legacy_fc"].severity == "high"


class _Hook(BaseHTTPRequestHandler):
    received: list = []
    fail_first = 0

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        cls = type(self)
        if cls.fail_first > 0:
            cls.fail_first -= 1
            self.send_response(503)
            self.end_headers()
            return
        cls.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hook():
    _Hook.received, _Hook.fail_first = [], 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_webhook_reaches_a_loopback_server_and_failures_are_retried_and_recorded(hook):
    _server, url = hook
    alert = Alert.objects.create(
        rule="write_errors",
        severity="high",
        message="42501 rls ×3",
        first_seen=timezone.now(),
        last_seen=timezone.now(),
    )
    _Hook.fail_first = 1
    with override_settings(
        ALERT_WEBHOOK_URL=url, ALERT_WEBHOOK_RETRIES=2, ALERT_WEBHOOK_BACKOFF=0.01, ALERT_EMAILS=[]
    ):
        health_services.alert_notify(alert, "firing")
    alert.refresh_from_db()
    assert (
        alert.notify_attempts == 2
        and alert.notified_at is not None
        and alert.last_notify_error == ""
    )
    assert _Hook.received[0]["rule"] == "write_errors" and "[HIGH]" in _Hook.received[0]["text"]
    _Hook.fail_first = 10
    with override_settings(
        ALERT_WEBHOOK_URL=url, ALERT_WEBHOOK_RETRIES=2, ALERT_WEBHOOK_BACKOFF=0.01, ALERT_EMAILS=[]
    ):
        health_services.alert_notify(alert, "resolved")
    alert.refresh_from_db()
    assert alert.notify_attempts == 5  # 2 + the 3 tries urllib3's Retry made
    assert "HTTP 503 after 3 tries" in alert.last_notify_error


def test_metrics_endpoint_needs_the_token(client):
    load_reference_data()
    with override_settings(METRICS_TOKEN=Secret("s3cret-token")):
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
        resp = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token")
        assert resp.status_code == 200
        body = resp.content.decode()
        assert (
            "# TYPE prism_conversion_ratio gauge" in body
            and 'prism_sessions_completed{window="24h"} 0' in body
        )
    with override_settings(METRICS_TOKEN=Secret("")):
        assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


def test_healthz_reports_databases_and_cluster(client):
    from django.core.management import call_command
    from django_q.models import Schedule

    resp = client.get("/healthz")
    assert resp.status_code == 503 and resp.json()["cluster"].startswith("unknown")
    call_command("setup_schedules")
    resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.json() == {
        "ok": True,
        "portal_db": "ok",
        "pipeline_db": "ok",
        "cluster": "ok",
    }
    Schedule.objects.filter(name="backfill-watchdog").update(
        next_run=timezone.now() - timedelta(hours=1)
    )
    assert client.get("/healthz").json()["cluster"].startswith("stale")


def test_dashboard_renders_svg_with_thresholds_and_orphan_csv(admin_client):
    seed_demo(seed=5, now=timezone.now(), force=True)
    page = admin_client.get(reverse("admin:health"), {"window": "7d"}).content.decode()
    assert page.count('class="chart"') == 4 and "90 % target" in page and "75 % page" in page
    assert 'id="conversion">0 %' in page
    csv_resp = admin_client.get(reverse("admin:remediation_orphanedsession_export"), {"age": "lt1"})
    lines = b"".join(csv_resp.streaming_content).decode().strip().splitlines()
    expected = pipeline_sql(
        "SELECT count(*) FROM assessment_sessions s WHERE status = 'completed'"
        " AND completed_at > now() - interval '1 day'"
        " AND NOT EXISTS (SELECT 1 FROM profiles p WHERE p.session_id = s.id)",
        fetch="one",
    )[0]
    assert lines[0].startswith("session_id,email,completed_at,age_days,age_bucket")
    assert len(lines) - 1 == expected and all(",under 1 day," in line for line in lines[1:])


def test_the_dashboard_reads_a_fresh_snapshot_and_recomputes_on_request(admin_client):
    seed_demo(seed=5, now=timezone.now(), force=True)
    url = reverse("admin:health")
    # A page view never writes: with no snapshot the figures are computed, not stored.
    assert "completed" in admin_client.get(url).content.decode()
    assert MetricSnapshot.objects.count() == 0
    health_services.snapshot_take()
    admin_client.get(url, {"window": "30d"})
    assert MetricSnapshot.objects.count() == 1  # served from the fresh snapshot
    session = pipeline_sql(
        "SELECT id FROM assessment_sessions s WHERE status = 'completed' AND NOT EXISTS"
        " (SELECT 1 FROM profiles p WHERE p.session_id = s.id) ORDER BY completed_at DESC LIMIT 1",
        fetch="one",
    )[0]
    pipeline_sql(
        "INSERT INTO profiles (session_id, results_version) VALUES (%s, 'v1.2.1')", [session]
    )
    page = admin_client.post(url + "?window=24h", follow=True).content.decode()
    assert MetricSnapshot.objects.count() == 2
    completed, converted = _independent_conversion(24)
    assert converted == 1 and f"{converted} of {completed} completed" in page


def test_write_errors_alert_only_while_errors_are_recent():
    load_reference_data()
    sid = make_session()
    attempt = session_finalize(session_id=sid)  # RLS refuses: a write error
    assert attempt.sqlstate == "42501"
    rules = {r.rule: r for r in health.evaluate()}
    assert (
        rules["write_errors"].firing
        and "insufficient privilege (42501) rls ×1" in rules["write_errors"].message
    )
    FinalizeAttempt.objects.filter(pk=attempt.pk).update(
        started_at=timezone.now() - timedelta(minutes=90)
    )
    with override_settings(ALERT_ERRORS_WINDOW_MINUTES=60):
        assert not {r.rule: r for r in health.evaluate()}["write_errors"].firing
    with override_settings(ALERT_ERRORS_WINDOW_MINUTES=120):
        assert {r.rule: r for r in health.evaluate()}["write_errors"].firing
