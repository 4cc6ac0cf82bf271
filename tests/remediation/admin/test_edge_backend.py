"""The edge backend is safe to offer (issue 17, point 3): only the Engineer role is offered
it and the server refuses it to others; its confirmation says what the deployed function
does, and when the local diagnosis predicts the write will fail it says so and asks again."""

from __future__ import annotations

import pytest
from django.urls import reverse

from remediation import jobs
from remediation.models import AuditEvent, BackfillRun, FinalizeAttempt
from remediation.services import session_finalize
from remediation.services.sessions import EdgeNotAllowed
from tests.factories import emulated_edge, load_reference_data, make_session, pipeline_sql

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)
ORPHANS = "admin:remediation_orphanedsession_changelist"


@pytest.fixture
def blocked(pipeline_db):
    """A session whose profile write the emulation's RLS refuses (the incident)."""
    load_reference_data()
    return make_session(seed=3)


def _finalize_url(sid):
    return reverse("admin:remediation_assessmentsession_finalize", args=[sid])


def _completed_at(sid):
    return pipeline_sql("SELECT completed_at FROM assessment_sessions WHERE id = %s", [sid], "one")[
        0
    ]


def test_support_is_not_offered_the_edge_backend_and_the_server_refuses_it(
    client, support, blocked
):
    client.force_login(support)
    page = client.get(_finalize_url(blocked)).content.decode()
    assert 'value="local"' in page and 'value="edge"' not in page
    assert client.post(_finalize_url(blocked), {"backend": "edge"}).status_code == 403
    confirm = client.post(
        reverse(ORPHANS), {"action": "backfill_selected", "_selected_action": [blocked]}
    )
    body = confirm.content.decode()
    assert "The edge backend needs the Engineer role" in body
    assert '<option value="edge"' not in body
    crafted = client.post(
        reverse(ORPHANS),
        {
            "action": "backfill_selected",
            "_selected_action": [blocked],
            "confirm": "yes",
            "backend": "edge",
            "batch_size": "10",
        },
    )
    assert crafted.status_code == 200
    assert "The edge backend needs the Engineer role." in crafted.content.decode()
    # The services refuse it too, whatever the page.
    with pytest.raises(jobs.RunError, match="the edge backend needs the Engineer role"):
        jobs.backfill_start(
            selection="ids", ids=[blocked], backend="edge", actor=support, enqueue=False
        )
    with pytest.raises(EdgeNotAllowed):
        session_finalize(session_id=blocked, backend="edge", actor=support)
    assert not BackfillRun.objects.exists() and not FinalizeAttempt.objects.exists()


def test_an_engineer_is_warned_then_asked_again_and_completed_at_is_put_back(
    client, engineer, blocked
):
    client.force_login(engineer)
    page = client.get(_finalize_url(blocked)).content.decode()
    assert 'value="edge"' in page and "overwrites its <code>completed_at</code>" in page
    before = _completed_at(blocked)
    with emulated_edge() as server:
        # First confirmation: the fresh diagnosis predicts the write fails; asked again.
        again = client.post(_finalize_url(blocked), {"backend": "edge"})
        body = again.content.decode()
        assert again.status_code == 200 and 'id="edge-warning"' in body
        assert "predicts the write will fail for 1 of" in body and "rls" in body
        assert 'name="edge_confirmed" value="yes"' in body
        assert server.requests_seen == 0 and not FinalizeAttempt.objects.exists()
        # Second, explicit confirmation: the call is made.
        done = client.post(
            _finalize_url(blocked), {"backend": "edge", "edge_confirmed": "yes"}, follow=True
        )
        assert server.requests_seen == 1
    attempt = FinalizeAttempt.objects.get(session_id=blocked)
    assert attempt.outcome == "ok_without_profile"
    # The emulated function overwrote completed_at; the portal put the pre-image's back.
    assert _completed_at(blocked) == before
    assert attempt.completed_at_restored["to"] == before.isoformat()
    assert attempt.completed_at_restored["from"] != attempt.completed_at_restored["to"]
    assert "the portal put back" in attempt.explanation
    assert "the portal put back" in done.content.decode()
    event = AuditEvent.objects.get(action="finalize.completed_at_restored")
    assert event.target == blocked and event.detail["attempt"] == attempt.pk


def test_an_engineer_edge_backfill_asks_again_when_the_sample_would_fail(client, engineer, blocked):
    client.force_login(engineer)
    params = {"backend": "edge", "batch_size": "10", "confirm": "yes"}
    action = {"action": "backfill_selected", "_selected_action": [blocked]}
    first = client.post(reverse(ORPHANS), {**action, **params})
    body = first.content.decode()
    assert 'id="edge-warning"' in body and "Start the edge backfill anyway" in body
    assert not BackfillRun.objects.exists()
    client.post(reverse(ORPHANS), {**action, **params, "edge_confirmed": "yes"})
    run = BackfillRun.objects.get()
    assert run.backend == "edge" and run.estimated_total == 1


def test_no_second_question_when_the_diagnosis_predicts_success(client, engineer, clear_path):
    client.force_login(engineer)
    sid = make_session(seed=4)
    before = _completed_at(sid)
    with emulated_edge():
        client.post(_finalize_url(sid), {"backend": "edge"})
    attempt = FinalizeAttempt.objects.get(session_id=sid)
    assert attempt.outcome == "created" and _completed_at(sid) == before
    assert attempt.completed_at_restored["to"] == before.isoformat()


def test_support_cannot_resume_or_retry_an_edge_run(client, support, engineer, blocked):
    run = jobs.backfill_start(
        selection="ids", ids=[blocked], backend="edge", actor=engineer, enqueue=False
    )
    BackfillRun.objects.filter(pk=run.pk).update(state="paused")
    client.force_login(support)
    page = client.get(reverse("admin:remediation_backfillrun_change", args=[run.pk]))
    assert 'id="run-resume"' not in page.content.decode()
    resume = reverse("admin:remediation_backfillrun_control", args=[run.pk, "resume"])
    assert client.post(resume).status_code == 403
    assert BackfillRun.objects.get(pk=run.pk).state == "paused"
    client.force_login(engineer)
    assert (
        'id="run-resume"'
        in client.get(
            reverse("admin:remediation_backfillrun_change", args=[run.pk])
        ).content.decode()
    )
