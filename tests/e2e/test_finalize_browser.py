"""A support engineer reads why a session has no profile, finalizes it, sees the results link."""

from __future__ import annotations

import pytest

from remediation.models import FinalizeAttempt
from tests.e2e.conftest import screenshot
from tests.factories import clear_write_path, load_reference_data, make_session

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(databases="__all__", transaction=True)]


def test_finalize_from_the_session_page(pipeline_db, admin_login, page):
    load_reference_data()
    sid = make_session(seed=77)
    # First, as in the incident: RLS blocks the write, and the page says so.
    admin_login(f"/admin/remediation/assessmentsession/{sid}/change/")
    # The page shows the stored diagnosis; diagnosing is a button (a POST).
    assert "not diagnosed yet" in page.inner_text(".field-why_no_profile")
    with page.expect_navigation():
        page.click("#diagnose-now")
    assert "rls: insufficient privilege (42501)" in page.inner_text(".diagnosis")
    with clear_write_path():
        with page.expect_navigation():
            page.click("#diagnose-now")
        assert "would succeed" in page.inner_text(".diagnosis")
        page.click("a.finalize-link")
        page.wait_for_selector("#confirm-finalize")
        page.check("input[name=backend][value=local]")
        page.click("#confirm-finalize")
        page.wait_for_selector("ul.messagelist li.success")
        message = page.inner_text("ul.messagelist li.success")
        attempt = FinalizeAttempt.objects.get(session_id=sid, outcome="created")
        assert attempt.type_code in message
        link = page.locator(f"ul.messagelist a[href='{attempt.results_url}']")
        assert link.count() == 1
        assert "profile created" in page.inner_text("table.attempts")
        screenshot(page, "finalized-session")
