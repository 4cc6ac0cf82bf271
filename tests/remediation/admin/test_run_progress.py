"""The run page's progress endpoint: the run's figures as the database has them now, for the
page's poll; the run page's permission; no refresh of the whole page."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from remediation import jobs
from remediation.models import BackfillRun
from tests.factories import load_reference_data, make_session

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


def _staff(name: str, *perms: str) -> User:
    user = User.objects.create_user(name, f"{name}@example.org", "pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=perms))
    return User.objects.get(pk=user.pk)


def test_progress_json_says_what_the_run_row_says(client, pipeline_db):
    load_reference_data()
    ids = [make_session(seed=i) for i in range(4)]
    run = jobs.diagnosis_start(session_ids=ids, enqueue=False, batch_size=3)
    url = reverse("admin:remediation_backfillrun_progress", args=[run.pk])
    client.force_login(_staff("viewer", "view_backfillrun"))

    def read() -> dict:
        resp = client.get(url)
        assert resp.status_code == 200 and "no-store" in resp["Cache-Control"]
        return resp.json()

    first = read()
    assert (first["state"], first["processed"], first["estimated_total"]) == ("enqueued", 0, 4)
    assert first["active"] is True and first["text"]["percent"] == "0.0%"
    assert jobs.process_batch(run.pk, run.batch_token, enqueue_next=False) == "next"
    run.refresh_from_db()
    second = read()
    assert second["processed"] == run.processed == 3 and second["state"] == run.state
    assert second["counts"] == run.counts and second["text"]["percent"] == "75.0%"
    jobs.run_until_done(run.pk)
    run.refresh_from_db()
    last = read()
    assert (last["state"], last["active"], last["processed"]) == (run.state, False, 4)
    assert last["finished_at"] == run.finished_at.isoformat()
    assert last["text"]["eta"] == ""  # no ETA once it has ended
    assert (
        client.get(reverse("admin:remediation_backfillrun_progress", args=[9999])).status_code
        == 404
    )


def test_progress_json_needs_the_run_page_permission(client, pipeline_db):
    run = BackfillRun.objects.create(kind="diagnosis", selection="ids", estimated_total=1)
    url = reverse("admin:remediation_backfillrun_progress", args=[run.pk])
    client.force_login(_staff("orphans_only", "view_orphanedsession"))
    assert client.get(url).status_code == 403
    assert (
        client.get(reverse("admin:remediation_backfillrun_change", args=[run.pk])).status_code
        == 403
    )
    client.logout()
    assert client.get(url).status_code == 302  # to the login page
