"""In the browser (issue 17, points 3 and 5): pasted comma-separated ids all reach the
confirmation page, unknown and malformed ids are listed with nothing started, a reversed
date range says so, and the edge backend is an engineer's, with its warnings."""

from __future__ import annotations

import uuid

import pytest

from remediation.models import BackfillRun, FinalizeAttempt
from tests.e2e.conftest import screenshot
from tests.factories import load_reference_data, make_session

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(databases="__all__", transaction=True)]


@pytest.fixture
def orphans(pipeline_db):
    load_reference_data()
    return [make_session(seed=i) for i in range(4)]


def _login(browser, live_server, user):
    """A page of a fresh browser context, logged in through the form as `user`."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", "pw-123456789")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    return page


def test_pasted_comma_separated_ids_reach_the_confirmation_and_bad_ones_are_listed(
    orphans, admin_login, page
):
    admin_login("/admin/remediation/backfillrun/add/")
    page.fill("#id_ids", ",".join(orphans))
    page.click("#check-backfill")
    page.wait_for_selector("#start-backfill")
    assert page.inner_text("#backfill-count") == "4"
    assert page.locator(".backfill-confirm table tbody tr").count() == 4
    assert not BackfillRun.objects.exists()  # nothing starts before the confirmation
    screenshot(page, "backfill-add-confirm")
    admin_login("/admin/remediation/backfillrun/add/")
    unknown = str(uuid.UUID(int=5))
    page.fill("#id_ids", f"{orphans[0]}, {unknown}; bogus")
    page.click("#check-backfill")
    errors = page.inner_text("ul.errorlist")
    assert "2 of the ids cannot be used; nothing was started" in errors
    assert f"line 1: {unknown} is not a session in the pipeline database" in errors
    assert "line 1: 'bogus' is not a session id" in errors
    assert page.input_value("#id_ids") == f"{orphans[0]}, {unknown}; bogus"  # kept as typed
    assert not BackfillRun.objects.exists()


def test_a_reversed_date_range_says_what_is_wrong(orphans, admin_login, page):
    admin_login("/admin/remediation/orphanedsession/")
    page.fill("input[name=completed_at__from]", "2026-12-05")
    page.fill("input[name=completed_at__to]", "2026-12-01")
    with page.expect_navigation():
        page.click(".date-range-filter input[type=submit]")
    message = page.inner_text("ul.messagelist")
    assert "date range is reversed: from 2026-12-05 is after to 2026-12-01" in message
    assert page.locator(".date-range-reversed").count() == 1


def test_the_edge_backend_is_an_engineers_with_its_warnings(
    orphans, browser, live_server, support, engineer
):
    sid = orphans[0]
    finalize = f"{live_server.url}/admin/remediation/assessmentsession/{sid}/finalize/"
    as_support = _login(browser, live_server, support)
    as_support.goto(finalize)
    as_support.wait_for_selector("#confirm-finalize")
    assert as_support.locator("input[name=backend][value=edge]").count() == 0
    assert as_support.locator("#edge-backend-note").count() == 0
    as_support.context.close()

    as_engineer = _login(browser, live_server, engineer)
    as_engineer.goto(finalize)
    note = as_engineer.inner_text("#edge-backend-note")
    assert "re-scores the session on every call" in note and "completed_at" in note
    as_engineer.check("input[name=backend][value=edge]")
    with as_engineer.expect_navigation():
        as_engineer.click("#confirm-finalize")
    # The fresh diagnosis (RLS refuses the write) predicts a failure: asked again.
    warning = as_engineer.inner_text("#edge-warning")
    assert "predicts the write will fail for 1 of 1 session checked" in warning
    assert "rls [42501]" in warning and "write no profile" in warning
    assert as_engineer.locator("#confirm-edge-anyway").count() == 1
    screenshot(as_engineer, "edge-second-confirmation")
    with as_engineer.expect_navigation():
        as_engineer.click("a.cancel-link")  # "No, take me back": nothing was called
    assert not FinalizeAttempt.objects.exists()
    as_engineer.context.close()
