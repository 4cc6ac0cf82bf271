"""Readable pages (issue 17, point 6, and point 8's links): the banner of every admin page
(open alerts by severity, the maintenance gate, an unreachable pipeline), one date-time
format with its time zone, durations, codes and SQLSTATEs in words, plurals, conversion as
it was measured beside conversion now, and an index without links that lead to a 403."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connections
from django.template.loader import render_to_string
from django.test import RequestFactory, override_settings
from django.urls import reverse
from django.utils import timezone

from remediation import jobs
from remediation.models import Alert, FinalizeAttempt, MetricSnapshot
from remediation.selectors.health import fresh_orphans_message
from remediation.services import session_diagnose, session_finalize
from remediation.services.gates import maintenance_set
from remediation.services.health import snapshot_take
from tests.factories import clear_write_path, load_reference_data, make_session
from tests.remediation.test_locked_tables import table_locked

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)

RAW_DATETIME = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d\.\d+")  # str(datetime), isoformat
SHOWN_DATETIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [A-Z]{3,4}\b")


def open_alert(rule: str, severity: str, *, state: str = "open", at: datetime | None = None):
    at = at or timezone.now()
    return Alert.objects.create(
        rule=rule,
        severity=severity,
        state=state,
        message=f"{rule} fires",
        first_seen=at,
        last_seen=at,
    )


def banner(html: str) -> str:
    match = re.search(r'<div id="ops-banner".*?</div>', html, re.S)
    return re.sub(r"\s+", " ", match.group(0)) if match else ""


@pytest.fixture
def reference(pipeline_db):
    """The reference data (scoring_config with system_status "ok") and one orphan."""
    load_reference_data()
    return make_session()


def test_open_alerts_are_on_every_admin_page_by_severity(reference, admin_client):
    open_alert("write_errors", "high")
    open_alert("conversion_page", "page")
    open_alert("fresh_orphans", "high")
    open_alert("version_override", "critical", state="resolved")
    pages = [
        reverse("admin:index"),
        reverse("admin:remediation_orphanedsession_changelist"),
        reverse("admin:health"),
        reverse("admin:remediation_backfillrun_changelist"),
        reverse("admin:remediation_assessmentsession_change", args=[reference]),
        reverse("admin:runbook"),
    ]
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        text = banner(response.content.decode())
        assert "3 open alerts:" in text, url
        # Most severe first; the resolved critical one is not counted.
        assert text.index("page: 1") < text.index("high: 2"), url
        assert "critical" not in text and "Maintenance" not in text, url
    # Each severity links to exactly its open alerts.
    link = re.search(r'href="([^"]*severity__exact=high)"', text).group(1).replace("&amp;", "&")
    listed = admin_client.get(link).content.decode()
    rows = re.search(r'<table id="result_list".*?</table>', listed, re.S).group(0)
    assert "2 alerts" in listed and "write errors" in rows and "fresh orphans" in rows
    assert "conversion page" not in rows


def test_no_banner_while_nothing_is_open_and_none_for_the_login_page(
    reference, client, admin_client
):
    open_alert("write_errors", "high", state="resolved")
    assert 'id="ops-banner"' not in admin_client.get(reverse("admin:index")).content.decode()
    open_alert("conversion_page", "page")
    assert 'id="ops-banner"' not in client.get(reverse("admin:login")).content.decode()


def test_maintenance_mode_is_on_every_admin_page_until_switched_off(reference, admin_client):
    maintenance_set(on=True, message="IR-07 fix window", actor="eve")
    for url in (reverse("admin:index"), reverse("admin:remediation_alert_changelist")):
        text = banner(admin_client.get(url).content.decode())
        assert "Maintenance: finalize and backfill are paused" in text
        assert "“maintenance”: IR-07 fix window; set by eve at" in text
        assert SHOWN_DATETIME.search(text) and not RAW_DATETIME.search(text)
        assert 'href="/admin/runbook/"' in text
    maintenance_set(on=False, actor="eve")
    assert 'id="ops-banner"' not in admin_client.get(reverse("admin:index")).content.decode()


def test_a_locked_gate_shows_pipeline_unreachable_instead_of_failing_the_page(
    reference, admin_client
):
    open_alert("write_errors", "high")
    with table_locked("scoring_config"):
        started = time.monotonic()
        response = admin_client.get(reverse("admin:index"))
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    text = banner(response.content.decode())
    assert "Pipeline unreachable: the maintenance gate could not be read" in text
    assert "1 open alert:" in text  # the portal's own reads still answer
    assert elapsed < 3  # the banner's own bound (300 ms lock wait), not the page's 5 s


def test_a_pipeline_that_is_down_shows_pipeline_unreachable(reference, admin_client):
    conn = connections["pipeline"]
    host = conn.settings_dict["HOST"]
    conn.close()
    conn.settings_dict["HOST"] = "/nonexistent-socket-dir"
    try:
        response = admin_client.get(reverse("admin:remediation_alert_changelist"))
    finally:
        conn.close()
        conn.settings_dict["HOST"] = host
    assert response.status_code == 200
    assert "Pipeline unreachable" in banner(response.content.decode())
    assert "OperationalError" in banner(response.content.decode())


def test_messages_are_shown_as_written_never_capitalised():
    request = RequestFactory().get("/admin/")
    html = render_to_string(
        "admin/base_site.html",
        {"messages": ["c616ca6c-4d1e-4b7f-9a51-0d3c0e0e0e0e: FC recomputed"]},
        request=request,
    )
    assert "c616ca6c-4d1e-4b7f-9a51-0d3c0e0e0e0e: FC recomputed" in html
    assert "C616ca6c" not in html


def test_one_date_format_with_the_time_zone_named_on_the_page(reference, admin_client):
    at = datetime(2026, 12, 1, 9, 38, 24, 54034, tzinfo=UTC)
    open_alert("write_errors", "high", at=at)
    session_diagnose(session_id=reference)
    alerts = admin_client.get(reverse("admin:remediation_alert_changelist")).content.decode()
    assert "2026-12-01 09:38:24 UTC" in alerts and "a.m." not in alerts
    assert "Times are shown in UTC (the TIME_ZONE setting)." in alerts
    page = admin_client.get(
        reverse("admin:remediation_assessmentsession_change", args=[reference])
    ).content.decode()
    diagnosed = re.search(r"\(diagnosed ([^)]*)\)", page).group(1)
    assert SHOWN_DATETIME.fullmatch(diagnosed), diagnosed
    assert not RAW_DATETIME.search(page)
    assert "rls: insufficient privilege (42501)" in page
    with override_settings(TIME_ZONE="Europe/Berlin"):
        alerts = admin_client.get(reverse("admin:remediation_alert_changelist")).content.decode()
    assert "2026-12-01 10:38:24 CET" in alerts
    assert "Times are shown in Europe/Berlin" in alerts


def test_attempts_show_durations_and_codes_in_words_and_link_the_session(reference, admin_client):
    attempt = FinalizeAttempt.objects.create(
        session_id=reference,
        backend="local",
        started_at=timezone.now(),
        outcome="failed",
        reason="would_succeed",
        sqlstate="42501",
        duration_ms=16.207053000016458,
    )
    listed = admin_client.get(reverse("admin:remediation_finalizeattempt_changelist"))
    page = admin_client.get(
        reverse("admin:remediation_finalizeattempt_change", args=[attempt.pk])
    ).content.decode()
    # The list's filters name the codes in words and still filter by the code.
    assert re.search(
        r'<a href="\?sqlstate=42501">\s*insufficient privilege \(42501\)', listed.content.decode()
    )
    for html in (listed.content.decode(), page):
        assert "16 ms" in html and "16.207" not in html and "Duration ms" not in html
        assert "insufficient privilege (42501)" in html and "would succeed" in html
        session_url = reverse("admin:remediation_assessmentsession_change", args=[reference])
        assert f'<a href="{session_url}">{reference}</a>' in html


def test_a_run_page_names_its_selection_in_words(reference, admin_client, admin_user):
    run = jobs.backfill_start(selection="ids", ids=[reference], enqueue=False, actor=admin_user)
    page = admin_client.get(
        reverse("admin:remediation_backfillrun_change", args=[run.pk])
    ).content.decode()
    assert "explicit session ids (1 explicit id)" in page
    assert "{&#x27;ids&#x27;" not in page and "{'ids'" not in page
    # The figures are live (data-live spans the progress script fills in).
    assert re.sub(r"<[^>]+>", "", page).count("0 of 1 session,") == 1


def test_counts_in_messages_take_the_right_plural(reference, admin_client):
    assert "1 session completed more than" in fresh_orphans_message(1, timezone.now())
    assert "has no profile" in fresh_orphans_message(1, timezone.now())
    assert "2 sessions completed more than" in fresh_orphans_message(2, timezone.now())
    alert = open_alert("write_errors", "high")
    response = admin_client.post(
        reverse("admin:remediation_alert_changelist"),
        {"action": "acknowledge", "_selected_action": [alert.pk]},
        follow=True,
    )
    assert "1 alert acknowledged." in response.content.decode()


def test_health_keeps_a_recovered_outage_visible(reference, admin_client):
    """A day whose sessions were orphans when the first snapshot after it was taken, all
    converted since: the chart shows both figures and the outage table lists the day."""
    completed = (timezone.now() - timedelta(days=3)).replace(hour=12, minute=0)
    orphan = make_session(seed=5, completed_at=completed)
    snapshot_take(completed + timedelta(days=1))  # the first snapshot after that day ended
    with clear_write_path():
        assert session_finalize(session_id=orphan).outcome == "created"
    page = admin_client.get(reverse("admin:health")).content.decode()
    label = completed.strftime("%m-%d")
    assert f"<title>{label} as measured then: 0.0%</title>" in page
    assert f"<title>{label} conversion now: 100.0%</title>" in page
    assert f"<title>{label}: 0.0% as measured then, 100.0% conversion now</title>" in page
    row = re.search(r'<table id="outage-days">.*?</table>', page, re.S).group(0)
    assert f"<td>{completed:%Y-%m-%d} (1 day)</td>" in row
    assert "<td>0 % (0 of 1)</td>" in row and "<td>100 % (1 of 1)</td>" in row
    assert (completed + timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S UTC") in row


def test_empty_charts_and_lists_say_why(pipeline_db, admin_client):
    load_reference_data()
    MetricSnapshot.objects.all().delete()
    page = admin_client.get(reverse("admin:health")).content.decode()
    assert "No session completed in the last 30 days: nothing to convert." in page
    assert "No session completed in the last 48 hours: nothing to convert." in page
    assert "No finalize with FC in the window." in page
    assert "None: no alert rule was firing at the last scheduled health check" in page
    assert "None: no stored snapshot measured a day" in page


def _index_links(html: str) -> list[str]:
    """Every link of the admin index a person can follow (the logout is a POST form)."""
    main = html[html.index('id="content-main"') :]
    header = html[: html.index('id="content-main"')]
    hrefs = re.findall(r'href="(/[^"#]*)"', header + main)
    return sorted({h.replace("&amp;", "&") for h in hrefs if not h.startswith("/static/")})


@pytest.mark.parametrize(
    ("group", "operations"),
    [
        (None, []),
        (
            "Viewer",
            [
                "Orphaned sessions",
                "Pipeline health",
                "Incident timeline",
                "IR-07 runbook",
                "Backfill runs",
            ],
        ),
        (
            "Engineer",
            [
                "Orphaned sessions",
                "Pipeline health",
                "Incident timeline",
                "IR-07 runbook",
                "Backfill runs",
            ],
        ),
    ],
)
def test_every_link_on_the_index_answers_for_each_role(
    reference, client, member, group, operations
):
    client.force_login(member("staffer", group))
    html = client.get(reverse("admin:index")).content.decode()
    box = re.search(r'<div class="module" id="operations">.*?</table>', html, re.S)
    shown = re.findall(r'<th scope="row"><a href="[^"]*">([^<]*)</a>', box.group(0)) if box else []
    assert shown == operations
    if not operations:
        assert 'id="no-operations"' in html
    links = _index_links(html)
    assert links, "the index has links (password change, view site)"
    for url in links:
        assert client.get(url, follow=True).status_code == 200, url


def test_audit_targets_that_are_runs_or_sessions_are_links(reference, admin_client, admin_user):
    from remediation.services import audit_record

    run = jobs.backfill_start(selection="ids", ids=[reference], enqueue=False, actor=admin_user)
    audit_record("eve", "fc.load", target="v1.2", outcome="ok")
    audit_record("eve", "session.finalize", target=reference, outcome="failed")
    page = admin_client.get(reverse("admin:remediation_auditevent_changelist")).content.decode()
    run_url = reverse("admin:remediation_backfillrun_change", args=[run.pk])
    session_url = reverse("admin:remediation_assessmentsession_change", args=[reference])
    assert f'<a href="{run_url}">run #{run.pk}</a>' in page
    assert f'<a href="{session_url}">{reference}</a>' in page
    assert ">v1.2<" in page
