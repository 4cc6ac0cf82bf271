"""Bounded waits (issue 15, item 4): a locked `profiles` or `assessment_sessions` table.

Another connection (psycopg, a transaction left open) holds `LOCK TABLE ... IN ACCESS
EXCLUSIVE MODE`, as a migration or a manual lock would. With small limits (lock timeout
300 ms, statement timeout 3 s, set on the pipeline connection as the settings set them in
production), every page an engineer opens answers: the pages that read the locked table
with 503 and the clear message in the admin look, the others as usual; never a 500, never
a wait without bound. load_context() raises a clear PipelineTimeout when a table it reads
is locked, and a backfill batch under the lock records its sessions busy, then failed
"busy", instead of hanging or erroring the run.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import psycopg
import pytest
from django.db import connections
from django.test import override_settings
from django.urls import reverse

from remediation import jobs, reference_data
from remediation import pipeline as pw
from remediation.models import BackfillItem, FinalizeAttempt, MetricSnapshot
from remediation.pipeline.timeouts import PipelineTimeout, setting_ms
from remediation.services.fc import fc_set_load
from remediation.services.fc_sets import read_set
from tests.factories import (
    clear_write_path,
    held_elsewhere,
    load_reference_data,
    make_session,
    pipeline_sql,
)

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)

LOCK_MS = 300
STATEMENT_MS = 3000
MESSAGE = f"The pipeline database did not answer within {LOCK_MS} ms"
# The page crawl under a lock: each page that reads the locked table waits this long.
CRAWL_LOCK_MS = 50


@contextlib.contextmanager
def short_limits(lock_ms: int = LOCK_MS, statement_ms: int = STATEMENT_MS) -> Iterator[None]:
    """Small limits on the pipeline connection, the way settings.py sets them (connection
    options), and in the settings (pipeline_transaction() and the message read them)."""
    conn = connections["pipeline"]
    options = conn.settings_dict["OPTIONS"]
    before = options["options"]
    small = re.sub(r"statement_timeout=\S+", f"statement_timeout={statement_ms}", before)
    small = re.sub(r"lock_timeout=\S+", f"lock_timeout={lock_ms}ms", small)
    conn.close()
    options["options"] = small
    try:
        with override_settings(
            PIPELINE_ROW_LOCK_TIMEOUT=f"{lock_ms}ms", PIPELINE_STATEMENT_TIMEOUT_MS=statement_ms
        ):
            yield
    finally:
        conn.close()
        options["options"] = before


@contextlib.contextmanager
def table_locked(table: str, mode: str = "ACCESS EXCLUSIVE") -> Iterator[psycopg.Connection]:
    """A table lock (ACCESS EXCLUSIVE unless told) held by another connection until the
    block ends."""
    with held_elsewhere(f"LOCK TABLE {table} IN {mode} MODE") as other:
        yield other


def _lock_held(table: str) -> bool:
    """Whether another backend holds ACCESS EXCLUSIVE on the table (read from pg_locks)."""
    return bool(
        pipeline_sql(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
            " WHERE c.relname = %s AND l.mode = 'AccessExclusiveLock' AND l.granted"
            " AND l.pid <> pg_backend_pid()",
            [table],
            fetch="one",
        )[0]
    )


@pytest.fixture
def seeded(schema_variant):
    """Reference data, an FC set, an orphan and a session with a profile (on the variant;
    the write path cleared, as clear_write_path leaves it until the test ends)."""
    with clear_write_path(schema_variant.name):
        load_reference_data()
        fc_set_load(read_set(reference_data.fc_seed_path()), actor="tester")
        orphan = make_session(seed=3)
        profiled = make_session(seed=4)
        run = jobs.run_until_done(
            jobs.backfill_start(selection="ids", ids=[profiled], enqueue=False, actor="t").pk
        )
        assert run.created == 1
        # No stored snapshot: the health page computes its figures from the pipeline.
        MetricSnapshot.objects.all().delete()
        yield {"variant": schema_variant, "orphan": orphan, "profiled": profiled}


def pages(seeded) -> dict[str, str]:
    """Every page named in the issue: name -> URL."""
    sid = seeded["orphan"]
    version = read_set(reference_data.fc_seed_path())["version"]
    out = {
        "index": reverse("admin:index"),
        "run list": reverse("admin:remediation_backfillrun_changelist"),
        "backfill form": reverse("admin:remediation_orphanedsession_backfill"),
        "orphan list": reverse("admin:remediation_orphanedsession_changelist"),
        "session list": reverse("admin:remediation_assessmentsession_changelist"),
        "session search": reverse("admin:remediation_assessmentsession_changelist") + f"?q={sid}",
        "session page": reverse("admin:remediation_assessmentsession_change", args=[sid]),
        "profiled session page": reverse(
            "admin:remediation_assessmentsession_change", args=[seeded["profiled"]]
        ),
        "finalize page": reverse("admin:remediation_assessmentsession_finalize", args=[sid]),
        "health page": reverse("admin:health"),
        "runbook page": reverse("admin:runbook"),
        "FC blocks": reverse("admin:remediation_fcblock_changelist"),
        "FC version": reverse("admin:remediation_fc_version", args=[version]),
        "FC coverage": reverse("admin:remediation_fc_coverage"),
        "FC load": reverse("admin:remediation_fc_load"),
    }
    for model in (
        "profile",
        "assessmentresponse",
        "fcscore",
        "fcresponse",
        "fcoption",
        "scoringkey",
        "scoringconfig",
        "typeprototype",
        "calibrationmodel",
    ):
        out[f"{model} list"] = reverse(f"admin:remediation_{model}_changelist")
    return out


# The pages that read the locked table (and so must answer 503 under its lock). Every other
# page must answer as usual (200).
READS = {
    "profiles": {
        "backfill form",
        "orphan list",
        "session list",
        "session search",
        "session page",
        "profiled session page",
        "health page",
        "runbook page",
        "profile list",
    },
    "assessment_sessions": {
        "backfill form",
        "orphan list",
        "session list",
        "session search",
        "session page",
        "profiled session page",
        "finalize page",
        "health page",
        "runbook page",
    },
}


@pytest.mark.parametrize("table", ["profiles", "assessment_sessions"])
def test_every_page_answers_under_a_locked_table(client, engineer, seeded, table):
    client.force_login(engineer)
    client.raise_request_exception = False  # a 500 would be a finding, not a test error
    urls = pages(seeded)
    message = f"The pipeline database did not answer within {CRAWL_LOCK_MS} ms"
    with short_limits(lock_ms=CRAWL_LOCK_MS):
        unlocked = {name: client.get(url).status_code for name, url in urls.items()}
        assert unlocked == {name: 200 for name in urls}
        got: dict[str, int] = {}
        with table_locked(table):
            assert _lock_held(table)
            for name, url in urls.items():
                resp = client.get(url)
                got[name] = resp.status_code
                if resp.status_code == 503:
                    body = resp.content.decode()
                    assert message in body, name
                    assert "locked by another transaction" in body
                    assert "lock_timeout, SQLSTATE 55P03" in body
                    assert "Try again" in body and "nothing was changed" in body
                    assert 'id="site-name"' in body  # the admin look, not a bare error
                    assert "Traceback" not in body and "SELECT" not in body
                    assert resp["Retry-After"] == "1"
        # Released: the same pages answer again.
        after = {name: client.get(url).status_code for name, url in urls.items()}
    expected = {name: 503 if name in READS[table] else 200 for name in urls}
    assert got == expected
    assert after == {name: 200 for name in urls}


def test_a_statement_timeout_is_the_same_clear_page(client, engineer, schema_variant):
    """A lock timeout longer than the statement timeout: PostgreSQL cancels the statement
    (57014); the page says so the same way."""
    load_reference_data()
    make_session(seed=5)
    client.force_login(engineer)
    client.raise_request_exception = False
    with short_limits(lock_ms=60_000, statement_ms=400), table_locked("profiles"):
        resp = client.get(reverse("admin:remediation_orphanedsession_changelist"))
    body = resp.content.decode()
    assert resp.status_code == 503
    assert "The pipeline database did not answer within 400 ms" in body
    assert "statement_timeout, SQLSTATE 57014" in body
    assert resp["Retry-After"] == "1"


def test_without_a_staff_user_the_503_is_plain_text(schema_variant):
    """Outside the admin (no staff user) the same message as plain text."""
    from django.contrib.auth.models import AnonymousUser
    from django.test import RequestFactory

    from opsportal.middleware import PipelineTimeoutMiddleware

    request = RequestFactory().get("/anything")
    request.user = AnonymousUser()
    with short_limits(), table_locked("profiles"), pytest.raises(PipelineTimeout) as raised:
        pipeline_sql("SELECT count(*) FROM profiles")
    response = PipelineTimeoutMiddleware(lambda r: None).process_exception(request, raised.value)
    assert response is not None and response.status_code == 503
    assert response["Content-Type"].startswith("text/plain")
    assert response.content.decode().startswith(MESSAGE)
    # Any other exception is left to Django.
    assert (
        PipelineTimeoutMiddleware(lambda r: None).process_exception(request, ValueError()) is None
    )


def test_the_connection_runs_under_both_limits_in_and_out_of_transactions(schema_variant):
    """What PostgreSQL reports for the pipeline connection: the configured limits, outside a
    transaction, inside transaction.atomic and inside pipeline_transaction()."""
    from django.conf import settings
    from django.db import transaction

    def limits() -> tuple[int, int]:
        with connections["pipeline"].cursor() as cur:
            cur.execute(
                "SELECT current_setting('statement_timeout'), current_setting('lock_timeout')"
            )
            statement, lock = cur.fetchone()
        return setting_ms(statement), setting_ms(lock)

    configured = (
        settings.PIPELINE_STATEMENT_TIMEOUT_MS,
        setting_ms(settings.PIPELINE_ROW_LOCK_TIMEOUT),
    )
    connections["pipeline"].close()
    assert limits() == configured
    with transaction.atomic(using="pipeline"):
        assert limits() == configured
    with pw.pipeline_transaction():
        assert limits() == configured
    with short_limits():
        assert limits() == (STATEMENT_MS, LOCK_MS)
        with pw.pipeline_transaction():
            assert limits() == (STATEMENT_MS, LOCK_MS)


@pytest.mark.parametrize("table", ["scoring_config", "assessment_scoring_key", "fc_options"])
def test_load_context_raises_a_clear_error_under_a_lock(schema_variant, table):
    load_reference_data()
    with short_limits():
        with table_locked(table), pytest.raises(PipelineTimeout) as raised:
            pw.load_context()
        # A lock on the tables it writes does not concern it.
        with table_locked("profiles"):
            assert pw.load_context().scorer is not None
    exc = raised.value
    assert (exc.sqlstate, exc.setting, exc.limit_ms) == ("55P03", "lock_timeout", LOCK_MS)
    assert str(exc).startswith(MESSAGE)
    assert isinstance(exc.__cause__, psycopg.errors.LockNotAvailable)
    # Still a DatabaseError for the callers that catch one, classified as busy.
    assert pw.classify_error(exc).category == "busy"


@pytest.mark.parametrize("table", ["profiles", "assessment_sessions"])
def test_a_backfill_under_a_locked_table_records_busy_then_failed(schema_variant, table):
    with (
        clear_write_path(schema_variant.name),
        short_limits(),
        override_settings(BACKFILL_BUSY_RETRY_SECONDS=0),  # one try: busy is then failed
    ):
        load_reference_data()
        sids = [make_session(seed=20 + n) for n in range(3)]
        run = jobs.backfill_start(selection="ids", ids=sids, enqueue=False, actor="t")
        with table_locked(table):
            run = jobs.run_until_done(run.pk)
        assert run.state == "failed", run.message
        items = list(BackfillItem.objects.filter(run=run))
        assert {(i.outcome, i.reason, i.sqlstate) for i in items} == {("failed", "busy", "55P03")}
        assert all(MESSAGE in i.error and "Nothing was written" in i.error for i in items)
        attempts = FinalizeAttempt.objects.filter(run_id=run.pk)
        assert {(a.outcome, a.reason, a.sqlstate) for a in attempts} == {
            ("failed", "busy", "55P03")
        }
        assert run.failed_by_reason == {"busy": 3}
        # Nothing was written: no profile, and a retry once the lock is gone writes them all.
        assert pipeline_sql("SELECT count(*) FROM profiles", fetch="one")[0] == 0


@pytest.mark.usefixtures("one_lane")
@pytest.mark.parametrize("table", ["profiles", "assessment_sessions"])
def test_a_locked_table_is_busy_and_retried_with_backoff(schema_variant, table):
    """With the default busy retries the batch's sessions go back to the queue (busy, with a
    time before which they are not tried) and are written once the lock is gone."""
    with clear_write_path(schema_variant.name), short_limits():
        load_reference_data()
        sids = [make_session(seed=30 + n) for n in range(2)]
        run = jobs.backfill_start(selection="ids", ids=sids, enqueue=False, actor="t")
        with table_locked(table):
            assert jobs.process_batch(run.pk, run.batch_token, enqueue_next=False) == "next"
        # Busy: back in the queue (pending again, one try counted), not before its backoff.
        items = list(BackfillItem.objects.filter(run=run))
        assert {(i.outcome, i.tries) for i in items} == {("pending", 1)}
        assert all(i.not_before is not None for i in items)
        assert not FinalizeAttempt.objects.filter(run_id=run.pk).exists()
        assert pipeline_sql("SELECT count(*) FROM profiles", fetch="one")[0] == 0
        BackfillItem.objects.filter(run=run).update(not_before=None)  # no waiting in a test
        run = jobs.run_until_done(run.pk)
    assert (run.state, run.created) == ("succeeded", 2)


def test_a_single_finalize_under_a_locked_table_is_a_busy_attempt(schema_variant):
    from remediation.services import session_finalize

    load_reference_data()
    sid = make_session(seed=41)
    with short_limits(), table_locked("profiles"):
        attempt = session_finalize(session_id=sid)
    assert (attempt.outcome, attempt.reason, attempt.sqlstate) == ("failed", "busy", "55P03")
    assert "lock timeout, 55P03" in attempt.explanation


@pytest.mark.parametrize("table", ["profiles", "assessment_sessions"])
def test_health_figures_under_a_locked_table(client, engineer, schema_variant, table):
    """The scheduled health check raises the clear error (and stores no snapshot); "recompute
    now" on the health page is the 503 page."""
    from remediation.services.health import health_check_run

    load_reference_data()
    make_session(seed=51)
    client.force_login(engineer)
    client.raise_request_exception = False
    with short_limits(), table_locked(table):
        with pytest.raises(PipelineTimeout) as raised:
            health_check_run()
        resp = client.post(reverse("admin:health"))
    assert str(raised.value).startswith(MESSAGE)
    assert not MetricSnapshot.objects.exists()
    assert resp.status_code == 503
    body = resp.content.decode()
    assert MESSAGE in body and "The pipeline transaction was rolled back" in body


