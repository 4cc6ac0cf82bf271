"""Retry failed asks first (count, reasons, a sample; nothing changes before the Yes), and the
summary after it stays true: 0 created and 5 failed is "all failed", and a retry that finds
the 5 already written elsewhere says so round by round, not just "0 failed"."""

from __future__ import annotations

import pytest
from django.urls import reverse

from remediation import jobs
from remediation.models import AuditEvent, BackfillRun
from tests.factories import make_session
from tests.remediation.jobs.test_run_states import _page, _refuse, _start

pytestmark = pytest.mark.django_db(databases="__all__")


def test_all_failed_then_retry_through_the_confirmation_keeps_the_summary_true(
    clear_variant, admin_client
):
    ids = [make_session(seed=i) for i in range(5)]
    _refuse(ids)
    run = jobs.run_until_done(_start(ids).pk)
    assert (run.state, run.created, run.failed) == ("failed", 0, 5)
    page = _page(admin_client, run)
    assert '<span id="run-state" data-live="state">all failed</span>' in page
    assert 'id="run-retry" value="Retry failed…"' in page.replace(
        '<input type="submit" value="Retry failed…" id="run-retry">',
        'id="run-retry" value="Retry failed…"',
    )

    url = reverse("admin:remediation_backfillrun_control", args=[run.pk, "retry"])
    confirm = admin_client.get(url).content.decode()
    assert '<strong id="retry-count">5</strong>' in confirm
    assert "5 failed (check)." in confirm  # by outcome and reason
    assert confirm.count("<tr><td>") >= 5 and ids[0] in confirm
    admin_client.post(url)  # a POST without confirm=yes is the page again
    assert BackfillRun.objects.get(pk=run.pk).state == "failed"
    assert not AuditEvent.objects.filter(action="backfill.retry_failed").exists()

    from tests.factories import pipeline_sql

    pipeline_sql("ALTER TABLE profiles DROP CONSTRAINT not_yet")
    other = jobs.run_until_done(_start(ids).pk)  # another run writes them meanwhile
    assert other.created == 5
    response = admin_client.post(url, {"confirm": "yes"}, follow=True)
    banner = response.content.decode()
    assert f"Backfill #{run.pk} is enqueued: round 2: retrying 5 failed sessions." in banner
    run = jobs.run_until_done(run.pk)
    assert run.message == (
        "5 processed: 0 created, 0 re-scored, 5 already had a profile, 0 failed, 0 skipped"
        " (now, over every round; round 1: 5 failed; round 2 (retry): 5 existing)"
    )
    assert [r["counts"] for r in run.rounds] == [{"failed": 5}, {"existing": 5}]
    assert AuditEvent.objects.filter(action="backfill.retry_failed").count() == 1


def test_pause_and_resume_say_they_changed_only_the_run(clear_variant, admin_client):
    run = _start([make_session(seed=1)])
    pause = reverse("admin:remediation_backfillrun_control", args=[run.pk, "pause"])
    text = admin_client.post(pause, follow=True).content.decode()
    assert (
        f"Backfill #{run.pk} is paused: no batch was running. Nothing in the pipeline database"
        " was changed." in text
    )
    resume = reverse("admin:remediation_backfillrun_control", args=[run.pk, "resume"])
    text = admin_client.post(resume, follow=True).content.decode()
    assert f"Backfill #{run.pk} is enqueued: it continues with the 1 session not processed" in text


def test_a_retry_over_sessions_another_active_run_holds_is_refused(clear_variant, admin_client):
    from remediation.services import runs

    ids = [make_session(seed=i) for i in range(2)]
    _refuse(ids)
    run = jobs.run_until_done(_start(ids).pk)
    other = _start(ids[:1])  # enqueued, holding one of the failed sessions
    url = reverse("admin:remediation_backfillrun_control", args=[run.pk, "retry"])
    page = admin_client.get(url).content.decode()
    assert f"1 of these sessions are held by another active run (run #{other.pk})" in page
    assert 'id="confirm-yes"' not in page
    with pytest.raises(runs.RunOverlap, match=f"1 by run #{other.pk}"):
        runs.run_retry_failed(run.pk)
    assert BackfillRun.objects.get(pk=run.pk).state == "failed"
