"""An engineer sends every person a backfill helped their results, from the run's page, and
watches each message's state; the loopback SMTP server got exactly one message per person."""

from __future__ import annotations

import pytest

from tests.cluster import kill_cluster, start_cluster
from tests.e2e.conftest import screenshot
from tests.notify_helpers import backfilled, link_in, smtp_server

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(databases="__all__", transaction=True)]


def test_send_results_for_a_run_and_see_the_states(clear_path, admin_login, page):
    source, ids = backfilled(3)
    with smtp_server() as smtp:
        cluster = start_cluster(EMAIL_URL=f"smtp://127.0.0.1:{smtp.port}", NOTIFY_PER_MINUTE="0")
        try:
            admin_login(f"/admin/remediation/backfillrun/{source}/change/")
            page.click("#run-send-results")
            page.wait_for_selector(".notify-confirm")
            assert page.inner_text("#notify-total") == "3"
            assert page.inner_text("#notify-will-send") == "3"
            assert f"/results/{ids[0]}?t=" in page.inner_text("#preview-text")
            screenshot(page, "notify-confirm")
            page.click("#notify-send")
            page.wait_for_selector(".backfill-run")
            page.wait_for_selector(".backfill-run[data-state=succeeded]", timeout=60_000)
            states = page.locator("#run-notifications .notification-state").all_inner_texts()
            assert states == ["sent"] * 3
            screenshot(page, "notify-run")
            # A second send from the same page reaches no one.
            admin_login(f"/admin/remediation/backfillrun/{source}/change/")
            page.click("#run-send-results")
            page.wait_for_selector(".notify-confirm")
            assert page.inner_text("#notify-will-send") == "0"
            assert page.locator("#notify-send").is_disabled()
        finally:
            kill_cluster(cluster)
        assert sorted(link_in(m)[0] for m in smtp.received) == sorted(ids)
