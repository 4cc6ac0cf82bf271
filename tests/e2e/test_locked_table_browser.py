"""A person opening the orphan list while `profiles` is locked sees the 503 page in the
admin look, with the message and a working "Try again" link, under the CSP."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import screenshot
from tests.factories import load_reference_data, make_session
from tests.remediation.test_locked_tables import MESSAGE, short_limits, table_locked

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


def test_the_busy_page_in_a_browser(page, admin_login, pipeline_db):
    load_reference_data()
    make_session(seed=81)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    with short_limits():
        with table_locked("profiles"):
            admin_login("/admin/remediation/orphanedsession/")
            note = page.locator("#pipeline-timeout")
            assert MESSAGE in note.inner_text()
            assert "Try again in a moment; nothing was changed." in note.inner_text()
            assert page.locator("#site-name").inner_text() == "PRISM ops portal"
            screenshot(page, "pipeline-timeout")
        # Released: "Try again" opens the list.
        page.click("#pipeline-timeout-retry")
        page.wait_for_selector("#result_list, .paginator")
        assert page.locator("#pipeline-timeout").count() == 0
    # The only console error is the page's own status; nothing the CSP refused.
    assert [p for p in problems if "status of 503" not in p] == []
    assert any("status of 503" in p for p in problems)
