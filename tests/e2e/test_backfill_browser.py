"""Support selects orphans, confirms a backfill, watches it finish and sees the orphans go."""

from __future__ import annotations

import re

import pytest

from tests.cluster import kill_cluster, start_cluster
from tests.e2e.conftest import screenshot
from tests.factories import clear_write_path, load_reference_data, make_session

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(databases="__all__", transaction=True)]


def _orphan_count(page) -> int:
    text = page.inner_text("#changelist-form .paginator")
    return int(re.search(r"(\d+) orphaned session", text).group(1))


def test_backfill_from_the_orphan_list(pipeline_db, admin_login, page):
    load_reference_data()
    with clear_write_path():
        for i in range(12):
            make_session(seed=i)
        cluster = start_cluster()
        try:
            admin_login("/admin/remediation/orphanedsession/")
            assert _orphan_count(page) == 12
            rows = page.locator("#result_list tbody tr input.action-select")
            for i in range(8):
                rows.nth(i).check()
            page.select_option("select[name=action]", "backfill_selected")
            page.click("button[name=index], input[name=index], .actions button")
            page.wait_for_selector("#start-backfill")
            assert page.inner_text("#backfill-count") == "8"
            page.fill("input[name=batch_size]", "3")
            page.click("#start-backfill")
            page.wait_for_selector(".backfill-run")
            # The run page refreshes itself until the run has finished.
            page.wait_for_selector(".backfill-run[data-state=succeeded]", timeout=60_000)
            assert page.inner_text("#run-percent") == "100.0%"
            assert (
                page.locator("#run-breakdown tr:has-text('created') td").first.inner_text() == "8"
            )
            screenshot(page, "backfill-run")
            page.goto(page.url.split("/admin/")[0] + "/admin/remediation/orphanedsession/")
            assert _orphan_count(page) == 4
        finally:
            kill_cluster(cluster)


def test_pages_run_under_the_csp_and_rollback_asks_first(pipeline_db, admin_login, page):
    """No page breaks the Content-Security-Policy (Chromium reports every violation); the
    rollback button leads to its confirmation page, which can be left without a change."""
    from remediation import jobs
    from remediation.models import BackfillRun

    violations: list[str] = []
    page.on(
        "console",
        lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    load_reference_data()
    with clear_write_path():
        ids = [make_session(seed=i) for i in range(2)]
        run = jobs.run_until_done(jobs.backfill_start(selection="ids", ids=ids, enqueue=False).pk)
    admin_login("/admin/remediation/orphanedsession/")
    for path in ("/admin/", "/admin/runbook/", "/admin/health/", "/admin/remediation/fcblock/"):
        admin_login(path)
        page.wait_for_selector("#site-name")
    admin_login(f"/admin/remediation/backfillrun/{run.pk}/change/")
    page.click("#run-rollback")
    page.wait_for_selector("#confirm-yes")
    page.click("#confirm-cancel")  # "No, take me back"
    page.wait_for_selector("#run-rollback")
    assert not BackfillRun.objects.filter(kind="rollback").exists()
    page.click("#run-rollback")
    with page.expect_navigation():
        page.click("#confirm-yes")
    assert BackfillRun.objects.filter(kind="rollback").count() == 1
    assert violations == []
