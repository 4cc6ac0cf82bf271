"""The orphan ledger: every sort and filter of the orphan list returns what the plain definition
returns (ties and nulls included), the oldest-first plan walks the ledger instead of the
sessions with profiles, the guard falls back when profiles are deleted, and the runbook check
and confirm page say whether the ledger exists. Real PostgreSQL, both schema variants."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.db import connections
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from remediation.dev.demo import seed_demo
from remediation.models import AuditEvent, OrphanedSession
from remediation.selectors import checks as runbook_checks
from remediation.selectors import orphan_ledger
from remediation.services.orphan_ledger import (
    orphan_ledger_create,
    orphan_ledger_drop,
    orphan_ledger_refresh,
)
from tests.factories import pipeline_sql

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)

URL = "/admin/remediation/orphanedsession/"
# Sorts: o=1 id, o=3 completed_at, o=6 email (list_display order), "-" descending.
SORTS = ["", "o=3", "o=-3", "o=6", "o=-6", "o=1", "o=-1", "o=3.6", "o=-6.3"]
FILTERS = [
    "",
    "age=lt1",
    "age=1to7",
    "age=7to20",
    "age=gt20",
    "fc=responses",
    "fc=none",
    "completed_at__from={from}",
    "completed_at__to={to}",
    "completed_at__from={from}&completed_at__to={to}",
    "completed_at__from={from}&age=gt20&fc=none",
]


@pytest.fixture
def root(db):
    return User.objects.create_superuser("root", "root@example.org", "pw-for-tests-only")


@pytest.fixture
def no_ledger():
    orphan_ledger_drop(actor="test")
    yield
    orphan_ledger_drop(actor="test")


def _ties_and_nulls() -> None:
    """Shared emails, shared completion times, NULL emails and completed sessions without a
    completion time, among orphans and sessions with profiles alike."""
    rows = pipeline_sql(
        "SELECT id::text FROM assessment_sessions WHERE status = 'completed' ORDER BY id",
        fetch="all",
    )
    ids = [r[0] for r in rows]
    tie_time = timezone.now() - timedelta(days=9)
    for n, sid in enumerate(ids[:60]):
        if n % 4 == 0:
            pipeline_sql(
                "UPDATE assessment_sessions SET email = 'same@example.org' WHERE id = %s", [sid]
            )
        elif n % 4 == 1:
            pipeline_sql("UPDATE assessment_sessions SET email = NULL WHERE id = %s", [sid])
        elif n % 4 == 2:
            pipeline_sql(
                "UPDATE assessment_sessions SET completed_at = %s WHERE id = %s", [tie_time, sid]
            )
        else:
            pipeline_sql("UPDATE assessment_sessions SET completed_at = NULL WHERE id = %s", [sid])


def _changelist(root, query: str):
    request = RequestFactory().get(URL + ("?" + query if query else ""))
    request.user = root
    model_admin = admin.site._registry[OrphanedSession]
    return model_admin.get_changelist_instance(request)


def _page(root, query: str) -> tuple[str, list[str], int]:
    cl = _changelist(root, query)
    return cl.source, [str(o.pk) for o in cl.result_list], cl.result_count


def _queries() -> list[str]:
    today = timezone.localdate()
    values = {
        "from": (today - timedelta(days=30)).isoformat(),
        "to": (today - timedelta(days=3)).isoformat(),
    }
    out = []
    for f in FILTERS:
        for s in SORTS:
            out.append("&".join(p for p in (f.format(**values), s) if p))
    return out


def test_every_sort_and_filter_matches_the_plain_definition(schema_variant, root, no_ledger):
    seed_demo(seed=5, sessions=600, now=timezone.now(), force=True)
    _ties_and_nulls()
    queries = _queries()
    plain = {}
    for q in queries:
        for page in ("", "p=2"):
            query = "&".join(p for p in (q, page) if p)
            source, ids, count = _page(root, query)
            assert source == "plain"
            plain[query] = (ids, count)
    # The plain definition itself: completed, no profile (raw SQL, no ORM).
    everything = {
        r[0]
        for r in pipeline_sql(
            "SELECT s.id::text FROM assessment_sessions s WHERE s.status = 'completed'"
            " AND NOT EXISTS (SELECT 1 FROM profiles p WHERE p.session_id = s.id)",
            fetch="all",
        )
    }
    assert plain[""][1] == len(everything) > 100  # more than one page

    result = orphan_ledger_create(actor="test")
    assert result["added"] == len(everything)
    for query, (ids, count) in plain.items():
        source, got, got_count = _page(root, query)
        assert source == "ledger", query
        assert got == ids, (schema_variant.name, query)
        assert got_count == count, (schema_variant.name, query)
        assert set(got) <= everything


def test_changes_after_the_refresh_are_shown_live(schema_variant, root, no_ledger):
    seed_demo(seed=6, sessions=300, now=timezone.now(), force=True)
    orphan_ledger_create(actor="test")
    old = pipeline_sql(
        "SELECT s.id::text FROM assessment_sessions s WHERE s.status = 'completed'"
        " AND NOT EXISTS (SELECT 1 FROM profiles p WHERE p.session_id = s.id)"
        " ORDER BY s.completed_at, s.id DESC LIMIT 1",
        fetch="one",
    )[0]
    # The oldest orphan gets a profile; an in-progress session completes now without one.
    pipeline_sql(
        "SET session_replication_role = replica; INSERT INTO profiles (session_id) VALUES (%s);"
        " SET session_replication_role = DEFAULT",
        [old],
    )
    fresh = pipeline_sql(
        "SELECT id::text FROM assessment_sessions WHERE status = 'in_progress' LIMIT 1", fetch="one"
    )[0]
    pipeline_sql(
        "UPDATE assessment_sessions SET status = 'completed', completed_at = now() WHERE id = %s",
        [fresh],
    )
    queries = ("o=3", "", "o=6", "o=-1", "age=lt1", "fc=none&o=3")
    through_ledger = {q: _page(root, q) for q in queries}
    orphan_ledger_drop(actor="test")
    for query in queries:
        source, ids, count = through_ledger[query]
        assert source == "ledger"
        assert old not in ids
        assert (ids, count) == _page(root, query)[1:], query
    assert (
        fresh == through_ledger[""][1][0]
    )  # newest first: the session completed after the refresh


def test_a_deleted_profile_makes_the_list_read_the_plain_definition(root, no_ledger):
    seed_demo(seed=7, sessions=200, now=timezone.now(), force=True)
    orphan_ledger_create(actor="test")
    assert _page(root, "o=3")[0] == "ledger"
    victim = pipeline_sql("SELECT session_id::text FROM profiles LIMIT 1", fetch="one")[0]
    pipeline_sql(
        "SET session_replication_role = replica; DELETE FROM profiles WHERE session_id = %s;"
        " SET session_replication_role = DEFAULT",
        [victim],
    )
    pipeline_sql("SELECT pg_stat_force_next_flush()")
    _wait_for_stats()
    cl = _changelist(root, "o=3")
    assert cl.source == "plain" and "deleted" in cl.source_reason
    assert orphan_ledger_refresh() is not None
    assert _page(root, "o=3")[0] == "ledger"
    assert victim in {
        r[0]
        for r in pipeline_sql(
            f"SELECT session_id::text FROM {orphan_ledger._schema()}.orphan_ledger", fetch="all"
        )
    }


def _wait_for_stats() -> None:
    import time

    state = orphan_ledger.ledger_state()
    deadline = time.monotonic() + 10
    while state.intact and time.monotonic() < deadline:
        time.sleep(0.2)
        state = orphan_ledger.ledger_state()
    assert not state.intact


def _plan_nodes(plan: dict) -> list[dict]:
    out = [plan]
    for child in plan.get("Plans", []):
        out.extend(_plan_nodes(child))
    return out


def _big_data() -> None:
    """20,000 completed sessions, the oldest 12,000 with profiles (the shape of the incident:
    the oldest sessions were finalized, the recent ones are orphans)."""
    pipeline_sql(
        "INSERT INTO assessment_sessions (id, status, completed_at, started_at, email, share_token)"
        " SELECT gen_random_uuid(), 'completed', now() - make_interval(mins => 20000 - i),"
        " now() - make_interval(mins => 20001 - i), 'u' || i || '@example.org', md5(i::text)"
        " FROM generate_series(1, 20000) i"
    )
    pipeline_sql(
        "SET session_replication_role = replica;"
        " INSERT INTO profiles (session_id) SELECT id FROM assessment_sessions"
        " ORDER BY completed_at LIMIT 12000; SET session_replication_role = DEFAULT;"
        " ANALYZE assessment_sessions; ANALYZE profiles"
    )


def test_oldest_first_walks_the_ledger_not_the_sessions_with_profiles(
    schema_variant, root, no_ledger
):
    _big_data()
    orphan_ledger_create(actor="test")
    pipeline_sql(f"ANALYZE {orphan_ledger._schema()}.orphan_ledger")
    cl = _changelist(root, "o=3")
    assert cl.source == "ledger" and len(cl.result_list) == 100
    pages = cl.paginator.object_list
    sql, params = pages.page_sql(0, 100)
    with connections["pipeline"].cursor() as cur:
        cur.execute("EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) " + sql, params)
        plan = cur.fetchone()[0]
    plan = plan if isinstance(plan, list) else __import__("json").loads(plan)
    nodes = _plan_nodes(plan[0]["Plan"])
    # The walk: the ledger's completed_at index, in order; no sort of the whole list.
    ledger_scans = [n for n in nodes if n.get("Index Name") == "orphan_ledger_completed_idx"]
    assert ledger_scans, [n["Node Type"] for n in nodes]
    assert not any(
        n["Node Type"] == "Seq Scan"
        and n.get("Relation Name") in ("assessment_sessions", "profiles", "orphan_ledger")
        for n in nodes
    )
    # Profiles are probed by index, once per row walked: about a page, not 12,000 sessions.
    probes = [n for n in nodes if n.get("Relation Name") == "profiles"]
    assert probes and all(n["Node Type"] in ("Index Only Scan", "Index Scan") for n in probes)
    assert sum(n["Actual Loops"] for n in probes) < 1000
    assert sum(n["Actual Rows"] * n["Actual Loops"] for n in ledger_scans) < 1000

    # The plain definition's plan for the same page walks the sessions with profiles.
    orphan_ledger_drop(actor="test")
    plain = _changelist(root, "o=3")
    assert plain.source == "plain"
    sql, params = plain.queryset.order_by("completed_at", "-pk")[:100].query.sql_with_params()
    with connections["pipeline"].cursor() as cur:
        cur.execute("EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) " + sql, params)
        old = cur.fetchone()[0]
    old = old if isinstance(old, list) else __import__("json").loads(old)
    old_probes = [n for n in _plan_nodes(old[0]["Plan"]) if n.get("Relation Name") == "profiles"]
    walked = sum(n["Actual Loops"] for n in old_probes if n["Node Type"] != "Seq Scan")
    seq = [n for n in old_probes if n["Node Type"] == "Seq Scan"]
    assert walked >= 12000 or seq  # every session with a profile passed (or all profiles read)


def test_the_runbook_check_says_absent_then_present(schema_variant, no_ledger):
    def check() -> runbook_checks.Check:
        return {c.key: c for c in runbook_checks.run_checks()}["orphan_ledger"]

    absent = check()
    assert absent.status == "WARN" and absent.figure == "absent"
    assert ["ledger", f"{orphan_ledger._schema()}.orphan_ledger", "absent"] in absent.rows
    # Both emulated schemas carry the recommended completed_at index.
    assert ["tail index", "assessment_sessions (completed_at …)", "present"] in absent.rows
    orphan_ledger_create(actor="test")
    present = check()
    assert present.status == "PASS", present.detail
    assert present.figure.startswith("0 rows, refreshed")
    pipeline_sql(
        f"UPDATE {orphan_ledger._schema()}.orphan_ledger_state SET refreshed_at = now() - interval '1 day'"
    )
    assert check().status == "WARN"


def test_the_runbook_check_sees_a_missing_tail_index(fresh_variant, no_ledger):
    pipeline_sql("DROP INDEX public.assessment_sessions_completed_idx")
    orphan_ledger_create(actor="test")
    c = {c.key: c for c in runbook_checks.run_checks()}["orphan_ledger"]
    assert c.status == "WARN" and "CREATE INDEX CONCURRENTLY" in c.detail


def test_the_confirm_page_shows_the_sql_and_the_post_creates_it(client, root, no_ledger):
    client.force_login(root)
    url = reverse("admin:runbook_orphan_ledger")
    page = client.get(url).content.decode()
    assert "CREATE TABLE IF NOT EXISTS" in page and 'value="create"' in page
    assert not orphan_ledger.ledger_state().exists  # GET wrote nothing
    # The button's POST is the confirmation page of that action: its SQL, nothing done.
    confirm = client.post(url, {"action": "create"}).content.decode()
    assert 'id="ledger-confirm-sql"' in confirm and "CREATE TABLE IF NOT EXISTS" in confirm
    assert 'value="Yes, create the orphan ledger"' in confirm
    assert not orphan_ledger.ledger_state().exists
    assert not AuditEvent.objects.filter(action="orphan_ledger.create").exists()
    resp = client.post(url, {"action": "create", "confirm": "yes"})
    assert resp.status_code == 302
    assert orphan_ledger.ledger_state().exists
    assert AuditEvent.objects.filter(action="orphan_ledger.create", actor="root").exists()
    page = client.get(url).content.decode()
    assert 'value="refresh"' in page and "CREATE TABLE" not in page
    assert client.post(url, {"action": "refresh", "confirm": "yes"}).status_code == 302
    assert AuditEvent.objects.filter(action="orphan_ledger.refresh").exists()
    assert client.post(url, {"action": "nonsense"}).status_code == 400
    drop = client.post(url, {"action": "drop"}).content.decode()
    assert "DROP" in drop.split('id="ledger-confirm-sql"')[1].split("</pre>")[0]
    assert orphan_ledger.ledger_state().exists  # still there: not confirmed
    listing = client.get(URL + "?o=3").content.decode()
    assert 'data-source="ledger"' in listing


def test_a_viewer_cannot_create_it(client, member, no_ledger):
    viewer = member("viewer", "Viewer")
    client.force_login(viewer)
    resp = client.post(reverse("admin:runbook_orphan_ledger"), {"action": "create"})
    assert resp.status_code == 403
    assert not orphan_ledger.ledger_state().exists
