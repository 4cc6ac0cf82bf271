"""An engineer walks the runbook from the first failing check to a resolved incident."""

from __future__ import annotations

import pytest
from django.utils import timezone

from remediation.dev.demo import seed_demo
from remediation.dev.emulation import load_emulated_schema
from tests.cluster import kill_cluster, start_cluster
from tests.e2e.conftest import screenshot
from tests.factories import pipeline_sql, restore_checks, set_fixes

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(databases="__all__", transaction=True)]


@pytest.fixture
def demo_incident(pipeline_db):
    seed_demo(seed=4, sessions=120, now=timezone.now(), force=True)
    load_emulated_schema(service_role_bypassrls=False, fc_metrics_trigger=True)
    yield
    pipeline_sql("DELETE FROM profiles")
    set_fixes("0004")
    pipeline_sql("DROP TRIGGER IF EXISTS update_fc_metrics_trigger ON profiles")
    restore_checks()
    pipeline_sql("DROP SCHEMA IF EXISTS opsportal CASCADE")


def step(page, key):
    return page.inner_text(f"#runbook-steps tr[data-step={key}]")


def test_walk_the_runbook_to_a_resolved_incident(demo_incident, admin_login, page):
    admin_login("/admin/runbook/")
    page.click("#run-checks")
    page.wait_for_selector("ul.messagelist li.success")
    for fix in ("fix_a", "fix_d", "fix_e"):
        assert "needed" in step(page, fix)
    assert "not diagnosed yet" in step(page, "verify_a")  # a page view never diagnoses
    page.click("#diagnose-test-session")
    page.wait_for_selector("ul.messagelist li.success")
    assert "rls" in step(page, "verify_a")
    # Each fix moves the test session's rolled-back write to the next blocker.
    expected = {
        "a": ("check", "23514"),
        "d": ("trigger", "54001"),
        "e": ("would succeed", "would succeed"),
    }
    for fix, (category, shown) in expected.items():
        page.click(f"#apply-fix-{fix}")
        page.click("#confirm-yes")
        page.wait_for_selector(f"#rollback-fix-{fix}")
        assert "applied" in step(page, f"fix_{fix}")
        assert f"after: {category}" in step(page, f"fix_{fix}")
        assert shown in step(page, f"verify_{fix}")
    assert "ready" in step(page, "backfill")
    cluster = start_cluster()
    try:
        page.click("#backfill-orphans")
        page.wait_for_selector("#start-backfill")
        page.click("#start-backfill")
        page.wait_for_selector(".backfill-run[data-state=succeeded]", timeout=90_000)
    finally:
        kill_cluster(cluster)
    page.goto(page.url.split("/admin/")[0] + "/admin/runbook/")
    assert "done" in step(page, "backfill")
    assert "met" in step(page, "success") and "100.0%" in step(page, "success")
    screenshot(page, "runbook-resolved")
