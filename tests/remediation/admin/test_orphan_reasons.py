"""The orphan list's reasons: each with its time, stale after a fix or gate change (and never
"profile created" on a session without a profile), filtered by reason and SQLSTATE through
the ledger and the plain definition alike, re-diagnosed for the whole filter. Real
PostgreSQL, both schema variants."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

import pytest
from django.contrib.auth.models import User
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from remediation import jobs, selectors
from remediation.fixes import executor
from remediation.models import BackfillRun, FinalizeAttempt, RunbookRecord, SessionDiagnosis
from remediation.selectors.changes import last_write_path_change
from remediation.services import session_diagnose
from remediation.services.orphan_ledger import orphan_ledger_create, orphan_ledger_drop
from tests.factories import load_reference_data, make_session

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)

URL = "/admin/remediation/orphanedsession/"
RUNBOOK = "admin:runbook_action"


@pytest.fixture
def root(client, db):
    client.force_login(User.objects.create_superuser("root", "root@example.org", "pw-tests-1"))
    return client


def _listed(client, query: str = "") -> dict[str, selectors.Reason | None]:
    resp = client.get(f"{URL}?{query}")
    assert resp.status_code == 200
    return {str(obj.pk): obj._reason for obj in resp.context["cl"].result_list}


def _attempt(sid: str, outcome: str, at, reason: str = "", sqlstate: str = "") -> None:
    FinalizeAttempt.objects.create(
        session_id=sid,
        backend="local",
        started_at=at,
        outcome=outcome,
        reason=reason,
        sqlstate=sqlstate,
    )


def test_reasons_go_stale_after_a_gate_or_fix_change_and_re_diagnosis_renews_them(
    schema_variant, root
):
    load_reference_data()
    diagnosed = [make_session(seed=i) for i in range(2)]
    # Older than the others: never the runbook's test session (the newest orphan).
    untouched = make_session(seed=9, completed_at=timezone.now() - timedelta(days=10))
    for sid in diagnosed:
        session_diagnose(session_id=sid)
    listed = _listed(root)
    for sid in diagnosed:
        r = listed[sid]
        assert (r.category, r.sqlstate) == (
            schema_variant.first_blocker,
            schema_variant.first_blocker_sqlstate,
        )
        assert r.at == SessionDiagnosis.objects.get(session_id=sid).checked_at and not r.stale
    assert listed[untouched] is None
    assert "stale" not in root.get(URL).content.decode()

    # A refused or unchanged fix run changed nothing: the reasons stay current.
    root.post(reverse(RUNBOOK, args=["rollback_a"]), {"confirm": "yes"})
    assert RunbookRecord.objects.get(kind="change").results["outcome"] == "unchanged"
    assert not any(r and r.stale for r in _listed(root).values())

    # A gate set through the runbook: every reason found before it is stale, saying why.
    root.post(reverse(RUNBOOK, args=["version_v121"]), {"confirm": "yes"})
    change = last_write_path_change()
    assert change is not None and "results_version" in change.what
    listed = _listed(root)
    for sid in diagnosed:
        assert listed[sid].stale and listed[sid].changed_after == change
    body = root.get(URL).content.decode()
    assert body.count('class="reason-stale"') >= len(diagnosed)
    assert "results_version set to v1.2.1" in body

    # Re-diagnose the filter (this reason only): the page counts it first, starts nothing.
    query = f"reason={schema_variant.first_blocker}"
    matching = set(_listed(root, query))
    assert set(diagnosed) <= matching and untouched not in matching
    confirm = root.get(f"{URL}diagnose/?{query}").content.decode()
    assert f'id="diagnose-total">{len(matching)}<' in confirm and not BackfillRun.objects.exists()
    assert f"why no profile: {selectors.REASON_WORDS[schema_variant.first_blocker]}" in confirm
    resp = root.post(f"{URL}diagnose/?{query}", {"confirm": "yes"})
    assert resp.status_code == 302 and resp["Location"].endswith(f"?{query}")
    run = BackfillRun.objects.get(kind="diagnosis")
    assert {str(s) for s in run.items.values_list("session_id", flat=True)} == matching
    progress = root.get(f"{URL}?{query}").content.decode()
    assert 'id="diagnosis-progress"' in progress and "/progress.json" in progress
    jobs.run_until_done(run.pk)
    listed = _listed(root)
    for sid in matching:
        assert not listed[sid].stale and listed[sid].at > change.at
    assert listed[untouched] is None


def test_a_fix_applied_outside_the_portal_counts_from_the_pipeline_record(pipeline_db):
    """No runbook record: the pipeline database's own record of the applied fix is the change
    (a rollback outside the portal leaves no trace: then no change is known)."""
    assert last_write_path_change() is None
    before = timezone.now()
    executor.run("E")
    try:
        change = last_write_path_change()
        assert change is not None and change.what == "Fix E applied" and change.at >= before
        assert not RunbookRecord.objects.exists()
    finally:
        executor.run("E", reverse=True)
    assert last_write_path_change() is None


def test_a_rolled_back_profile_never_shows_as_created(pipeline_db, root):
    """An orphan whose latest attempt created a profile (rolled back since) says it is not
    diagnosed since then, marked stale, whatever the fixes did."""
    load_reference_data()
    sid = make_session(seed=3)
    at = timezone.now() - timedelta(hours=1)
    _attempt(sid, "created", at)
    reason = _listed(root)[sid]
    assert reason.found_profile and reason.stale and reason.changed_after is None
    body = root.get(URL).content.decode()
    assert "not diagnosed since" in body and "but the session has no profile now" in body
    assert "profile created" in body  # only inside the quote of what the attempt said then
    assert sid in {str(s) for s in selectors.orphaned_sessions().values_list("pk", flat=True)}


@pytest.mark.parametrize("ledger", [False, True], ids=["plain", "ledger"])
def test_filters_by_reason_and_sqlstate_match_the_latest_reasons(schema_variant, root, ledger):
    load_reference_data()
    now = timezone.now()
    ids = [make_session(seed=20 + n) for n in range(5)]
    diagnosed, check_failed, was_created, newer_attempt, _nothing = ids
    session_diagnose(session_id=diagnosed)
    session_diagnose(session_id=newer_attempt)  # then an attempt after it wins
    _attempt(check_failed, "failed", now - timedelta(minutes=5), "check", "23514")
    _attempt(was_created, "created", now - timedelta(minutes=5))
    _attempt(newer_attempt, "failed", timezone.now() + timedelta(seconds=1), "busy", "55P03")
    orphans = {str(s) for s in selectors.orphaned_sessions().values_list("pk", flat=True)}
    latest = selectors.latest_reasons(list(orphans))
    assert latest[newer_attempt].category == "busy"
    if ledger:
        orphan_ledger_create(actor="test")
    try:
        cases = {
            f"reason={schema_variant.first_blocker}": {
                s for s, r in latest.items() if r.category == schema_variant.first_blocker
            },
            "reason=check": {s for s, r in latest.items() if r.category == "check"},
            "reason=busy&sqlstate=55P03": {newer_attempt},
            "sqlstate=23514": {s for s, r in latest.items() if r.sqlstate == "23514"},
            "sqlstate=42501": {s for s, r in latest.items() if r.sqlstate == "42501"},
            "reason=not_diagnosed": {
                s for s in orphans if s not in latest or latest[s].found_profile
            },
        }
        assert diagnosed in cases[f"reason={schema_variant.first_blocker}"]
        assert {was_created, _nothing} <= cases["reason=not_diagnosed"]
        for query, expected in cases.items():
            resp = root.get(f"{URL}?{query}")
            got = {str(obj.pk) for obj in resp.context["cl"].result_list}
            assert got == expected, query
            assert resp.context["cl"].source == ("ledger" if ledger else "plain"), query

        # Sorted by reason (o=2, the column): grouped by the words then the SQLSTATE, the
        # sessions with no reason that holds last (first descending), newest first within.
        def key(r):
            if r is None or r.found_profile:
                return (1, "", "")
            return (0, r.words, r.sqlstate)

        for query, descending in (("o=2", False), ("o=-2", True)):
            resp = root.get(f"{URL}?{query}")
            rows = list(resp.context["cl"].result_list)
            assert {str(o.pk) for o in rows} == orphans, query
            keys = [key(o._reason) for o in rows]
            assert keys == sorted(keys, reverse=descending), query
            for a, b in pairwise(rows):
                if key(a._reason) == key(b._reason):
                    assert a.completed_at >= b.completed_at, query
        assert len({key(r) for r in latest.values()}) >= 3  # the sort had groups to order

        # Bad values say what is wrong and match nothing; the page answers.
        for query, words in (
            ("sqlstate=4250", "not a SQLSTATE"),
            ("reason=nope", "Unknown reason"),
        ):
            resp = root.get(f"{URL}?{query}", follow=True)
            assert resp.status_code == 200 and words in resp.content.decode()
            assert list(resp.context["cl"].result_list) == []
        # The unfiltered list never scans the reasons (its fast path stays as it was).
        with CaptureQueriesContext(connections["default"]) as queries:
            _listed(root)
        assert not any("DISTINCT ON (session_id)" in q["sql"] for q in queries.captured_queries)
    finally:
        if ledger:
            orphan_ledger_drop(actor="test")
