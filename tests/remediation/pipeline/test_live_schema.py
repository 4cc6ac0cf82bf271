"""The live schema decides: columns the pipeline database lacks are neither written nor read.

A database rebuilt from the pipeline's migrations has no assessment_sessions.finalized_at or
share_token_expires_at and no profiles.share_token. Here the emulated schema loses them for
the test; finalize, backfill, rollback and every admin page must still work.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from remediation import jobs
from remediation.models import FinalizeAttempt
from remediation.pipeline import schema
from remediation.services import session_finalize
from tests.factories import make_session, pipeline_sql, rollback_run

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)

DROPPED = (
    ("assessment_sessions", "finalized_at", "timestamptz NULL"),
    ("assessment_sessions", "share_token_expires_at", "timestamptz NULL"),
    ("profiles", "share_token", "text NOT NULL DEFAULT replace(gen_random_uuid()::text, '-', '')"),
)


@pytest.fixture
def lean(clear_path):
    """The optional columns dropped (restored afterwards)."""
    for table, column, _ in DROPPED:
        pipeline_sql(f"ALTER TABLE public.{table} DROP COLUMN {column}")
    schema.forget()
    yield
    pipeline_sql("DELETE FROM profiles")
    for table, column, definition in DROPPED:
        pipeline_sql(f"ALTER TABLE public.{table} ADD COLUMN {column} {definition}")
    pipeline_sql(
        "ALTER TABLE public.profiles ADD CONSTRAINT profiles_share_token_key UNIQUE (share_token)"
    )
    schema.forget()


def test_the_shape_is_read_from_the_catalog(lean):
    shapes = schema.shapes()
    assert not shapes["assessment_sessions"].has("finalized_at")
    assert not shapes["profiles"].has("share_token") and shapes["profiles"].has("type_code")
    from remediation.models import AssessmentSession, Profile

    assert set(schema.missing_fields(AssessmentSession)) == {
        "finalized_at",
        "share_token_expires_at",
    }
    assert schema.missing_fields(Profile) == ["share_token"]


def test_finalize_writes_only_the_columns_that_exist(lean):
    sid = make_session()
    attempt = session_finalize(session_id=sid)
    assert attempt.outcome == "created", attempt.explanation
    status, completed = pipeline_sql(
        "SELECT status, completed_at IS NOT NULL FROM assessment_sessions WHERE id = %s",
        [sid],
        fetch="one",
    )
    assert (status, completed) == ("completed", True)
    assert (
        pipeline_sql("SELECT count(*) FROM profiles WHERE session_id = %s", [sid], fetch="one")[0]
        == 1
    )


def test_a_backfill_and_its_rollback_on_the_lean_schema(lean):
    ids = [make_session(seed=i) for i in range(3)]
    before = {
        r[0]: r[1]
        for r in pipeline_sql(
            "SELECT id::text, to_jsonb(s) FROM assessment_sessions s ORDER BY id", fetch="all"
        )
    }
    run = jobs.run_until_done(jobs.backfill_start(selection="ids", ids=ids, enqueue=False).pk)
    assert (run.created, run.failed) == (3, 0)
    report = rollback_run(run.pk)
    assert report["restored"] == 3 and not report["conflicts"] and not report["errors"]
    after = {
        r[0]: r[1]
        for r in pipeline_sql(
            "SELECT id::text, to_jsonb(s) FROM assessment_sessions s ORDER BY id", fetch="all"
        )
    }
    assert after == before
    assert pipeline_sql("SELECT count(*) FROM profiles", fetch="one")[0] == 0


def test_every_admin_page_answers_on_the_lean_schema(lean, admin_client):
    sid = make_session()
    session_finalize(session_id=sid)
    profile_id = pipeline_sql("SELECT id FROM profiles WHERE session_id = %s", [sid], fetch="one")[
        0
    ]
    orphan = make_session(seed=9)
    pages = [
        reverse("admin:remediation_assessmentsession_changelist"),
        reverse("admin:remediation_assessmentsession_changelist") + f"?q={sid}",
        reverse("admin:remediation_assessmentsession_change", args=[sid]),
        reverse("admin:remediation_assessmentsession_finalize", args=[orphan]),
        reverse("admin:remediation_orphanedsession_changelist"),
        reverse("admin:remediation_orphanedsession_export"),
        reverse("admin:remediation_profile_changelist"),
        reverse("admin:remediation_profile_changelist") + f"?q={sid}",
        reverse("admin:remediation_profile_change", args=[profile_id]),
        reverse("admin:remediation_assessmentresponse_changelist") + f"?q={sid}",
        reverse("admin:runbook"),
        reverse("admin:health"),
    ]
    for url in pages:
        resp = admin_client.get(url)
        body = b"".join(resp.streaming_content) if resp.streaming else resp.content
        assert resp.status_code == 200, (url, resp.status_code, body[:300])
    page = admin_client.get(reverse("admin:remediation_assessmentsession_change", args=[sid]))
    assert b"Share token expires at" not in page.content  # a field the table lacks is left out


def test_a_failed_session_update_is_named_and_is_not_a_profile_write_error(clear_path):
    """A session update the database refuses takes the session's profile with it, says which
    statement failed, and does not count as a profile write error."""
    from django.utils import timezone

    from remediation.selectors.health import attempt_figures

    pipeline_sql(
        "CREATE FUNCTION public.refuse_session_update() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN RAISE EXCEPTION 'sessions are read only here' USING ERRCODE = 'P0001'; END $$"
    )
    pipeline_sql(
        "CREATE TRIGGER refuse_session_update BEFORE UPDATE ON public.assessment_sessions"
        " FOR EACH ROW EXECUTE FUNCTION public.refuse_session_update()"
    )
    try:
        sid = make_session()
        started = timezone.now()
        attempt = session_finalize(session_id=sid)
        assert attempt.outcome == "failed"
        assert attempt.failed_statement == "session update"
        assert attempt.explanation.startswith("The session update failed")
        assert (
            pipeline_sql("SELECT count(*) FROM profiles WHERE session_id = %s", [sid], fetch="one")[
                0
            ]
            == 0
        )
        figures = attempt_figures(started, timezone.now())
        assert figures["write_error_total"] == 0
        assert FinalizeAttempt.objects.filter(session_id=sid, sqlstate="P0001").count() == 1
    finally:
        pipeline_sql("DROP TRIGGER refuse_session_update ON public.assessment_sessions")
        pipeline_sql("DROP FUNCTION public.refuse_session_update()")
