"""The confirmation pages in a browser: a fix's page then apply; a run rollback's count and
sample then confirm; the refused "Roll back Fix D" leaving every fix as it was, and the
banner saying what happened to each one."""

from __future__ import annotations

import pytest

from remediation import jobs
from remediation.dev.emulation import load_emulated_schema
from remediation.fixes import executor
from remediation.fixes.forms import FORMS
from remediation.models import AuditEvent, BackfillRun
from tests.e2e.conftest import screenshot
from tests.factories import (
    clear_write_path,
    load_reference_data,
    make_session,
    pipeline_sql,
    restore_checks,
    set_fixes,
)
from tests.remediation.admin.test_confirm_pages import pipeline_state

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(databases="__all__", transaction=True)]


@pytest.fixture
def fixes_cleaned(pipeline_db):
    yield
    pipeline_sql("DELETE FROM profiles")
    set_fixes("0004")
    pipeline_sql("DROP TRIGGER IF EXISTS update_fc_metrics_trigger ON profiles")
    restore_checks()
    pipeline_sql("DROP SCHEMA IF EXISTS opsportal CASCADE")


def test_fix_a_confirmation_page_then_apply(fixes_cleaned, admin_login, page):
    load_reference_data()
    admin_login("/admin/runbook/")
    page.check("#fix-a-form-strict")
    page.click("#apply-fix-a")
    page.wait_for_selector("#confirm-forms")
    # The strict form chosen on the runbook page is checked here, its SQL shown; nothing done.
    assert page.is_checked("#confirm-form-strict")
    strict = page.inner_text(".confirm-form-choice[data-form=strict] pre")
    assert FORMS["strict"].sql.rstrip(";") in strict
    assert executor.applied() == set()
    screenshot(page, "confirm-fix-a")
    page.click("#confirm-yes")
    page.wait_for_selector("ul.messagelist li.success")
    banner = page.inner_text("ul.messagelist li.success")
    assert "Fix A applied now" in banner and "Fix D not applied (unchanged)" in banner
    assert page.inner_text("#fix-a-state") == "applied"
    assert "strict" in page.inner_text("#fix-a-form")
    assert executor.applied_form() == "strict"


def test_run_rollback_confirmation_shows_count_and_sample_then_confirm(
    pipeline_db, admin_login, page
):
    load_reference_data()
    with clear_write_path():
        ids = [make_session(seed=i) for i in range(25)]
        run = jobs.run_until_done(
            jobs.backfill_start(selection="ids", ids=ids, enqueue=False, batch_size=10).pk
        )
    admin_login(f"/admin/remediation/backfillrun/{run.pk}/change/")
    page.click("#run-rollback")
    page.wait_for_selector("#rollback-count")
    assert page.inner_text("#rollback-count") == "25"
    sample = page.locator("#rollback-sample tbody tr")
    assert sample.count() == 20
    assert sample.first.locator("a").inner_text() == ids[0]
    assert "25 rows" in page.inner_text("#rollback-csv")
    assert not BackfillRun.objects.filter(kind="rollback").exists()
    screenshot(page, "confirm-run-rollback")
    with page.expect_navigation():
        page.click("#confirm-yes")
    rollback = BackfillRun.objects.get(kind="rollback", source_run=run)
    assert page.url.endswith(f"/backfillrun/{rollback.pk}/change/")
    assert rollback.estimated_total == 25
    assert AuditEvent.objects.filter(action="backfill.rollback").count() == 1
    # Once it ran: the backfill says it was rolled back, and a session's page shows its
    # profile's history instead of a "profile created" link to a profile that is gone.
    assert jobs.run_until_done(rollback.pk).state == "succeeded"
    admin_login(f"/admin/remediation/backfillrun/{run.pk}/change/")
    assert f"rolled back by run #{rollback.pk}" in page.inner_text("#run-rolled-back")
    admin_login(f"/admin/remediation/assessmentsession/{ids[0]}/change/")
    history = page.inner_text("#profile-history")
    assert "profile created by Backfill" in history and "rolled back" in history
    assert page.inner_text("#profile-now") == "now: no profile"
    assert "+00:00" not in history


def test_refused_rollback_of_fix_d_leaves_everything_and_says_so_for_each_fix(
    fixes_cleaned, admin_login, page
):
    load_emulated_schema(service_role_bypassrls=False, fc_metrics_trigger=True)
    load_reference_data()
    set_fixes("0008")  # A, D and E applied, as after the incident's fixes
    sid = make_session(seed=1)
    pipeline_sql(  # a profile written since that the old CHECK rejects
        "INSERT INTO profiles (session_id, overlay_neuro, overlay_state, fc_coverage_bucket)"
        " VALUES (%s, 'none', '0', 'None')",
        [sid],
    )
    before = pipeline_state()
    admin_login("/admin/runbook/")
    page.click("#rollback-fix-d")
    page.wait_for_selector("#confirm-blocking")
    assert "would be refused" in page.inner_text("#content-main")
    assert pipeline_state() == before
    page.click("#confirm-yes")
    page.wait_for_selector("ul.messagelist li.error")
    banner = page.inner_text("ul.messagelist li.error")
    assert "Fix D rollback refused; nothing was changed." in banner
    assert (
        "Now: Fix A applied (unchanged), Fix D applied (unchanged), Fix E applied (unchanged)."
        in banner
    )
    screenshot(page, "confirm-fix-d-refused")
    after = pipeline_state()
    assert {k: v for k, v in after.items() if k != "portal"} == {
        k: v for k, v in before.items() if k != "portal"
    }
    assert executor.applied() == {"A", "D", "E"}
    # The page still offers to roll back each fix: all three are applied.
    for fix in ("a", "d", "e"):
        assert page.locator(f"#rollback-fix-{fix}").count() == 1
