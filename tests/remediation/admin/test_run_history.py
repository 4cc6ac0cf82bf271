"""What a rolled-back run and its sessions' pages say: the run is "rolled back" (by which
run, when); a session's page shows the profile's history (created by run X, rolled back by
run Y) and links only to what exists now; the run list filters by rolled back; the run page
links to its tasks, attempts, alerts and the runs it relates to."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from remediation import jobs
from remediation.models import Alert, BackfillRun, FinalizeAttempt, Profile
from tests.factories import make_session

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


@pytest.fixture
def rolled_back(clear_variant):
    ids = [make_session(seed=i) for i in range(3)]
    run = jobs.run_until_done(jobs.backfill_start(selection="ids", ids=ids, enqueue=False).pk)
    assert run.created == 3
    rollback = jobs.run_until_done(jobs.run_rollback(run.pk, enqueue=False).pk)
    run.refresh_from_db()
    return ids, run, rollback


def test_a_session_page_shows_the_history_and_no_link_to_a_deleted_profile(
    rolled_back, admin_client
):
    ids, run, rollback = rolled_back
    assert not Profile.objects.filter(session_id=ids[0]).exists()
    # The run's attempt recorded a results link when it created the profile.
    FinalizeAttempt.objects.create(
        session_id=ids[0],
        backend="local",
        source="backfill",
        started_at=timezone.now(),
        outcome="created",
        results_url="http://results.example/r/abc",
        run_id=run.pk,
    )
    page = admin_client.get(
        reverse("admin:remediation_assessmentsession_change", args=[ids[0]])
    ).content.decode()
    history = page[page.index('id="profile-history"') :]
    history = history[: history.index("</ol>")]
    run_url = reverse("admin:remediation_backfillrun_change", args=[run.pk])
    rollback_url = reverse("admin:remediation_backfillrun_change", args=[rollback.pk])
    assert f'profile created by <a href="{run_url}">Backfill #{run.pk}</a>' in history
    assert (
        f'rolled back (the rows as before run #{run.pk}) by <a href="{rollback_url}">'
        f"Rollback #{rollback.pk}</a>" in history
    )
    assert history.index("profile created") < history.index("rolled back")
    assert '<span id="profile-now">now: no profile</span>' in page
    assert "http://results.example/r/abc" not in page
    assert "profile no longer exists" in page


def test_a_rolled_back_run_says_so_in_the_list_and_on_its_page(rolled_back, admin_client):
    _, run, rollback = rolled_back
    changelist = reverse("admin:remediation_backfillrun_changelist")
    listed = admin_client.get(changelist + "?rolled_back=yes").content.decode()
    assert f"rolled back by run #{rollback.pk} on " in listed
    not_rolled = admin_client.get(changelist + "?rolled_back=no").content.decode()
    assert f"rolled back by run #{rollback.pk}" not in not_rolled
    page = admin_client.get(
        reverse("admin:remediation_backfillrun_change", args=[run.pk])
    ).content.decode()
    assert (
        f'rolled back by <a href="{reverse("admin:remediation_backfillrun_change", args=[rollback.pk])}">'
        f"run #{rollback.pk}</a> on " in page
    )
    # Its links: the tasks (none through django-q2 here), attempts, the follow-up run.
    links = page[page.index('id="run-links"') :]
    links = links[: links.index("</div>")]
    assert f"?group=run-{run.pk}" in links and 'id="run-tasks-done">0 done' in links
    attempts = FinalizeAttempt.objects.filter(run_id=run.pk).count()
    assert f'?run_id={run.pk}" id="run-attempts">{attempts}</a>' in links
    assert (
        f'Follow-up run: <a href="{reverse("admin:remediation_backfillrun_change", args=[rollback.pk])}"'
        in links
    )
    assert "Alerts open while it ran: none" in links
    back = admin_client.get(
        reverse("admin:remediation_backfillrun_change", args=[rollback.pk])
    ).content.decode()
    assert f'id="run-source-link">Backfill #{run.pk}' in back


def test_the_run_page_lists_alerts_open_while_it_ran(rolled_back, admin_client):
    _, run, _ = rolled_back
    alert = Alert.objects.create(
        rule="conversion_drop",
        severity="critical",
        message="m",
        first_seen=run.started_at,
        last_seen=run.finished_at,
    )
    Alert.objects.create(  # resolved before the run started: not linked
        rule="old",
        severity="warning",
        message="m",
        state="resolved",
        first_seen=run.created_at.replace(year=2000),
        last_seen=run.created_at.replace(year=2000),
        resolved_at=run.created_at.replace(year=2000),
    )
    page = admin_client.get(
        reverse("admin:remediation_backfillrun_change", args=[run.pk])
    ).content.decode()
    url = reverse("admin:remediation_alert_change", args=[alert.pk])
    assert f'<a href="{url}" class="run-alert">conversion_drop (critical, open)</a>' in page
    assert "old (warning" not in page


def test_an_active_run_links_to_the_run_holding_the_same_sessions(clear_variant, admin_client):
    ids = [make_session(seed=i) for i in range(2)]
    first = jobs.backfill_start(selection="ids", ids=ids, enqueue=False)
    second = jobs.backfill_start(selection="ids", ids=ids[:1], enqueue=False)  # past the service
    page = admin_client.get(
        reverse("admin:remediation_backfillrun_change", args=[first.pk])
    ).content.decode()
    assert "Also holding 1 of this run's pending session:" in page
    assert (
        f'{reverse("admin:remediation_backfillrun_change", args=[second.pk])}">Backfill #{second.pk}'
        in page
    )
    assert BackfillRun.objects.count() == 2
