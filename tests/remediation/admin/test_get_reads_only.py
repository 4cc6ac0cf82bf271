"""GET never writes or locks: every page of the portal, with every statement it sends to
either database captured (Django's execute_wrapper) and checked.

A seeded pipeline (sessions, orphans, profiles), a finalize run and its rollback run, runbook
records, an alert, a diagnosis and an FC set loaded; then each GET page is requested by a
superuser and every SQL statement on `default` and `pipeline` during it must be a read:
no INSERT/UPDATE/DELETE/MERGE/TRUNCATE, no DDL, no row or table lock, no role switch, no
advisory lock. Savepoints and `SELECT set_config('lock_timeout'|'statement_timeout', ...)`
are allowed (pipeline_transaction sets them).
"""

from __future__ import annotations

import contextlib
import re
from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connections
from django.test import override_settings
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from opsportal.secrets import Secret
from remediation import jobs, reference_data
from remediation.dev.demo import seed_demo
from remediation.models import AuditEvent, BackfillRun, RunbookRecord
from remediation.selectors import orphaned_sessions
from remediation.selectors.checks import run_checks
from remediation.services import session_diagnose
from remediation.services.fc import fc_set_load
from remediation.services.fc_sets import read_set
from remediation.services.health import health_check_run
from remediation.services.runbook import runbook_record_save
from tests.factories import clear_write_path

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)
METRICS_TOKEN = "metrics-token-for-the-crawl"

WRITE = re.compile(
    r"\b(INSERT\s+INTO|UPDATE\s+[\w.\"]+(\s+\w+)?\s+SET|DELETE\s+FROM|MERGE\s+INTO|TRUNCATE"
    r"|CREATE\s|ALTER\s|DROP\s|GRANT\s|REVOKE\s|COPY\s|VACUUM|ANALYZE\s|REFRESH\s|NOTIFY\s)",
    re.IGNORECASE,
)
LOCK = re.compile(
    r"\bFOR\s+(NO\s+KEY\s+UPDATE|UPDATE|KEY\s+SHARE|SHARE)\b|\bLOCK\s+TABLE\b|\bLOCK\s+\w+\s+IN\b"
    r"|\bpg_(try_)?advisory(_xact)?_lock",
    re.IGNORECASE,
)
ROLE = re.compile(
    r"\bSET\s+(LOCAL\s+|SESSION\s+)?(ROLE|SESSION\s+AUTHORIZATION)\b|set_config\(\s*'(role|request\.)",
    re.IGNORECASE,
)
ALLOWED_CONFIG = re.compile(r"set_config\(\s*'(lock_timeout|statement_timeout)'", re.IGNORECASE)
SAVEPOINT = re.compile(r"^\s*(SAVEPOINT|RELEASE\s+SAVEPOINT|ROLLBACK\s+TO\s+SAVEPOINT)\s", re.I)

# Pages known to misbehave on GET (a write, a lock or a status other than 200), with what
# they do. None writes or locks; each entry must still misbehave (remove it once fixed).
KNOWN: dict[str, str] = {}
# Documented redirects: the runbook records are listed on the runbook page.
# A composite-key table's pk column is not unique (type_prototypes: (type_code, func)):
# its change and history pages say "does not exist" (a redirect), never a 500.
REDIRECTS = {
    "/admin/remediation/runbookrecord/": "/admin/runbook/",
    "/admin/remediation/typeprototype/EIE/change/": "/admin/",
    "/admin/remediation/typeprototype/EIE/history/": "/admin/",
}


def offending(sql: str) -> str | None:
    """Why a statement is not a plain read (None when it is)."""
    if SAVEPOINT.match(sql):
        return None
    for label, pattern in (("write", WRITE), ("lock", LOCK), ("role", ROLE)):
        if pattern.search(sql):
            return label
    if re.search(r"\bset_config\(", sql, re.I) and not ALLOWED_CONFIG.search(sql):
        return "set_config"
    head = sql.lstrip(" (\n\t").split(None, 1)[0].upper() if sql.strip() else ""
    # EXPLAIN without ANALYZE plans only (the capped paginator estimates counts with it).
    if head not in (
        "SELECT",
        "WITH",
        "SAVEPOINT",
        "RELEASE",
        "ROLLBACK",
        "SHOW",
        "VALUES",
        "EXPLAIN",
    ):
        return f"statement {head}"
    return None


