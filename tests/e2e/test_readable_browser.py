"""Readable pages in the browser (issue 17, points 6 and 8): the banner of every admin page
for open alerts and maintenance, one date format with its time zone, and an index whose
every link a staff member without a group can follow."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from remediation.models import Alert
from remediation.services.gates import maintenance_set
from tests.e2e.conftest import screenshot
from tests.factories import load_reference_data, make_session

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(databases="__all__", transaction=True)]

RAW_DATETIME = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d\.\d+")


def alert(rule: str, severity: str, at: datetime | None = None) -> Alert:
    at = at or timezone.now()
    return Alert.objects.create(
        rule=rule, severity=severity, message=f"{rule} fires", first_seen=at, last_seen=at
    )


def test_the_banner_names_open_alerts_and_maintenance_on_every_page(pipeline_db, admin_login, page):
    load_reference_data()
    sid = make_session()
    alert("conversion_page", "page")
    alert("write_errors", "high")
    pages = [
        "/admin/",
        "/admin/remediation/orphanedsession/",
        "/admin/health/",
        f"/admin/remediation/assessmentsession/{sid}/change/",
    ]
    for path in pages:
        admin_login(path)
        text = page.inner_text("#banner-alerts")
        assert "2 open alerts" in text and "page: 1" in text and "high: 1" in text, path
        assert page.locator("#banner-maintenance").count() == 0, path
    # A severity leads to its open alerts.
    with page.expect_navigation():
        page.click("#banner-alerts >> text=high: 1")
    assert "severity__exact=high" in page.url
    assert page.locator("#result_list tbody tr").count() == 1
    maintenance_set(on=True, message="IR-07 fix window", actor="eve")
    for path in pages[:2]:
        admin_login(path)
        text = page.inner_text("#banner-maintenance")
        assert "finalize and backfill are paused" in text and "IR-07 fix window" in text, path
    screenshot(page, "banner")


def test_dates_show_one_format_with_the_time_zone(pipeline_db, admin_login, page):
    load_reference_data()
    alert("write_errors", "high", at=datetime(2026, 12, 1, 9, 38, 24, 54034, tzinfo=UTC))
    admin_login("/admin/remediation/alert/")
    listed = page.inner_text("#result_list")
    assert "2026-12-01 09:38:24 UTC" in listed
    assert "a.m." not in listed and "p.m." not in listed and not RAW_DATETIME.search(listed)
    assert page.inner_text("#time-zone") == "Times are shown in UTC (the TIME_ZONE setting)."


def test_a_staff_member_without_a_group_meets_no_dead_link_on_the_index(
    pipeline_db, page, live_server
):
    load_reference_data()
    User.objects.create_user("newbie", "n@example.org", "newbie-password-123", is_staff=True)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "newbie")
    page.fill("#id_password", "newbie-password-123")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    assert page.locator("#operations").count() == 0
    assert "Viewer, Support or Engineer group" in page.inner_text("#no-operations")
    hrefs = page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
    followable = sorted({h for h in hrefs if h.startswith(live_server.url) and "#" not in h})
    assert followable  # the password change, the site link
    for url in followable:
        response = page.goto(url)
        assert response is not None and response.status == 200, url
