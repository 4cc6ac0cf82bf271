"""Starting and steering backfills from the admin: permissions, confirmation, run page, CSV."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from remediation import jobs as bf
from remediation.models import BackfillRun
from tests.factories import make_session, pipeline_sql, start_new_backfill

pytestmark = pytest.mark.django_db(databases="__all__")
ORPHANS = "admin:remediation_orphanedsession_changelist"


def _user(*perms):
    user = User.objects.create_user("support", "s@example.org", "pw", is_staff=True)
    names = ["view_orphanedsession", "view_assessmentsession", "view_backfillrun", *perms]
    user.user_permissions.set(Permission.objects.filter(codename__in=names))
    return User.objects.get(pk=user.pk)


def test_backfill_selected_confirms_then_enqueues_and_logs(client, clear_path):
    client.force_login(_user("run_backfill"))
    ids = [make_session(seed=i) for i in range(3)]
    url = reverse(ORPHANS)
    confirm = client.post(url, {"action": "backfill_selected", "_selected_action": ids})
    body = confirm.content.decode()
    assert confirm.status_code == 200 and 'id="backfill-count">3<' in body and ids[0] in body
    assert BackfillRun.objects.count() == 0
    resp = client.post(
        url,
        {
            "action": "backfill_selected",
            "_selected_action": ids,
            "confirm": "yes",
            "backend": "local",
            "batch_size": "2",
        },
    )
    run = BackfillRun.objects.get()
    assert resp.status_code == 302 and resp["Location"].endswith(f"/backfillrun/{run.pk}/change/")
    assert (run.selection, run.estimated_total, run.batch_size, run.started_by_name) == (
        "ids",
        3,
        2,
        "support",
    )
    assert LogEntry.objects.filter(
        object_id=str(run.pk), change_message__startswith="Started backfill"
    ).exists()
    run = bf.run_until_done(run.pk)
    assert run.created == 3
    page = client.get(
        reverse("admin:remediation_backfillrun_change", args=[run.pk])
    ).content.decode()
    assert "100.0%" in page and "succeeded" in page


def test_backfill_all_matching_the_filter(client, clear_path):
    client.force_login(_user("run_backfill"))
    ids = [make_session(seed=i) for i in range(4)]
    url = reverse("admin:remediation_orphanedsession_backfill")
    listing = client.get(reverse(ORPHANS)).content.decode()
    assert "Backfill all matching this filter" in listing
    page = client.get(url, {"fc": "none"}).content.decode()
    assert 'id="backfill-count">4<' in page
    client.post(url, {"fc": "none", "backend": "local", "batch_size": "200", "dry_run": "on"})
    run = BackfillRun.objects.get()
    assert run.selection == "filter" and run.dry_run and run.selection_params == {"fc": "none"}
    assert sorted(str(s) for s in run.items.values_list("session_id", flat=True)) == sorted(ids)


def test_without_the_permission_nothing_starts(client, clear_path):
    client.force_login(_user())
    ids = [make_session()]
    listing = client.get(reverse(ORPHANS)).content.decode()
    assert "Backfill all matching this filter" not in listing and "backfill_selected" not in listing
    client.post(
        reverse(ORPHANS),
        {
            "action": "backfill_selected",
            "_selected_action": ids,
            "confirm": "yes",
            "backend": "local",
            "batch_size": "2",
        },
    )
    assert client.get(reverse("admin:remediation_orphanedsession_backfill")).status_code == 403
    assert (
        client.post(
            reverse("admin:remediation_orphanedsession_backfill"), {"batch_size": "5"}
        ).status_code
        == 403
    )
    assert client.get(reverse("admin:remediation_backfillrun_add")).status_code == 403
    assert BackfillRun.objects.count() == 0


@pytest.mark.usefixtures("one_lane")
def test_run_page_controls_and_csv_export(client, clear_path):
    client.force_login(_user("run_backfill"))
    ids = [make_session(seed=i) for i in range(4)]
    run = bf.backfill_start(selection="ids", ids=ids, batch_size=2, enqueue=False)
    bf.process_batch(run.pk, run.batch_token, enqueue_next=False)
    page = client.get(
        reverse("admin:remediation_backfillrun_change", args=[run.pk])
    ).content.decode()
    progress = reverse("admin:remediation_backfillrun_progress", args=[run.pk])
    assert f'data-progress-url="{progress}"' in page and 'http-equiv="refresh"' not in page
    assert "50.0%" in page and 'id="run-pause"' in page
    control = reverse("admin:remediation_backfillrun_control", args=[run.pk, "pause"])
    assert client.get(control).status_code == 405
    client.post(control)
    run.refresh_from_db()
    assert run.state == "pausing"
    # Rolling back needs its own (engineer) permission.
    rollback = reverse("admin:remediation_backfillrun_control", args=[run.pk, "rollback"])
    assert client.post(rollback).status_code == 403
    export = client.get(reverse("admin:remediation_backfillrun_items_csv", args=[run.pk]))
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert [r["outcome"] for r in rows] == ["created", "created", "pending", "pending"]
    assert rows[0]["session_id"] == ids[0]


def test_new_backfill_from_an_uploaded_csv_reports_bad_lines(client, clear_path):
    client.force_login(_user("run_backfill"))
    ids = [make_session(seed=i) for i in range(2)]
    add = reverse("admin:remediation_backfillrun_add")
    bad = SimpleUploadedFile("ids.csv", f"session_id\n{ids[0]}\nbogus\n".encode())
    page = client.post(
        add, {"csv_file": bad, "backend": "local", "batch_size": "10"}
    ).content.decode()
    assert "line 3: &#x27;bogus&#x27; is not a session id" in page
    assert BackfillRun.objects.count() == 0
    good = SimpleUploadedFile("ids.csv", f"session_id\n{ids[0]}\n{ids[1]}\n".encode())
    confirm, _ = start_new_backfill(
        client, {"csv_file": good, "backend": "local", "batch_size": "10"}
    )
    assert confirm.context["total"] == 2 and "from the uploaded CSV" in confirm.content.decode()
    run = BackfillRun.objects.get()
    assert run.selection == "csv" and run.estimated_total == 2


def test_rollback_from_the_run_page(client, clear_path):
    user = _user("run_backfill", "rollback_backfill")
    client.force_login(user)
    ids = [make_session(seed=i) for i in range(2)]
    run = bf.run_until_done(bf.backfill_start(selection="ids", ids=ids, enqueue=False).pk)
    assert pipeline_sql("SELECT count(*) FROM profiles", fetch="one")[0] == 2
    resp = client.post(
        reverse("admin:remediation_backfillrun_control", args=[run.pk, "rollback"]),
        {"confirm": "yes"},
    )
    # The rollback is a run of its own: the page it leads to is the rollback run's.
    rollback = BackfillRun.objects.get(source_run=run)
    assert rollback.kind == "rollback" and rollback.estimated_total == 2
    assert resp["Location"] == reverse("admin:remediation_backfillrun_change", args=[rollback.pk])
    assert pipeline_sql("SELECT count(*) FROM profiles", fetch="one")[0] == 2  # not in the request
    bf.run_until_done(rollback.pk)
    assert pipeline_sql("SELECT count(*) FROM profiles", fetch="one")[0] == 0
    page = client.get(
        reverse("admin:remediation_backfillrun_change", args=[run.pk])
    ).content.decode()
    assert "2 sessions restored" in page and f"run #{rollback.pk}" in page
    rollback_page = client.get(resp["Location"]).content.decode()
    assert "Rollback #" in rollback_page and "restored" in rollback_page


def test_malformed_ids_in_urls_are_404s(admin_client):
    assert admin_client.get("/admin/remediation/backfillrun/abc/change/").status_code == 404
    assert admin_client.get("/admin/remediation/backfillrun/999999/change/").status_code == 404
    assert (
        admin_client.get(reverse("admin:runbook_compare"), {"a": "x", "b": "1"}).status_code == 404
    )
