"""An engineer opens the incident timeline after a broken and repaired write path."""

from __future__ import annotations

import pytest

from remediation.dev.breaks import break_write_path
from remediation.models import AutoHeal
from remediation.services.canary import canary_run
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(databases="__all__", transaction=True)]


def test_the_timeline_page_shows_the_incident_and_switches_auto_heal(
    clear_path, admin_login, page, settings
):
    settings.AUTO_HEAL_ENABLED = True
    canary_run()
    broken = break_write_path("grant")
    canary_run()
    broken.repair()
    canary_run()
    admin_login("/admin/")
    page.click("text=Incident timeline")
    page.wait_for_selector("#timeline-events")
    rows = page.locator("#timeline-events tbody tr").all_inner_texts()
    titles = [r for r in rows if "canary" in r or "write path" in r]
    assert "42501 permission denied on profiles" in titles[0]
    assert "alert resolved: write path" in titles[-1]
    assert page.inner_text("#fig-repair") != "unknown"
    assert "profile writes fail" in page.inner_text("#fig-alert")
    assert page.get_attribute("#export-timeline", "href").startswith("/admin/incident/export.md")
    assert "off" in page.inner_text("#autoheal-state")
    page.check("#autoheal-form input[name=confirm]")
    page.click("#autoheal-form input[type=submit]")
    page.wait_for_selector("ul.messagelist li.success")
    assert "Auto-heal is on" in page.inner_text("ul.messagelist")
    assert AutoHeal.objects.get(pk=1).enabled
    screenshot(page, "incident-timeline")
