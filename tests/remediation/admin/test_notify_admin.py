"""Sending results from the admin: the run page's button, the confirmation page (count, skips,
a real message, dry run), the session page, permissions, addresses, suppression list,
the health figures and alert, /metrics and the notify_results command."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse

from opsportal.secrets import Secret
from remediation import jobs
from remediation.models import AuditEvent, BackfillRun, ResultsNotification, SuppressedAddress
from remediation.selectors import health
from remediation.services.health import health_check_run
from tests.factories import pipeline_sql
from tests.notify_helpers import backfilled, link_in, smtp_server

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)
SEND = "admin:remediation_resultsnotification_send"


def _email(sid):
    return pipeline_sql("SELECT email FROM assessment_sessions WHERE id = %s", [sid], "one")[0]


def test_from_the_run_page_to_the_confirmation_to_the_states(client, support, clear_path):
    source, ids = backfilled(3)
    pipeline_sql("UPDATE assessment_sessions SET email = NULL WHERE id = %s", [ids[2]])
    client.force_login(support)
    page = client.get(reverse("admin:remediation_backfillrun_change", args=[source]))
    body = page.content.decode()
    assert "Send results to the 3 people whose profiles this run created" in body
    confirm = client.get(reverse(SEND) + f"?run={source}")
    body = confirm.content.decode()
    assert confirm.status_code == 200
    assert 'id="notify-total">3<' in body and 'id="notify-will-send">2<' in body
    assert 'data-reason="no_email"' in body and "no email address" in body
    # One real message, rendered as it will go out: the first sendable person's own link.
    token = pipeline_sql(
        "SELECT share_token FROM assessment_sessions WHERE id = %s", [ids[0]], "one"
    )[0]
    assert f"/results/{ids[0]}?t={token}" in body and _email(ids[0]) in body
    assert "List-Unsubscribe" in body
    # The page wrote nothing.
    assert not ResultsNotification.objects.exists()
    assert BackfillRun.objects.filter(kind="notify").count() == 0
    dry = client.post(reverse(SEND), {"run": source, "mode": "dry_run"})
    dry_run = BackfillRun.objects.get(kind="notify")
    assert dry.status_code == 302 and dry_run.dry_run
    with smtp_server() as smtp:
        jobs.run_until_done(dry_run.pk)
        assert not smtp.received
        sent = client.post(reverse(SEND), {"run": source, "mode": "send"})
        run = BackfillRun.objects.filter(kind="notify", dry_run=False).get()
        assert sent["Location"].endswith(f"/backfillrun/{run.pk}/change/")
        jobs.run_until_done(run.pk)
        assert sorted(r for m in smtp.received for r in m.rcpt_tos) == sorted(
            [_email(ids[0]), _email(ids[1])]
        )
        assert {link_in(m)[0] for m in smtp.received} == {ids[0], ids[1]}
    page = client.get(reverse("admin:remediation_backfillrun_change", args=[run.pk]))
    body = page.content.decode()
    assert body.count('data-state="sent"') == 2 and body.count('data-state="skipped"') == 1
    assert _email(ids[0]) in body
    # The confirmation page now says nobody is left to send to.
    again = client.get(reverse(SEND) + f"?run={source}").content.decode()
    assert 'id="notify-will-send">0<' in again and 'data-reason="already_sent"' in again
    assert AuditEvent.objects.filter(action="notify.send", actor="support").exists()
    assert AuditEvent.objects.filter(action="notify.dry_run").exists()


def test_the_session_page_offers_send_and_copy(client, support, clear_path):
    _, (sid,) = backfilled(1)
    client.force_login(support)
    body = client.get(reverse("admin:remediation_assessmentsession_change", args=[sid])).content
    body = body.decode()
    token = pipeline_sql("SELECT share_token FROM assessment_sessions WHERE id = %s", [sid], "one")[
        0
    ]
    assert f'href="{reverse(SEND)}?session={sid}"' in body
    assert f'data-copy="http://localhost:3000/results/{sid}?t={token}"' in body
    confirm = client.get(reverse(SEND) + f"?session={sid}").content.decode()
    assert 'id="notify-will-send">1<' in confirm


def test_permissions_addresses_and_hostile_input(client, member, clear_path):
    source, ids = backfilled(1)
    viewer = member("viewer", "Viewer")
    client.force_login(viewer)
    assert client.get(reverse(SEND) + f"?run={source}").status_code == 403
    assert client.post(reverse(SEND), {"run": source, "mode": "send"}).status_code == 403
    page = client.get(reverse("admin:remediation_backfillrun_change", args=[source])).content
    assert b"run-send-results" not in page
    # Someone who may see notifications but not sessions sees no address.
    with smtp_server():
        from remediation.services.notifications import results_send_start

        jobs.run_until_done(results_send_start(session_ids=ids, actor="t", enqueue=False).pk)
    outsider = User.objects.create_user("outsider", "o@example.org", "pw", is_staff=True)
    outsider.user_permissions.set(
        Permission.objects.filter(codename__in=["view_resultsnotification", "view_backfillrun"])
    )
    client.force_login(outsider)
    listing = client.get(reverse("admin:remediation_resultsnotification_changelist")).content
    assert _email(ids[0]).encode() not in listing and b"(hidden)" in listing
    client.force_login(member("sup", "Support"))
    assert (
        _email(ids[0]).encode()
        in client.get(reverse("admin:remediation_resultsnotification_changelist")).content
    )
    for query in ("?run=abc", "?run=999999", "?session=nope", "", "?session=%00", "?run=1" * 30):
        assert client.get(reverse(SEND) + query).status_code in (400, 404), query


def test_engineers_manage_the_suppression_list_support_does_not(client, engineer, support, db):
    add = reverse("admin:remediation_suppressedaddress_add")
    client.force_login(support)
    assert client.post(add, {"address": "x@example.org"}).status_code == 403
    client.force_login(engineer)
    resp = client.post(add, {"address": " Someone@Example.org ", "reason": "asked"})
    assert resp.status_code == 302
    entry = SuppressedAddress.objects.get()
    assert (entry.address, entry.added_by) == ("someone@example.org", "engineer")
    assert AuditEvent.objects.filter(action="notify.suppress", actor="engineer").exists()


def test_health_counts_messages_and_alerts_on_the_failure_rate(client, clear_path):
    _, ids = backfilled(6)
    dead = {_email(s): ["550 5.1.1 no such user"] for s in ids[:2]}
    with smtp_server(rcpt_faults=dead), override_settings(NOTIFY_ALERT_MIN_MESSAGES=5):
        from remediation.services.notifications import results_send_start

        jobs.run_until_done(results_send_start(session_ids=ids, actor="t", enqueue=False).pk)
        figures = health.compute("1h")
        assert (figures["notify_sent"], figures["notify_failed"]) == (4, 2)
        rules = {r.rule: r for r in health.evaluate()}
        assert rules["notify_failures"].firing and "2 of 6" in rules["notify_failures"].message
        health_check_run()
    dashboard = client
    from django.contrib.auth.models import User as U

    dashboard.force_login(U.objects.create_superuser("root", "r@example.org", "pw"))
    body = dashboard.get(reverse("admin:health") + "?window=1h").content.decode()
    assert "4 sent · 2 failed · 0 skipped" in body and "notify failures" in body
    with override_settings(METRICS_TOKEN=Secret("tok")):
        text = client.get("/metrics", HTTP_AUTHORIZATION="Bearer tok").content.decode()
    assert 'prism_results_messages{state="sent",window="1h"} 4.0' in text
    assert 'prism_results_messages{state="failed",window="1h"} 2.0' in text


def test_the_notify_results_command(clear_path, capsys):
    source, ids = backfilled(2)
    with smtp_server() as smtp:
        call_command("notify_results", "--run", str(source), "--sync")
        out = capsys.readouterr().out
        assert "2/2" in out and "2 sent" in out
        assert len(smtp.received) == 2
        call_command("notify_results", "--ids", *ids, "--sync", "--dry-run")
        assert "2 skipped (already_sent 2)" in capsys.readouterr().out
        assert len(smtp.received) == 2
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no backfill run"):
        call_command("notify_results", "--run", "999999")


def test_resend_is_explicit_and_the_demo_sink_page_shows_what_was_received(
    client, support, clear_path, tmp_path
):
    from remediation.services.notifications import results_send_start

    _, (sid,) = backfilled(1)
    with smtp_server(folder=tmp_path) as smtp, override_settings(EMAIL_SINK_DIR=str(tmp_path)):
        jobs.run_until_done(results_send_start(session_ids=[sid], actor="t", enqueue=False).pk)
        client.force_login(support)
        listing = reverse("admin:remediation_resultsnotification_changelist")
        assert b"mail-sink-link" in client.get(listing).content
        sink = client.get(reverse("admin:remediation_resultsnotification_sink")).content.decode()
        assert f"/results/{sid}?t=" in sink and _email(sid) in sink
        # The action leads to the confirmation page, which says it is a resend; only its
        # POST sends the second message.
        n = ResultsNotification.objects.get()
        resp = client.post(listing, {"action": "resend_selected", "_selected_action": [n.pk]})
        assert resp.status_code == 302 and "resend=1" in resp["Location"]
        confirm = client.get(resp["Location"]).content.decode()
        assert 'id="notify-will-send">1<' in confirm and "explicit resend" in confirm
        assert len(smtp.received) == 1
        client.post(reverse(SEND), {"session": sid, "resend": "1", "mode": "send"})
        run = BackfillRun.objects.filter(kind="notify").order_by("-pk").first()
        jobs.run_until_done(run.pk)
        assert len(smtp.to(_email(sid))) == 2
        assert AuditEvent.objects.filter(action="notify.resend", actor="support").exists()
    with override_settings(EMAIL_SINK_DIR=""):
        assert client.get(reverse("admin:remediation_resultsnotification_sink")).status_code == 404


def test_the_notification_pages_only_read_on_get(client, support, clear_path, tmp_path):
    import contextlib

    from django.db import connections

    from remediation.services.notifications import results_send_start
    from tests.remediation.admin.test_get_reads_only import Recorder, offending

    source, ids = backfilled(2)
    with smtp_server(folder=tmp_path), override_settings(EMAIL_SINK_DIR=str(tmp_path)):
        run = jobs.run_until_done(results_send_start(session_ids=ids, actor="t", enqueue=False).pk)
        client.force_login(support)
        pages = [
            reverse(SEND) + f"?run={source}",
            reverse(SEND) + f"?session={ids[0]}&session={ids[1]}",
            reverse(SEND) + f"?session={ids[0]}&resend=1",
            reverse("admin:remediation_backfillrun_change", args=[source]),
            reverse("admin:remediation_backfillrun_change", args=[run.pk]),
            reverse("admin:remediation_assessmentsession_change", args=[ids[0]]),
            reverse("admin:remediation_resultsnotification_changelist"),
            reverse("admin:remediation_resultsnotification_sink"),
            reverse("admin:remediation_suppressedaddress_changelist"),
            reverse(
                "admin:remediation_resultsnotification_change",
                args=[ResultsNotification.objects.first().pk],
            ),
        ]
        for url in pages:
            recorder = Recorder()
            with contextlib.ExitStack() as stack:
                for alias in ("default", "pipeline"):
                    stack.enter_context(connections[alias].execute_wrapper(recorder))
                resp = client.get(url)
            assert resp.status_code == 200, url
            bad = [(a, sql) for a, sql in recorder.statements if offending(sql)]
            assert bad == [], url
