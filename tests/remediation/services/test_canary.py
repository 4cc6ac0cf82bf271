"""The write-path canary on a real pipeline database (both emulated schemas)."""

from __future__ import annotations

import threading
import time

import pytest
from django.core.management import call_command
from django.db import connections
from django.test import override_settings

from remediation.dev.breaks import CAUSES, EXPECTED, break_write_path
from remediation.models import Alert, CanaryResult
from remediation.pipeline import load_context
from remediation.pipeline.canary import canary_write
from remediation.services.canary import RULE, canary_run
from tests.factories import held_elsewhere, make_session, pipeline_sql

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "pipeline"])


def tables_state() -> dict[str, tuple[int, str]]:
    """Row count and an md5 over every row of every pipeline table (public schema)."""
    tables = [
        r[0]
        for r in pipeline_sql(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", fetch="all"
        )
    ]
    out = {}
    for t in tables:
        n, digest = pipeline_sql(
            f"SELECT count(*), coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '')"
            f" FROM public.{t} x",
            fetch="one",
        )
        out[t] = (n, digest)
    return out


def open_alert() -> Alert | None:
    return Alert.objects.filter(rule=RULE, state="open").first()


def test_an_ok_pass_writes_the_engine_rows_and_leaves_nothing_behind(clear_variant):
    make_session(seed=3)  # a real session besides: untouched
    before = tables_state()
    result = canary_run()
    assert result.outcome == "ok", result.explanation
    assert result.rows_written >= 3  # one per engine branch that sets a categorical column
    assert result.duration_ms > 0
    assert tables_state() == before
    assert open_alert() is None
    assert CanaryResult.objects.count() == 1


@pytest.mark.parametrize("cause", CAUSES)
def test_each_break_opens_the_alert_naming_the_cause_and_the_repair_resolves_it(
    clear_variant, cause
):
    assert canary_run().outcome == "ok"
    broken = break_write_path(cause)
    before = tables_state()
    result = canary_run()
    assert result.outcome == "failed"
    assert result.cause == EXPECTED[cause], result.explanation
    assert tables_state() == before  # a failed pass leaves nothing either
    alert = open_alert()
    assert alert is not None and alert.severity == "high"
    assert alert.message.startswith(f"profile writes fail: {EXPECTED[cause]}")
    # The next failing pass refreshes the one alert, it does not open another.
    canary_run()
    assert Alert.objects.filter(rule=RULE).count() == 1
    broken.repair()
    assert canary_run().outcome == "ok"
    alert.refresh_from_db()
    assert alert.state == "resolved" and alert.resolved_at is not None
    assert open_alert() is None


def test_the_check_alert_names_the_constraint_and_the_engine_value(clear_variant):
    break_write_path("check")
    canary_run()
    alert = open_alert()
    assert alert is not None
    assert "profile writes fail: 23514 on profiles_fc_coverage_bucket_check" in alert.message
    assert "fc_coverage_bucket" in alert.message


def test_the_command_prints_the_outcome_and_exits_1_when_broken(clear_variant, capsys):
    call_command("canary")
    assert capsys.readouterr().out.startswith("ok:")
    broken = break_write_path("grant")
    with pytest.raises(SystemExit) as exit_:
        call_command("canary")
    assert exit_.value.code == 1
    out = capsys.readouterr().out
    assert "SQLSTATE 42501" in out and "BROKEN: profile writes fail" in out
    assert open_alert() is not None  # the command updates the alert like the schedule
    broken.repair()
    call_command("canary")
    assert open_alert() is None
    assert set(CanaryResult.objects.values_list("source", flat=True)) == {"cli"}


