"""The orphan list and the read-only admin over the pipeline tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connections
from django.urls import reverse
from django.utils import timezone

from remediation import selectors
from remediation.dev.demo import seed_demo
from tests.factories import load_reference_data, make_session

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def demo():
    return seed_demo(seed=11, now=timezone.now(), force=True)


@pytest.fixture
def staff_client(client):
    user = User.objects.create_superuser("root", "root@example.org", "pw-for-tests-only")
    client.force_login(user)
    return client


def _orphan_ids_by_sql(where: str = "", params=None) -> set[str]:
    with connections["pipeline"].cursor() as cur:
        cur.execute(
            "SELECT s.id::text FROM assessment_sessions s WHERE s.status = 'completed'"
            " AND NOT EXISTS (SELECT 1 FROM profiles p WHERE p.session_id = s.id)" + where,
            params or [],
        )
        return {r[0] for r in cur.fetchall()}


def test_orphan_selector_returns_exactly_the_orphans(demo):
    expected = _orphan_ids_by_sql()
    got = {str(pk) for pk in selectors.orphaned_sessions().values_list("pk", flat=True)}
    assert got == expected
    assert len(expected) == demo.orphans
    # An in-progress session and a session with a profile are never orphans.
    with connections["pipeline"].cursor() as cur:
        cur.execute("SELECT session_id::text FROM profiles LIMIT 1")
        with_profile = cur.fetchone()[0]
        cur.execute("SELECT id::text FROM assessment_sessions WHERE status <> 'completed' LIMIT 1")
        unfinished = cur.fetchone()[0]
    assert with_profile not in got and unfinished not in got


def test_orphan_admin_lists_them_with_filters(staff_client, demo):
    url = reverse("admin:remediation_orphanedsession_changelist")
    resp = staff_client.get(url)
    assert resp.status_code == 200
    assert f"{demo.orphans} orphaned sessions" in resp.content.decode()
    since = (timezone.now() - timedelta(days=7)).date()
    resp = staff_client.get(url, {"completed_at__from": since.isoformat()})
    expected = _orphan_ids_by_sql(
        " AND s.completed_at >= %s", [datetime.combine(since, datetime.min.time(), tzinfo=UTC)]
    )
    body = resp.content.decode()
    assert f"{len(expected)} orphaned session" in body
    for sid in list(expected)[:5]:
        assert sid in body
    # FC presence: the demo has no FC responses at all.
    resp = staff_client.get(url, {"fc": "responses"})
    assert "0 orphaned sessions" in resp.content.decode()
    # Sorting by completion date ascending puts the oldest orphan first.
    resp = staff_client.get(url, {"o": "3"})
    assert resp.status_code == 200
    # A malformed date is reported, not a crash.
    resp = staff_client.get(url, {"completed_at__from": "yesterday"})
    assert resp.status_code == 200 and "Not a date" in resp.content.decode()


def test_session_search_by_id_email_and_token(staff_client, demo):
    with connections["pipeline"].cursor() as cur:
        cur.execute(
            "SELECT id::text, email, share_token FROM assessment_sessions ORDER BY created_at LIMIT 1 OFFSET 17"
        )
        sid, email, token = cur.fetchone()
    url = reverse("admin:remediation_assessmentsession_changelist")
    for term in (sid, email, token):
        body = staff_client.get(url, {"q": term}).content.decode()
        assert sid in body, term
        assert "1 session" in body
    body = staff_client.get(url, {"q": "nobody@nowhere.example"}).content.decode()
    assert "0 sessions" in body


def test_session_page_shows_pipeline_state(staff_client, demo):
    with connections["pipeline"].cursor() as cur:
        cur.execute(
            "SELECT DISTINCT session_id::text FROM assessment_responses"
            " WHERE answer_value IS NULL AND answer_numeric IS NOT NULL LIMIT 1"
        )
        sid = cur.fetchone()[0]
        cur.execute(
            "SELECT count(*) FILTER (WHERE answer_value IS NULL AND answer_numeric IS NOT NULL)"
            " FROM assessment_responses WHERE session_id = %s",
            [sid],
        )
        only_numeric = cur.fetchone()[0]
    resp = staff_client.get(reverse("admin:remediation_assessmentsession_change", args=[sid]))
    body = resp.content.decode()
    assert resp.status_code == 200
    assert "Answers only in answer_numeric" in body
    assert f"<td>{only_numeric}</td>" in body
    assert "none: orphaned" in body
    # A session with a profile links to it and shows its version.
    with connections["pipeline"].cursor() as cur:
        cur.execute("SELECT session_id::text, type_code FROM profiles LIMIT 1")
        sid2, type_code = cur.fetchone()
    body = staff_client.get(
        reverse("admin:remediation_assessmentsession_change", args=[sid2])
    ).content.decode()
    assert f"{type_code} v1.2.0" in body


@pytest.mark.parametrize(
    "name",
    [
        "assessmentsession",
        "orphanedsession",
        "assessmentresponse",
        "profile",
        "scoringkey",
        "scoringconfig",
        "typeprototype",
        "calibrationmodel",
        "fcblock",
        "fcoption",
        "fcresponse",
        "fcscore",
    ],
)
def test_admin_pages_render_for_staff_and_refuse_anonymous(client, staff_client, demo, name):
    url = reverse(f"admin:remediation_{name}_changelist")
    assert staff_client.get(url).status_code == 200
    anonymous = client.__class__().get(url)
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]


def test_non_staff_users_get_nothing(client, demo):
    user = User.objects.create_user("plain", "plain@example.org", "pw-for-tests-only")
    client.force_login(user)
    resp = client.get(reverse("admin:remediation_orphanedsession_changelist"))
    assert resp.status_code == 302 and "/admin/login/" in resp["Location"]


def test_pipeline_tables_are_read_only_in_admin(staff_client, demo):
    with connections["pipeline"].cursor() as cur:
        cur.execute("SELECT id::text, email FROM assessment_sessions LIMIT 1")
        sid, email = cur.fetchone()
    url = reverse("admin:remediation_assessmentsession_change", args=[sid])
    resp = staff_client.post(url, {"email": "hacked@example.org"})
    assert resp.status_code == 403
    with connections["pipeline"].cursor() as cur:
        cur.execute("SELECT email FROM assessment_sessions WHERE id = %s", [sid])
        assert cur.fetchone()[0] == email
    assert staff_client.get(reverse("admin:remediation_profile_add")).status_code == 403


def test_re_diagnose_all_matching_runs_in_the_background(admin_client):
    """The orphan list's "Re-diagnose all matching" starts a diagnosis run over the filter."""
    from remediation import jobs
    from remediation.models import BackfillRun, SessionDiagnosis

    load_reference_data()
    ids = [make_session(seed=i) for i in range(3)]
    url = reverse("admin:remediation_orphanedsession_diagnose")
    # A GET, or a POST without confirm=yes, shows the count and starts nothing.
    for asked in (admin_client.get(url), admin_client.post(url)):
        assert asked.status_code == 200
        assert 'id="diagnose-total">3<' in asked.content.decode()
    assert not BackfillRun.objects.exists()
    resp = admin_client.post(url, {"confirm": "yes"})
    run = BackfillRun.objects.get(kind="diagnosis")
    assert resp["Location"] == reverse("admin:remediation_orphanedsession_changelist")
    assert run.estimated_total == 3 and not SessionDiagnosis.objects.exists()
    jobs.run_until_done(run.pk)
    stored = {str(d.session_id): d.category for d in SessionDiagnosis.objects.all()}
    assert stored == {sid: "rls" for sid in ids}
    page = admin_client.get(
        reverse("admin:remediation_orphanedsession_changelist")
    ).content.decode()
    assert page.count('data-category="rls"') == 3 and page.count(">42501</code>") == 3
