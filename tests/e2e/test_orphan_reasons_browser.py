"""The orphan list's reasons in the browser: stale after a fix, re-diagnosed for the filter
with the progress updating in place, the reason column on screen at 1280 px; the run page
updating in place (no navigation, scroll position kept)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from remediation import jobs
from remediation.fixes import executor
from remediation.models import BackfillRun
from remediation.services import session_diagnose
from tests.e2e.conftest import screenshot
from tests.factories import load_reference_data, make_session

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(databases="__all__", transaction=True)]

ORPHANS = "/admin/remediation/orphanedsession/"


def _reason_texts(page) -> list[str]:
    return page.locator("#result_list td.field-reason").all_inner_texts()


def test_a_fix_marks_reasons_stale_and_re_diagnosis_renews_them(pipeline_db, admin_login, page):
    load_reference_data()
    ids = [make_session(seed=i) for i in range(3)]
    for sid in ids:
        session_diagnose(session_id=sid)  # the emulation: row-level security (42501)
    try:
        admin_login(ORPHANS)
        before = _reason_texts(page)
        assert len(before) == 3 and all("row-level security" in t and "42501" in t for t in before)
        assert page.locator("#result_list .reason-stale").count() == 0

        # Fix A through the runbook's confirmation page.
        page.goto(page.url.split("/admin/")[0] + reverse("admin:runbook_action", args=["apply_a"]))
        page.click("#confirm-yes")
        page.wait_for_selector(".messagelist")
        assert executor.is_applied("A")
        page.goto(page.url.split("/admin/")[0] + ORPHANS)
        stale_rows = page.locator("#result_list tr:has(.reason-stale)")
        # The runbook re-diagnosed its test session (the newest orphan) after the fix: the
        # other two still show what they were told before it, marked stale.
        assert stale_rows.count() == 2
        assert all("Fix A applied" in t for t in stale_rows.all_inner_texts())
        assert page.inner_text("#reasons-note").startswith("On this page: 2 reasons are stale.")

        # Re-diagnose the whole filter: the count first, then the progress above the list.
        page.click("#diagnose-all")
        assert page.inner_text("#diagnose-total") == "3"
        page.click("#confirm-yes")
        page.wait_for_selector("#diagnosis-progress")
        page.evaluate("window.__stayed = 'on this page'")
        assert page.inner_text("#diagnosis-processed") == "0"
        run = BackfillRun.objects.get(kind="diagnosis")
        jobs.run_until_done(run.pk)
        page.wait_for_selector("#diagnosis-ended:not([hidden])", timeout=10_000)
        assert page.inner_text("#diagnosis-processed") == "3"
        assert page.evaluate("window.__stayed") == "on this page"  # updated in place
        page.click("#diagnosis-ended a")
        page.wait_for_selector("#result_list")
        after = _reason_texts(page)
        assert page.locator("#result_list .reason-stale").count() == 0
        assert page.locator("#reasons-note").count() == 0
        assert len(after) == 3 and not any("row-level security" in t for t in after)
        screenshot(page, "orphans-re-diagnosed")
    finally:
        executor.run("A", reverse=True)


def test_the_reason_column_is_on_screen_at_1280_px(pipeline_db, browser, live_server, admin_login):
    load_reference_data()
    for i in range(3):
        session_diagnose(session_id=make_session(seed=i))
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.goto(f"{live_server.url}/admin/login/?next={ORPHANS}")
        page.fill("#id_username", "e2e")
        page.fill("#id_password", "e2e-password-123")
        page.click("input[type=submit]")
        page.wait_for_selector("#result_list")
        # Within the window and within the list's own scroll box (it scrolls sideways).
        visible = page.locator("#changelist .results").bounding_box()
        right = min(1280, visible["x"] + visible["width"])
        for cell in (
            page.locator("#result_list th.column-reason"),
            page.locator("#result_list td.field-reason").first,
        ):
            box = cell.bounding_box()
            assert box is not None and box["x"] >= visible["x"], box
            assert box["x"] + box["width"] <= right, (box, visible)
        screenshot(page, "orphans-1280")
    finally:
        context.close()


def test_the_run_page_updates_in_place(pipeline_db, admin_login, page):
    load_reference_data()
    ids = [make_session(seed=i) for i in range(6)]
    run = jobs.diagnosis_start(session_ids=ids, enqueue=False, batch_size=2)
    page.set_viewport_size({"width": 1280, "height": 260})
    admin_login(reverse("admin:remediation_backfillrun_change", args=[run.pk]))
    assert page.inner_text("#run-processed") == "0"
    page.evaluate(
        "window.__stayed = 'on this page'; window.scrollTo(0, document.body.scrollHeight)"
    )
    scrolled = page.evaluate("window.scrollY")
    assert scrolled > 0

    run.refresh_from_db()
    assert jobs.process_batch(run.pk, run.batch_token, enqueue_next=False) == "next"
    expect(page.locator("#run-processed")).to_have_text("2", timeout=10_000)
    assert page.evaluate("window.__stayed") == "on this page"
    assert page.evaluate("window.scrollY") == scrolled

    jobs.run_until_done(run.pk)
    page.wait_for_selector(".backfill-run[data-state=succeeded]", timeout=10_000)
    assert page.inner_text("#run-processed") == "6" and page.inner_text("#run-percent") == "100.0%"
    assert page.evaluate("window.__stayed") == "on this page"
    assert page.evaluate("window.scrollY") == scrolled


def test_the_run_page_says_when_live_updates_stop(pipeline_db, admin_login, page):
    load_reference_data()
    run = jobs.diagnosis_start(session_ids=[make_session(seed=1)], enqueue=False)
    admin_login(reverse("admin:remediation_backfillrun_change", args=[run.pk]))
    BackfillRun.objects.filter(pk=run.pk).delete()  # the endpoint now answers 404
    note = page.locator(".backfill-run [data-live-stopped]")
    expect(note).to_be_visible(timeout=10_000)
    assert "live updates stopped (HTTP 404)" in note.inner_text()