def test_old_results_are_pruned(clear_path, settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.CANARY_RETENTION_DAYS = 2
    old = CanaryResult.objects.create(
        at=timezone.now() - timedelta(days=3), outcome="ok", duration_ms=1
    )
    canary_run()
    assert not CanaryResult.objects.filter(pk=old.pk).exists()
    assert CanaryResult.objects.count() == 1


def test_a_concurrent_finalize_is_not_blocked_by_a_pass(clear_variant):
    """A finalize started while a canary pass is inside its transaction goes through: the
    rows the canary writes are its own. On the rebuilt schema, whose triggers upsert one
    per-day counter row per type code, a finalize of the same type waits for that row only
    until the pass rolls back (the pass lasts milliseconds; here it is held open)."""
    from remediation.services import session_finalize

    sid = make_session(seed=11)
    state: dict[str, object] = {}

    def finalize() -> None:
        with connections["pipeline"].cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            state["pid"] = cur.fetchone()[0]
        try:
            state["outcome"] = session_finalize(session_id=sid, actor="test").outcome
        finally:
            connections.close_all()

    def during_pass() -> None:
        worker = threading.Thread(target=finalize)
        worker.start()
        for _ in range(100):
            worker.join(0.1)
            if not worker.is_alive():
                state["during"] = True
                return
            if state.get("pid") and _waits_on_lock(int(state["pid"])):
                state["waited"] = True
                break
        state["worker"] = worker

    result = canary_run(pause=during_pass)
    worker = state.get("worker")
    if isinstance(worker, threading.Thread):
        worker.join(30)
    assert result.outcome == "ok"
    assert state["outcome"] == "created"
    if clear_variant.name == "emulation":
        assert state.get("during") is True
    else:
        assert state.get("during") or state.get("waited")


def _waits_on_lock(pid: int) -> bool:
    with connections["default"].cursor() as cur:  # any connection to the server sees it
        cur.execute("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cur.fetchone()
    return bool(row and row[0])


@override_settings(PIPELINE_ROW_LOCK_TIMEOUT="1s")
def test_a_pass_holds_no_lock_longer_than_the_lock_timeout(clear_path):
    """A pass that stalls inside its transaction is ended by the server after the lock
    timeout: a session waiting for a conflicting lock gets it while the pass still stalls."""
    before = tables_state()
    got: dict[str, bool] = {}
    stalled = threading.Event()
    done = threading.Event()

    def blocker() -> None:
        stalled.wait(10)
        try:
            with connections["pipeline"].cursor() as cur:
                cur.execute("BEGIN")
                cur.execute("SET LOCAL lock_timeout = '20s'")
                cur.execute("LOCK TABLE public.profiles IN SHARE MODE")  # conflicts with inserts
                got["lock"] = not done.is_set()
                cur.execute("ROLLBACK")
        finally:
            connections.close_all()

    worker = threading.Thread(target=blocker)
    worker.start()

    def stall() -> None:
        stalled.set()
        time.sleep(4)  # longer than the 1 s lock timeout
        done.set()

    result = canary_run(pause=stall)
    worker.join(30)
    assert got.get("lock") is True  # granted while the pass was still stalling
    # The writes had been accepted before the stall: the verdict stands, and the server's
    # end of the session rolled them back.
    assert result.outcome == "ok"
    assert tables_state() == before
    assert CanaryResult.objects.count() == 1  # the portal connection was not the one ended


@override_settings(PIPELINE_ROW_LOCK_TIMEOUT="1s")
def test_a_pass_that_cannot_get_its_locks_gives_up_after_the_lock_timeout(clear_path):
    with held_elsewhere("LOCK TABLE public.profiles IN ACCESS EXCLUSIVE MODE"):
        result = canary_run()
    assert result.outcome == "busy"
    # The lock timeout and the statement timeout are the same bound: whichever the server
    # fires first (55P03 lock_not_available, 57014 query_canceled), the pass gave up in time.
    assert result.sqlstate in ("55P03", "57014")
    assert open_alert() is None


def test_the_canary_write_itself_reuses_the_engine_rows(clear_variant):
    from django.utils import timezone

    from remediation.pipeline.samples import engine_sample_rows

    ctx = load_context()
    now = timezone.now()
    write = canary_write(ctx, now)
    assert write.ok and write.rows_written == len(engine_sample_rows(ctx, now))


def test_a_sessions_table_with_columns_the_portal_does_not_know_still_gets_a_verdict(
    clear_variant,
):
    """A real sessions table may carry NOT NULL columns without a default that the app
    fills: the canary fills them by type, so it reports the write path, not its own insert."""
    pipeline_sql(
        "ALTER TABLE assessment_sessions ADD COLUMN app_locale text NOT NULL,"
        " ADD COLUMN app_attempt int NOT NULL, ADD COLUMN app_meta jsonb NOT NULL"
    )
    before = tables_state()
    result = canary_run()
    assert result.outcome == "ok", result.explanation
    assert tables_state() == before
