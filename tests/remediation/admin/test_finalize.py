"""Finalize from the admin and the command line: permissions, confirmation, messages, log."""

from __future__ import annotations

import json

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from django.urls import reverse

from remediation.models import FinalizeAttempt, SessionDiagnosis
from tests.factories import load_reference_data, make_session, pipeline_sql

pytestmark = pytest.mark.django_db(databases="__all__")


def _staff(perms=()):
    user = User.objects.create_user("support", "s@example.org", "pw", is_staff=True)
    names = ["view_assessmentsession", "view_orphanedsession", *perms]
    user.user_permissions.set(Permission.objects.filter(codename__in=names))
    return User.objects.get(pk=user.pk)


def test_finalize_button_confirms_then_finalizes_and_logs(client, clear_path):
    client.force_login(_staff(["finalize_session"]))
    sid = make_session()
    change = reverse("admin:remediation_assessmentsession_change", args=[sid])
    page = client.get(change).content.decode()
    # A page view never diagnoses (no write, no lock): it shows the stored diagnosis.
    assert "Finalize…" in page and "not diagnosed yet" in page
    assert not SessionDiagnosis.objects.filter(session_id=sid).exists()
    diagnose = reverse("admin:remediation_assessmentsession_diagnose", args=[sid])
    assert client.get(diagnose).status_code == 405
    client.post(diagnose)
    page = client.get(change).content.decode()
    assert "would_succeed" in page and "diagnosed" in page
    url = reverse("admin:remediation_assessmentsession_finalize", args=[sid])
    confirm = client.get(url)
    assert confirm.status_code == 200 and "Yes, finalize" in confirm.content.decode()
    assert FinalizeAttempt.objects.count() == 0  # the confirmation page writes nothing
    resp = client.post(url, {"backend": "local"}, follow=True)
    body = resp.content.decode()
    attempt = FinalizeAttempt.objects.get(session_id=sid)
    assert attempt.outcome == "created" and attempt.requested_by_name == "support"
    assert attempt.type_code in body and attempt.results_url.replace("&", "&amp;") in body
    assert LogEntry.objects.filter(object_id=sid, change_message__contains="created").exists()
    assert "profile created" in client.get(change).content.decode()  # the attempts list


def test_staff_without_the_permission_can_neither_see_nor_post(client, clear_path):
    client.force_login(_staff())
    sid = make_session()
    page = client.get(
        reverse("admin:remediation_assessmentsession_change", args=[sid])
    ).content.decode()
    assert "Finalize…" not in page
    url = reverse("admin:remediation_assessmentsession_finalize", args=[sid])
    assert client.get(url).status_code == 403
    assert client.post(url, {"backend": "local"}).status_code == 403
    changelist = reverse("admin:remediation_orphanedsession_changelist")
    resp = client.post(
        changelist, {"action": "finalize_selected", "_selected_action": [sid], "confirm": "yes"}
    )
    assert FinalizeAttempt.objects.count() == 0
    assert pipeline_sql("SELECT count(*) FROM profiles", fetch="one")[0] == 0
    assert resp.status_code in (200, 302)


def test_action_on_orphans_confirms_then_finalizes_each(client, clear_path):
    client.force_login(_staff(["finalize_session"]))
    sids = [make_session(seed=i) for i in range(3)]
    changelist = reverse("admin:remediation_orphanedsession_changelist")
    confirm = client.post(changelist, {"action": "finalize_selected", "_selected_action": sids})
    assert confirm.status_code == 200 and "Finalize these 3 sessions?" in confirm.content.decode()
    assert FinalizeAttempt.objects.count() == 0
    client.post(
        changelist,
        {
            "action": "finalize_selected",
            "_selected_action": sids,
            "confirm": "yes",
            "backend": "local",
        },
    )
    assert sorted(FinalizeAttempt.objects.values_list("outcome", flat=True)) == ["created"] * 3
    assert pipeline_sql("SELECT count(*) FROM profiles", fetch="one")[0] == 3
    # They are no longer orphans.
    assert "0 orphaned sessions" in client.get(changelist).content.decode()


def test_orphan_list_shows_the_reason_from_the_latest_attempt(client):
    load_reference_data()
    user = User.objects.create_superuser("root", "r@example.org", "pw")
    client.force_login(user)
    sid = make_session()
    with pytest.raises(CommandError):
        call_command("finalize", sid)
    body = client.get(reverse("admin:remediation_orphanedsession_changelist")).content.decode()
    assert 'data-category="rls"' in body and ">42501</code>" in body
    assert "attempt " in body  # the attempt's time beside it


def test_cli_finalize_json_and_errors(capsys, clear_path):
    sid = make_session()
    call_command("finalize", sid, "--json")
    out = json.loads(capsys.readouterr().out.strip())
    assert out["outcome"] == "created" and out["results_url"].endswith(
        sid + "?t=" + out["results_url"].split("?t=")[1]
    )
    call_command("finalize", sid)
    assert "existing" in capsys.readouterr().out
    with pytest.raises(CommandError, match="not a session id"):
        call_command("finalize", "nope")
    with pytest.raises(CommandError, match="1 of 1 sessions were not finalized"):
        call_command("finalize", "00000000-0000-4000-8000-000000000001")


def test_a_malformed_or_unknown_session_id_is_a_404_not_an_error(client, clear_path):
    client.force_login(_staff(["finalize_session"]))
    for bad in ("not-a-uuid", "00000000-0000-4000-8000-00000000dead"):
        url = f"/admin/remediation/assessmentsession/{bad}/finalize/"
        assert client.get(url).status_code == 404
        assert client.post(url, {"backend": "local"}).status_code == 404
    assert FinalizeAttempt.objects.count() == 0
