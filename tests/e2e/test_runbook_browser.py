"""An engineer runs the IR-07 checks, applies Fix A, runs them again and compares."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import screenshot
from tests.factories import load_reference_data, make_session, pipeline_sql

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(databases="__all__", transaction=True)]


@pytest.fixture
def clean_fix_a(pipeline_db):
    yield
    pipeline_sql('DROP POLICY IF EXISTS "Service role can manage profiles" ON public.profiles')
    pipeline_sql("DROP SCHEMA IF EXISTS opsportal CASCADE")


def _status(page, key):
    return page.inner_text(f"#checks-table tr[data-key={key}] td:first-child")


def test_checks_before_and_after_fix_a(clean_fix_a, admin_login, page):
    load_reference_data()
    make_session()
    admin_login("/admin/runbook/")
    page.fill("input[name=label]", "before Fix A")
    page.click("#run-checks")
    page.wait_for_selector("#checks-table")
    assert _status(page, "policy_count") == "PASS"
    assert _status(page, "check_constraints") == "FAIL"
    assert page.inner_text("#fix-a-state") == "not applied"
    page.click("#apply-fix-a")
    page.wait_for_selector("#confirm-yes")  # the confirmation page first
    page.click("#confirm-yes")
    page.wait_for_selector("ul.messagelist li.success")
    assert page.inner_text("#fix-a-state") == "applied"
    page.fill("input[name=label]", "after Fix A")
    page.click("#run-checks")
    page.wait_for_selector("ul.messagelist li.success")
    assert _status(page, "policy_count") == "WARN"
    assert _status(page, "policies") == "WARN"
    page.click("#run-probe")
    page.wait_for_selector("#probe-matrix")
    assert "forged claim gets through" in page.inner_text("ul .probe-note")
    page.click("#compare")
    page.wait_for_selector("#compare-table")
    assert page.locator("#compare-table tr.changed[data-key=policy_count]").count() == 1
    screenshot(page, "runbook-compare")
    page.go_back()
    page.wait_for_selector("#rollback-fix-a")
    page.click("#rollback-fix-a")
    page.click("#confirm-yes")
    page.wait_for_selector("#apply-fix-a")
    assert (
        pipeline_sql("SELECT count(*) FROM pg_policies WHERE tablename = 'profiles'", fetch="one")[
            0
        ]
        == 0
    )
