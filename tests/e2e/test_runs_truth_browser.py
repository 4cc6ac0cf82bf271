"""In a browser: Retry failed and FC undo through their confirmation pages (the preview
visible, nothing changed before the Yes); a second backfill over sessions an active run
holds is refused on the confirmation page, with a link to the first run."""

from __future__ import annotations

import pytest

from remediation import jobs
from remediation.models import BackfillRun, FcChange
from remediation.services import fc
from remediation.services import runs as run_services
from remediation.services.fc_sets import read_set
from tests.e2e.conftest import screenshot
from tests.factories import clear_write_path, load_reference_data, make_session, pipeline_sql

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(databases="__all__", transaction=True)]


def test_retry_failed_goes_through_its_confirmation_page(pipeline_db, admin_login, page):
    load_reference_data()
    with clear_write_path():
        ids = [make_session(seed=i) for i in range(4)]
        pipeline_sql(
            "ALTER TABLE profiles ADD CONSTRAINT not_yet CHECK (session_id <> ALL (%s::uuid[]))",
            [ids[:3]],
        )
        run = jobs.run_until_done(jobs.backfill_start(selection="ids", ids=ids, enqueue=False).pk)
        assert (run.state, run.failed) == ("finished_with_failures", 3)
        admin_login(f"/admin/remediation/backfillrun/{run.pk}/change/")
        assert page.inner_text("#run-state") == "finished with failures"
        page.click("#run-retry")
        page.wait_for_selector("#retry-count")
        assert page.inner_text("#retry-count") == "3"
        sample = page.inner_text("#retry-sample")
        assert all(sid in sample for sid in ids[:3]) and ids[3] not in sample
        screenshot(page, "confirm-retry-failed")
        assert BackfillRun.objects.get(pk=run.pk).state == "finished_with_failures"
        with page.expect_navigation():
            page.click("#confirm-yes")
        banner = page.inner_text("ul.messagelist li.success")
        assert f"Backfill #{run.pk} is enqueued: round 2: retrying 3 failed sessions." in banner
        run.refresh_from_db()
        assert run.state == "enqueued" and len(run.rounds) == 2


def test_fc_undo_goes_through_its_confirmation_page(pipeline_db, admin_login, page):
    from remediation import reference_data

    seed = read_set(reference_data.fc_seed_path())
    fc.fc_set_load(seed, actor="setup")
    change = fc.fc_version_rollback(seed["version"], actor="setup")
    assert pipeline_sql("SELECT count(*) FROM fc_blocks", fetch="one")[0] == 0
    admin_login("/admin/remediation/fcchange/")
    page.locator(f"#result_list input.action-select[value='{change.pk}']").check()
    page.select_option("select[name=action]", "undo")
    page.click(".actions button")
    page.wait_for_selector(".fc-undo-confirm")
    summary = page.inner_text(f"h2[data-change='{change.pk}'] .fc-undo-summary")
    assert summary.startswith("6 blocks, 24 options")
    rows = page.locator(f"table.fc-undo-rows[data-change='{change.pk}'] tbody tr")
    assert rows.count() == 6
    screenshot(page, "confirm-fc-undo")
    assert pipeline_sql("SELECT count(*) FROM fc_blocks", fetch="one")[0] == 0
    with page.expect_navigation():
        page.click("#confirm-yes")
    assert "6 blocks, 24 options" in page.inner_text("ul.messagelist li.success")
    assert pipeline_sql("SELECT count(*) FROM fc_options", fetch="one")[0] == 24
    assert FcChange.objects.get(pk=change.pk).undone_at is not None


def test_a_second_backfill_over_an_active_runs_sessions_is_refused(pipeline_db, admin_login, page):
    load_reference_data()
    ids = [make_session(seed=i) for i in range(4)]
    first = run_services.backfill_start_exclusive(
        selection="ids", ids=ids[:2], enqueue=False, actor="other", throttle_per_minute=10
    )
    admin_login("/admin/remediation/orphanedsession/")
    page.locator("#result_list thead input#action-toggle").check()
    page.select_option("select[name=action]", "backfill_selected")
    page.click(".actions button")
    page.wait_for_selector("#backfill-overlap")
    assert page.inner_text("#overlap-count") == "2"
    link = page.locator("#backfill-overlap a.overlap-run")
    assert link.inner_text() == f"run #{first.pk}"
    assert page.is_checked("#overlap-refuse")
    screenshot(page, "backfill-overlap")
    page.click("#start-backfill")
    page.wait_for_selector("ul.messagelist li.error")
    error = page.inner_text("ul.messagelist li.error")
    assert (
        "Backfill not started: 2 of the selected sessions are held by another active run" in error
    )
    assert BackfillRun.objects.count() == 1
    held_by = page.locator("ul.messagelist li.error a.overlap-run")
    assert held_by.get_attribute("href") == f"/admin/remediation/backfillrun/{first.pk}/change/"
    # Excluding them, chosen explicitly, starts a run over the other two.
    page.check("#overlap-exclude")
    with page.expect_navigation():
        page.click("#start-backfill")
    second = BackfillRun.objects.exclude(pk=first.pk).get()
    assert second.estimated_total == 2
    assert page.url.endswith(f"/backfillrun/{second.pk}/change/")
    assert "2 sessions held by other runs left out" in page.inner_text("ul.messagelist li.success")
    page.click(f"#run-excluded a >> text=run #{first.pk}")
    page.wait_for_url(f"**/backfillrun/{first.pk}/change/")
    assert page.inner_text("#run-state") == "enqueued"