def test_the_classifier_flags_what_it_must():
    for sql in (
        "INSERT INTO x VALUES (1)",
        'UPDATE "django_session" SET "session_data" = %s',
        "UPDATE profiles p SET (a) = (1)",
        "DELETE FROM profiles",
        "WITH d AS (DELETE FROM x RETURNING 1) SELECT 1",
        "SELECT * FROM x FOR UPDATE",
        "SELECT * FROM x FOR NO KEY UPDATE SKIP LOCKED",
        "SELECT * FROM x FOR SHARE",
        "LOCK TABLE profiles IN ACCESS EXCLUSIVE MODE",
        "SET LOCAL ROLE service_role",
        "SET ROLE service_role",
        "SELECT set_config('role', 'service_role', true)",
        "SELECT set_config('request.jwt.claims', '{}', true)",
        "SELECT pg_advisory_lock(1, 2)",
        "SELECT pg_try_advisory_lock(1, 2)",
        "TRUNCATE profiles",
        "MERGE INTO x USING y ON true WHEN MATCHED THEN DO NOTHING",
        "CREATE TEMP TABLE t (a int)",
    ):
        assert offending(sql), sql
    for sql in (
        "SELECT 1",
        'SAVEPOINT "s1_x1"',
        'RELEASE SAVEPOINT "s1_x1"',
        'ROLLBACK TO SAVEPOINT "s1_x1"',
        "SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true)",
        "SELECT updated_at, deleted FROM x WHERE status = 'update'",
    ):
        assert offending(sql) is None, sql


