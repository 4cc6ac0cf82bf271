"""Results notifications as a job, against a real SMTP server on loopback (aiosmtpd):
exactly once, skips with their reasons, temporary and permanent failures, links."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from remediation import jobs
from remediation.models import AuditEvent, BackfillRun, ResultsNotification, SuppressedAddress
from remediation.services.notifications import results_send_start
from tests.factories import make_session, pipeline_sql
from tests.notify_helpers import backfilled, link_in, smtp_server

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


def _email_of(sid: str) -> str:
    return pipeline_sql("SELECT email FROM assessment_sessions WHERE id = %s", [sid], "one")[0]


def _notifications(ids):
    return {str(n.session_id): n for n in ResultsNotification.objects.filter(session_id__in=ids)}


def test_each_person_gets_one_message_with_their_own_link_and_a_second_send_reaches_no_one(
    clear_variant,
):
    source, ids = backfilled(4)
    with smtp_server() as smtp:
        run = results_send_start(
            session_ids=ids, actor="tester", source_run_id=source, enqueue=False
        )
        done = jobs.run_until_done(run.pk)
        assert done.state == "succeeded", done.message
        assert done.counts == {"sent": 4}
        assert "4 sent" in done.message
        for sid in ids:
            (got,) = smtp.to(_email_of(sid))
            token = pipeline_sql(
                "SELECT share_token FROM assessment_sessions WHERE id = %s", [sid], "one"
            )[0]
            assert link_in(got) == (sid, token)  # the right session, its own token
            msg = got.message
            assert msg["List-Unsubscribe"].startswith("<mailto:")
            assert msg.get_body(preferencelist=("html",)) is not None
            assert "results are ready" in msg["Subject"]
        rows = _notifications(ids)
        assert {n.state for n in rows.values()} == {"sent"}
        assert all(n.message_id and n.smtp_reply.startswith("250") for n in rows.values())
        assert all(n.source_run_id == source and n.attempts == 1 for n in rows.values())
        # A second ordinary send reaches no one twice.
        again = jobs.run_until_done(
            results_send_start(session_ids=ids, actor="tester", enqueue=False).pk
        )
        assert again.state == "succeeded"
        assert again.counts == {"skipped": 4}
        assert set(again.items.values_list("reason", flat=True)) == {"already_sent"}
        assert len(smtp.received) == 4
        # Only an explicit resend sends again: a new generation per person.
        resent = jobs.run_until_done(
            results_send_start(session_ids=ids[:1], actor="tester", resend=True, enqueue=False).pk
        )
        assert resent.counts == {"sent": 1}
        assert len(smtp.to(_email_of(ids[0]))) == 2
        assert ResultsNotification.objects.filter(session_id=ids[0]).count() == 2
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"notify.send", "notify.resend", "notify.batch"} <= actions


def test_the_same_task_delivered_twice_and_a_lost_record_send_nothing_twice(clear_path):
    _, ids = backfilled(3)
    with smtp_server() as smtp:
        run = results_send_start(session_ids=ids, actor="tester", enqueue=False, batch_size=5)
        token = BackfillRun.objects.get(pk=run.pk).batch_token
        assert jobs.process_batch(run.pk, token, enqueue_next=False) == "next"
        # The same task again (django-q2 redelivers): its token is spent.
        assert jobs.process_batch(run.pk, token, enqueue_next=False) == "stale"
        assert len(smtp.received) == 3
        # Worse: the batch's record is lost (cursor back, items pending) and it runs again.
        BackfillRun.objects.filter(pk=run.pk).update(cursor=0)
        run.items.update(outcome="pending")
        again = BackfillRun.objects.get(pk=run.pk)
        jobs.process_batch(run.pk, again.batch_token, enqueue_next=False)
        assert len(smtp.received) == 3
        # The items say what is true: this run sent them (once).
        assert set(run.items.values_list("outcome", flat=True)) == {"sent"}


def test_two_workers_on_two_runs_over_the_same_people_send_each_one_message(clear_path):
    _, ids = backfilled(6)
    with smtp_server() as smtp:
        a = results_send_start(session_ids=ids, actor="a", enqueue=False, batch_size=2)
        b = results_send_start(
            session_ids=list(reversed(ids)), actor="b", enqueue=False, batch_size=2
        )
        errors = []

        def work(run_id):
            try:
                jobs.run_until_done(run_id)
            except Exception as exc:  # surfaced below
                errors.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=work, args=(r.pk,)) for r in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors
        for sid in ids:
            assert len(smtp.to(_email_of(sid))) == 1
        assert len(smtp.received) == 6
        ends = [BackfillRun.objects.get(pk=r.pk) for r in (a, b)]
        assert sum(r.counts.get("sent", 0) for r in ends) == 6
        assert all(r.state == "succeeded" for r in ends), [r.message for r in ends]


def test_skips_say_why_and_send_nothing(clear_path):
    _, ids = backfilled(5)
    no_email, invalid, suppressed, fine, expired = ids
    pipeline_sql("UPDATE assessment_sessions SET email = NULL WHERE id = %s", [no_email])
    pipeline_sql("UPDATE assessment_sessions SET email = 'not an address' WHERE id = %s", [invalid])
    SuppressedAddress.objects.create(address=_email_of(suppressed).upper(), reason="bounced")
    pipeline_sql(
        "UPDATE assessment_sessions SET share_token_expires_at = now() - interval '1 day'"
        " WHERE id = %s",
        [expired],
    )
    no_profile = make_session(seed=40)
    with smtp_server() as smtp:
        dry = jobs.run_until_done(
            results_send_start(
                session_ids=[*ids, no_profile], actor="t", dry_run=True, enqueue=False
            ).pk
        )
        assert not smtp.received and not ResultsNotification.objects.exists()
        assert "1 would be sent" in dry.message
        run = jobs.run_until_done(
            results_send_start(session_ids=[*ids, no_profile], actor="t", enqueue=False).pk
        )
        assert run.state == "succeeded"
        reasons = dict(run.items.values_list("session_id", "reason"))
        assert {str(k): v for k, v in reasons.items()} == {
            no_email: "no_email",
            invalid: "invalid_address",
            suppressed: "suppressed",
            fine: "",
            expired: "token_expired",
            no_profile: "no_profile",
        }
        assert [m.rcpt_tos for m in smtp.received] == [[_email_of(fine)]]
        rows = _notifications([*ids, no_profile])
        assert rows[suppressed].state == "skipped" and rows[suppressed].reason == "suppressed"
        # Fixed since: the next ordinary send takes the skipped ones up again.
        pipeline_sql(
            "UPDATE assessment_sessions SET email = 'fixed@example.org' WHERE id = %s", [no_email]
        )
        jobs.run_until_done(
            results_send_start(session_ids=[no_email, fine], actor="t", enqueue=False).pk
        )
        assert len(smtp.to("fixed@example.org")) == 1 and len(smtp.to(_email_of(fine))) == 1


def test_temporary_failures_are_retried_and_permanent_ones_are_not(clear_path):
    _, ids = backfilled(4)
    flaky, dead, hopeless, spam = (_email_of(s) for s in ids)
    with smtp_server(
        rcpt_faults={
            flaky: ["451 4.3.0 try later", "421 4.7.0 busy"],  # then accepted
            dead: ["550 5.1.1 no such user"],
            hopeless: ["452 4.2.2 mailbox full"] * 10,
        },
        # After the message body: a 4xx once (tried again), then a 5xx (not tried again).
        data_faults={spam: ["451 4.7.1 greylisted", "554 5.7.1 rejected as spam"]},
    ) as smtp:
        run = jobs.run_until_done(results_send_start(session_ids=ids, actor="t", enqueue=False).pk)
        rows = _notifications(ids)
        assert (rows[ids[0]].state, rows[ids[0]].attempts) == ("sent", 3)
        assert (rows[ids[1]].state, rows[ids[1]].reason, rows[ids[1]].attempts) == (
            "failed",
            "permanent",
            1,
        )
        assert rows[ids[1]].smtp_reply.startswith("550")
        assert (rows[ids[2]].state, rows[ids[2]].reason, rows[ids[2]].attempts) == (
            "failed",
            "temporary",
            3,
        )
        assert (rows[ids[3]].state, rows[ids[3]].reason, rows[ids[3]].attempts) == (
            "failed",
            "permanent",
            2,
        )
        assert rows[ids[3]].smtp_reply.startswith("554")
        assert run.state == "finished_with_failures"
        assert run.failed_by_reason == {"permanent": 2, "temporary": 1}
        assert len(smtp.to(flaky)) == 1 and not smtp.to(dead) and not smtp.to(hopeless)
        # Retry failed: the temporary one is tried again; the permanent one is not.
        smtp.rcpt_faults.clear()
        from remediation.services.runs import run_retry_failed

        run_retry_failed(run.pk, actor="t")
        again = jobs.run_until_done(run.pk)
        assert len(smtp.to(hopeless)) == 1 and not smtp.to(dead) and not smtp.to(spam)
        assert again.failed_by_reason == {"permanent": 2}


def test_a_connection_refused_is_temporary(clear_path):
    _, ids = backfilled(1)
    with smtp_server() as smtp:
        port = smtp.port
    # The server is gone: nothing listens on the port.
    from django.test import override_settings

    from remediation.integrations.mail import DJANGO_SMTP

    with override_settings(
        EMAIL_BACKEND=DJANGO_SMTP,
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=port,
        EMAIL_USE_TLS=False,
        EMAIL_USE_SSL=False,
        NOTIFY_RETRY_BACKOFF=0.01,
        NOTIFY_MAX_TRIES=2,
        NOTIFY_PER_MINUTE=0,
    ):
        run = jobs.run_until_done(results_send_start(session_ids=ids, actor="t", enqueue=False).pk)
    (n,) = _notifications(ids).values()
    assert (n.state, n.reason, n.attempts) == ("failed", "temporary", 2)
    assert "Connection" in n.smtp_reply or "refused" in n.smtp_reply.lower()
    assert run.state == "failed"


def test_a_connection_lost_after_the_message_is_unknown_and_never_sent_again(clear_path):
    _, ids = backfilled(2)
    lost, fine = (_email_of(s) for s in ids)
    with smtp_server(drop={lost}) as smtp:
        run = jobs.run_until_done(results_send_start(session_ids=ids, actor="t", enqueue=False).pk)
        rows = _notifications(ids)
        assert (rows[ids[0]].state, rows[ids[0]].reason, rows[ids[0]].attempts) == (
            "unknown",
            "lost_reply",
            1,
        )
        assert "connection lost after the message was sent" in rows[ids[0]].smtp_reply
        assert rows[ids[1]].state == "sent"
        assert run.state == "finished_with_failures" and run.counts == {"sent": 1, "unknown": 1}
        smtp.drop.clear()
        jobs.run_until_done(results_send_start(session_ids=ids, actor="t", enqueue=False).pk)
        assert len(smtp.to(lost)) == 1 and len(smtp.to(fine)) == 1


def test_a_batch_stops_at_its_time_budget_and_the_rest_go_to_the_next(clear_path):
    from django.test import override_settings

    _, ids = backfilled(3)
    with smtp_server() as smtp, override_settings(BACKFILL_BATCH_SECONDS=0.0001):
        run = results_send_start(session_ids=ids, actor="t", enqueue=False, batch_size=10)
        jobs.process_batch(run.pk, run.batch_token, enqueue_next=False)
        first = BackfillRun.objects.get(pk=run.pk)
        assert first.counts == {"sent": 1} and len(smtp.received) == 1
        done = jobs.run_until_done(run.pk)
        assert done.state == "succeeded" and done.counts == {"sent": 3}
        assert len(smtp.received) == 3


def test_the_link_in_each_message_opens_that_persons_results(clear_variant):
    import urllib.error
    import urllib.request

    from django.test import override_settings

    from tests.notify_helpers import LINK, results_site

    _, ids = backfilled(3)
    with results_site() as base, override_settings(RESULTS_BASE_URL=base), smtp_server() as smtp:
        jobs.run_until_done(results_send_start(session_ids=ids, actor="t", enqueue=False).pk)
        for sid in ids:
            (got,) = smtp.to(_email_of(sid))
            html = got.message.get_body(preferencelist=("html",)).get_content()
            text = got.message.get_body(preferencelist=("plain",)).get_content()
            url = LINK.search(text).group(0)
            assert f'href="{url}"' in html  # the HTML button carries the same link
            type_code = pipeline_sql(
                "SELECT type_code FROM profiles WHERE session_id = %s", [sid], "one"
            )[0]
            with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 (loopback)
                assert resp.status == 200
                assert resp.read().decode() == f"results of {sid}: {type_code}"
            assert type_code in text
            # Another session's token does not open it.
            other = ids[(ids.index(sid) + 1) % len(ids)]
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(url.replace(sid, other), timeout=10)  # noqa: S310
            assert refused.value.code == 404
