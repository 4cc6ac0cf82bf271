"""A support engineer logs in, finds the incident and opens a session's page."""

from __future__ import annotations

import pytest
from django.db import connections
from django.utils import timezone

from remediation.dev.demo import INCIDENT_SESSION_ID, seed_demo
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(databases="__all__", transaction=True)]


def test_login_see_orphans_and_open_a_session(pipeline_db, admin_login, page):
    stats = seed_demo(seed=3, now=timezone.now(), force=True)
    admin_login("/admin/remediation/orphanedsession/")
    assert page.locator("#result_list tbody tr").count() == min(stats.orphans, 100)
    assert f"{stats.orphans} orphaned sessions" in page.content()
    # Search for the plan's test session and open it.
    page.fill("#searchbar", INCIDENT_SESSION_ID)
    page.press("#searchbar", "Enter")
    page.wait_for_load_state()
    page.click(f"#result_list tbody tr:has-text('{INCIDENT_SESSION_ID}') >> text=open")
    page.wait_for_selector("table.pipeline-state")
    text = page.inner_text("table.pipeline-state")
    assert "none: orphaned" in text
    with connections["pipeline"].cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM assessment_responses WHERE session_id = %s", [INCIDENT_SESSION_ID]
        )
        answers = cur.fetchone()[0]
    assert f"Answers\t{answers}" in text or f"Answers {answers}" in text
    screenshot(page, "session-page")
