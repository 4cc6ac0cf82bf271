"""A real django-q2 cluster sends results; kill -9 while the SMTP server holds a message's
reply, resume: no one gets two messages, and the interrupted one is shown as unknown."""

from __future__ import annotations

import pytest
from django.test import override_settings

from remediation import jobs
from remediation.models import BackfillRun, ResultsNotification
from remediation.services.notifications import results_send_start
from remediation.services.runs import run_retry_failed
from tests.cluster import kill_cluster, start_cluster, wait_for
from tests.factories import heartbeat_stale, pipeline_sql
from tests.notify_helpers import backfilled, smtp_server

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


def _emails(ids):
    rows = pipeline_sql(
        "SELECT id::text, email FROM assessment_sessions WHERE id = ANY(%s::uuid[])", [ids], "all"
    )
    emails = dict(rows)
    return [emails[s] for s in ids]


def test_kill_9_mid_send_then_resume_sends_no_one_two_messages(clear_path):
    _, ids = backfilled(6)
    emails = _emails(ids)
    held = emails[2]
    with smtp_server(hold={held}) as smtp:
        env = {
            "EMAIL_URL": f"smtp://127.0.0.1:{smtp.port}",
            "NOTIFY_PER_MINUTE": "0",
            "NOTIFY_RETRY_BACKOFF": "0.01",
        }
        run = results_send_start(session_ids=ids, actor="tester", batch_size=2)
        first = start_cluster(**env)
        try:
            # The third message is stored by the server, whose reply never comes.
            assert smtp.held.wait(60), "the cluster never reached the held message"
            wait_for(
                lambda: ResultsNotification.objects.filter(state="sending").exists(),
                10,
                "the claim",
            )
        finally:
            kill_cluster(first)
        smtp.release.set()
        assert len(smtp.received) == 3
        mid = BackfillRun.objects.get(pk=run.pk)
        assert mid.state == "running"
        (sending,) = ResultsNotification.objects.filter(state="sending")
        assert sending.recipient == held
        heartbeat_stale(run.pk)
        with override_settings(BACKFILL_STALE_SECONDS=60):
            # Once the server has ended the killed worker's session (its lane lock freed).
            assert wait_for(jobs.runs_watchdog, 10, "the watchdog to find the run") == [run.pk]
        second = start_cluster(**env)
        try:
            done = wait_for(
                lambda: (
                    (r := BackfillRun.objects.get(pk=run.pk)).state
                    in ("succeeded", "finished_with_failures", "failed", "errored")
                    and r
                ),
                90,
                "the run to finish",
            )
        finally:
            kill_cluster(second)
        for address in emails:
            assert len(smtp.to(address)) == 1, address
        assert len(smtp.received) == 6
        assert done.state == "finished_with_failures", done.message
        assert done.counts == {"sent": 5, "unknown": 1}
        sending.refresh_from_db()
        assert (sending.state, sending.reason) == ("unknown", "interrupted")
        # "Retry failed" does not send it again either: only an explicit resend does.
        run_retry_failed(run.pk, actor="tester")
        jobs.run_until_done(run.pk)
        assert len(smtp.to(held)) == 1
        resend = results_send_start(
            session_ids=[ids[2]], actor="tester", resend=True, enqueue=False
        )
        jobs.run_until_done(resend.pk)
        assert len(smtp.to(held)) == 2