@pytest.mark.usefixtures("one_lane")
@pytest.mark.parametrize("table", ["profiles", "fc_scores"])
def test_a_table_locked_for_writes_makes_the_batch_busy_at_once(schema_variant, table):
    """EXCLUSIVE MODE lets the batch read but not write: the group's write times out once and
    the whole batch is busy (not tried again session by session, each waiting the lock
    timeout); nothing is written."""
    from remediation.services import fc

    statements: list[str] = []

    def record(execute, sql, params, many, context):
        statements.append(str(sql))
        return execute(sql, params, many, context)

    with clear_write_path(schema_variant.name), short_limits():
        load_reference_data()
        seed = read_set(reference_data.fc_seed_path())
        fc.fc_set_load(seed)
        sids = [make_session(seed=70 + n) for n in range(3)]
        for sid in sids:
            for block in seed["blocks"]:
                pipeline_sql(
                    "INSERT INTO fc_responses (session_id, block_id, option_id) VALUES (%s, %s, %s)",
                    [sid, block["id"], block["options"][0]["id"]],
                )
        run = jobs.backfill_start(selection="ids", ids=sids, enqueue=False, actor="t")
        with table_locked(table, "EXCLUSIVE"), connections["pipeline"].execute_wrapper(record):
            assert jobs.process_batch(run.pk, run.batch_token, enqueue_next=False) == "next"
        writes = [s for s in statements if s.lstrip().startswith(f"INSERT INTO {table}")]
        assert len(writes) == 1  # the group's write only
        assert {(i.outcome, i.tries) for i in BackfillItem.objects.filter(run=run)} == {
            ("pending", 1)
        }
        assert pipeline_sql("SELECT count(*) FROM profiles", fetch="one")[0] == 0
        assert pipeline_sql("SELECT count(*) FROM fc_scores", fetch="one")[0] == 0
        BackfillItem.objects.filter(run=run).update(not_before=None)
        run = jobs.run_until_done(run.pk)
        assert (run.state, run.created) == ("succeeded", 3)
        assert pipeline_sql("SELECT count(*) FROM fc_scores", fetch="one")[0] == 3


def test_an_edge_finalize_whose_diagnosis_cannot_run_asks_again_and_says_why(
    client, engineer, schema_variant
):
    from django.urls import reverse

    from remediation.models import FinalizeAttempt

    load_reference_data()
    sid = make_session(seed=42)
    client.force_login(engineer)
    url = reverse("admin:remediation_assessmentsession_finalize", args=[sid])
    with short_limits(), table_locked("scoring_config"):
        resp = client.post(url, {"backend": "edge"})
    body = resp.content.decode()
    assert resp.status_code == 200 and 'id="edge-warning"' in body
    assert "The local diagnosis could not run just now" in body and MESSAGE in body
    assert "predicts the write will fail" not in body
    assert not FinalizeAttempt.objects.exists()  # nothing called before the second yes