class Recorder:
    """Every statement sent on a connection, with its alias."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, str]] = []

    def __call__(self, execute, sql, params, many, context):
        self.statements.append((context["connection"].alias, str(sql)))
        return execute(sql, params, many, context)


@contextlib.contextmanager
def recording():
    rec = Recorder()
    with contextlib.ExitStack() as stack:
        for alias in ("default", "pipeline"):
            stack.enter_context(connections[alias].execute_wrapper(rec))
        yield rec


@pytest.fixture
def portal(pipeline_db):
    """A pipeline and a portal with something on every page."""
    seed_demo(seed=5, now=timezone.now(), force=True)
    call_command("setup_schedules", verbosity=0)  # /healthz sees a scheduler
    orphans = [
        str(pk) for pk in orphaned_sessions().order_by("-completed_at").values_list("pk", flat=True)
    ]
    with clear_write_path():
        kept = jobs.run_until_done(
            jobs.backfill_start(selection="ids", ids=orphans[:3], enqueue=False, actor="t").pk
        )
        undone = jobs.run_until_done(
            jobs.backfill_start(selection="ids", ids=orphans[3:5], enqueue=False, actor="t").pk
        )
        rollback = jobs.run_rollback(undone.pk, enqueue=False)
        rollback = jobs.run_until_done(rollback.pk)
    assert (kept.created, undone.created, rollback.counts) == (3, 2, {"restored": 2})
    session_diagnose(session_id=orphans[6])
    for label in ("before", "after"):
        runbook_record_save(
            user=None,
            kind="checks",
            results={"checks": [c.__dict__ for c in run_checks()]},
            label=label,
        )
    runbook_record_save(user=None, kind="change", results={"change": "nothing"}, label="note")
    fc_set_load(read_set(reference_data.fc_seed_path()), actor="tester")
    health_check_run()  # a snapshot and the alerts it fires
    from remediation.services.canary import canary_run

    canary_run()  # a canary result (and its alert: the write path is broken here)
    from remediation.models import Alert

    if not Alert.objects.exists():
        Alert.objects.create(
            rule="manual",
            severity="page",
            message="crawl",
            first_seen=timezone.now() - timedelta(hours=1),
            last_seen=timezone.now(),
        )
    return {
        "orphan": orphans[6],
        "profiled": orphans[0],
        "run": kept,
        "undone": undone,
        "rollback": rollback,
    }


def admin_pages(portal, request_factory_user):
    """(url, query) for every page a superuser can GET."""
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = request_factory_user
    pages: list[tuple[str, dict]] = [("/admin/", {})]
    for model, model_admin in admin.site._registry.items():
        info = f"{model._meta.app_label}_{model._meta.model_name}"
        pages.append((reverse(f"admin:{info}_changelist"), {}))
        if model_admin.has_add_permission(request):
            pages.append((reverse(f"admin:{info}_add"), {}))
        # Only the pk: the page list stays the same on a schema that lacks a model's column.
        pk = model_admin.get_queryset(request).order_by("pk").values_list("pk", flat=True).first()
        if pk is not None:
            pages.append((reverse(f"admin:{info}_change", args=[quote(pk)]), {}))
            pages.append((reverse(f"admin:{info}_history", args=[quote(pk)]), {}))
    checks = list(RunbookRecord.objects.filter(kind="checks").order_by("pk"))
    sid = portal["orphan"]
    version = read_set(reference_data.fc_seed_path())["version"]
    for run in (portal["run"], portal["undone"], portal["rollback"]):
        pages.append((reverse("admin:remediation_backfillrun_change", args=[run.pk]), {}))
        pages.append((reverse("admin:remediation_backfillrun_items_csv", args=[run.pk]), {}))
    orphans = reverse("admin:remediation_orphanedsession_changelist")
    export = reverse("admin:remediation_orphanedsession_export")
    today = timezone.localdate()
    for query in (
        {"age": "lt1"},
        {"fc": "responses"},
        {"fc": "none"},
        {"q": "example"},
        {
            "completed_at__from": (today - timedelta(days=30)).isoformat(),
            "completed_at__to": today.isoformat(),
        },
        {"o": "1"},
    ):
        pages.append((orphans, query))
        pages.append((export, query))
    pages.append((export, {}))
    pages += [
        (reverse("admin:runbook"), {}),
        (reverse("admin:runbook_compare"), {"a": checks[0].pk, "b": checks[1].pk}),
        (reverse("admin:runbook_export"), {}),
        (reverse("admin:runbook_export"), {"id": [checks[0].pk, checks[1].pk]}),
        (reverse("admin:health"), {}),
        (reverse("admin:health"), {"window": "7d"}),
        (reverse("admin:health"), {"window": "30d"}),
        (reverse("admin:incident_timeline"), {}),
        (reverse("admin:incident_timeline_export"), {}),
        (reverse("admin:remediation_assessmentsession_change", args=[sid]), {}),
        (reverse("admin:remediation_assessmentsession_change", args=[portal["profiled"]]), {}),
        (reverse("admin:remediation_assessmentsession_finalize", args=[sid]), {}),
        (reverse("admin:remediation_assessmentsession_finalize", args=[portal["profiled"]]), {}),
        (reverse("admin:remediation_fc_load"), {}),
        (reverse("admin:remediation_fc_coverage"), {}),
        (reverse("admin:remediation_fc_version", args=[version]), {}),
        (reverse("admin:remediation_orphanedsession_backfill"), {}),
    ]
    with contextlib.suppress(NoReverseMatch):
        pages.append((reverse("admin:remediation_auditevent_export"), {}))
    return pages


def _get(client, url, query, **headers):
    with recording() as rec:
        resp = client.get(url, query, **headers)
        # Streamed bodies (CSV exports) run their queries while being read.
        body = b"".join(resp.streaming_content) if resp.streaming else resp.content
    return resp, body, rec.statements


def test_every_get_page_reads_only(client, portal):
    user = User.objects.create_superuser("root", "root@example.org", "pw-123456789")
    client.force_login(user)
    client.raise_request_exception = False  # a 500 is a finding like any other
    pages = admin_pages(portal, user)
    assert len(pages) > 60
    failures: list[str] = []
    known_seen: dict[str, list[str]] = {}
    by_alias = {"default": 0, "pipeline": 0}
    for url, query in pages:
        resp, _body, statements = _get(client, url, query)
        for alias, _ in statements:
            by_alias[alias] += 1
        label = f"GET {url} {query or ''}".strip()
        found = []
        if url in REDIRECTS:
            if (resp.status_code, resp.get("Location")) != (302, REDIRECTS[url]):
                found.append(
                    f"{label}: HTTP {resp.status_code}, not the redirect to {REDIRECTS[url]}"
                )
        elif resp.status_code != 200:
            found.append(f"{label}: HTTP {resp.status_code} {resp.get('Location', '')}".rstrip())
        found += [
            f"{label}: {why} on {alias}: {sql[:300]}"
            for alias, sql in statements
            if (why := offending(sql))
        ]
        if url in KNOWN:
            known_seen.setdefault(url, []).extend(found)
        else:
            failures += found
    assert failures == []
    # Each known exception was crawled and still misbehaves as described.
    assert {u: bool(f) for u, f in known_seen.items()} == {u: True for u in KNOWN}
    # The capture saw both databases (it works), on many pages.
    assert by_alias["default"] > len(pages) and by_alias["pipeline"] > 20


def test_metrics_and_healthz_read_only(client, portal):
    with override_settings(METRICS_TOKEN=Secret(METRICS_TOKEN)):
        resp, body, statements = _get(
            client, "/metrics", {}, HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}"
        )
    assert resp.status_code == 200 and b"prism_conversion_ratio" in body
    assert statements and [s for a, s in statements if offending(s)] == []
    resp, body, statements = _get(client, "/healthz", {})
    assert resp.status_code == 200, body
    assert resp.json()["ok"] is True
    assert {a for a, _ in statements} == {"default", "pipeline"}
    assert [s for a, s in statements if offending(s)] == []


def test_the_crawl_itself_left_the_data_as_it_was(client, portal):
    """A second guard: row counts of the portal's tables do not move over a crawl."""
    user = User.objects.create_superuser("root2", "root2@example.org", "pw-123456789")
    client.force_login(user)
    client.raise_request_exception = False
    counted = (AuditEvent, RunbookRecord, BackfillRun)
    before = [m.objects.count() for m in counted]
    pipeline_before = _pipeline_counts()
    for url, query in admin_pages(portal, user):
        _get(client, url, query)
    assert [m.objects.count() for m in counted] == before
    assert _pipeline_counts() == pipeline_before


def _pipeline_counts():
    with connections["pipeline"].cursor() as cur:
        cur.execute(
            "SELECT (SELECT count(*) FROM profiles), (SELECT count(*) FROM fc_scores),"
            " (SELECT count(*) FROM fc_blocks), (SELECT max(xmin::text::bigint) FROM assessment_sessions)"
        )
        return cur.fetchone()
