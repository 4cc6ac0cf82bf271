"""How runs end: succeeded only when no session failed, "finished with failures", "all
failed"; the CLI's exit status; retry rounds that keep the earlier rounds' figures."""

from __future__ import annotations

import json
import threading
import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.urls import reverse

from remediation import jobs as bf
from remediation.admin.runs import _controls
from remediation.models import BackfillRun
from remediation.services import runs
from tests.factories import held_elsewhere, load_reference_data, make_session, pipeline_sql

ROW_LOCK = "SELECT 1 FROM assessment_sessions WHERE id = %s FOR UPDATE"  # a session's claim

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def clear(clear_variant):
    """A write path that lets every session through, on each schema variant (committed;
    the variant is loaded again afterwards, so the constraints a test adds do not leak)."""
    return clear_variant


def _sessions(n, start=0):
    return [make_session(seed=start + i) for i in range(n)]


def _start(ids, **kw):
    return bf.backfill_start(selection="ids", ids=ids, enqueue=False, actor="tester", **kw)


def _refuse(ids, name="not_yet"):
    """The database refuses these sessions' profiles with a CHECK (23514)."""
    pipeline_sql(
        f"ALTER TABLE profiles ADD CONSTRAINT {name} CHECK (session_id <> ALL (%s::uuid[]))", [ids]
    )


def _cli(*args):
    """Run `manage.py backfill ... --sync --json`: (the JSON printed, the CommandError or None)."""
    out = StringIO()
    error = None
    try:
        call_command("backfill", *args, "--sync", "--json", stdout=out)
    except CommandError as exc:
        error = exc
    text = out.getvalue()
    return json.loads(text[text.index("\n{") :]), error


def _page(client, run):
    return client.get(
        reverse("admin:remediation_backfillrun_change", args=[run.pk])
    ).content.decode()


# --- The rule, per kind ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "counts", "expected"),
    [
        ("finalize", {"created": 3, "existing": 2}, "succeeded"),
        ("finalize", {"skipped": 4}, "succeeded"),  # a dry run: "would be written"
        ("finalize", {}, "succeeded"),  # nothing processed, nothing failed
        ("finalize", {"created": 1, "failed": 2}, "finished_with_failures"),
        ("finalize", {"existing": 1, "failed": 2}, "finished_with_failures"),
        ("finalize", {"skipped": 1, "failed": 2}, "finished_with_failures"),
        ("finalize", {"failed": 50}, "failed"),
        ("rollback", {"restored": 4}, "succeeded"),
        ("rollback", {"restored": 3, "conflict": 1}, "finished_with_failures"),
        ("rollback", {"conflict": 2}, "failed"),  # nothing was restored
        ("rollback", {"conflict": 1, "failed": 1}, "failed"),
        ("diagnosis", {"diagnosed": 5}, "succeeded"),  # whatever the diagnoses found
        ("diagnosis", {"diagnosed": 4, "failed": 1}, "finished_with_failures"),
    ],
)
def test_end_state_follows_the_rule(kind, counts, expected):
    run = BackfillRun(kind=kind, counts=counts, processed=sum(counts.values()))
    assert bf.end_state(run) == expected


# --- Backfills end in the state their sessions call for ------------------------------------
def test_a_run_where_all_50_sessions_fail_ends_all_failed_and_the_cli_exits_non_zero(
    schema_variant,
):
    load_reference_data()  # each variant as shipped: its first blocker refuses every write
    blocker, sqlstate = schema_variant.first_blocker, schema_variant.first_blocker_sqlstate
    ids = _sessions(50)
    data, error = _cli("--ids", *ids, "--batch-size", "20")
    run = BackfillRun.objects.get()
    assert run.state == "failed" and run.get_state_display() == "all failed"
    assert (run.processed, run.created, run.existing, run.failed) == (50, 0, 0, 50)
    assert run.failed_by_reason == {blocker: 50}
    assert set(run.items.values_list("sqlstate", flat=True)) == {sqlstate}
    assert (data["state"], data["state_label"], data["failed"]) == ("failed", "all failed", 50)
    assert error is not None and error.returncode == 1
    assert (
        str(error)
        == f"Backfill #{run.pk}: all 50 sessions failed ({blocker} 50); no profile was written"
    )
    assert [r["state"] for r in run.rounds] == ["failed"]
    assert run.rounds[0]["counts"] == {"failed": 50}

    # Retried with nothing fixed: still all failed; 50 sessions failed now, not 100.
    runs.run_retry_failed(run.pk)
    run = bf.run_until_done(run.pk)
    assert (run.state, run.processed, run.failed) == ("failed", 50, 50)
    assert [(r["round"], r["retry"], r["counts"]) for r in run.rounds] == [
        (1, False, {"failed": 50}),
        (2, True, {"failed": 50}),
    ]


def test_a_mixed_run_finishes_with_failures_and_the_cli_exits_non_zero(clear):
    ids = _sessions(6)
    _refuse(ids[:2])
    data, error = _cli("--ids", *ids, "--batch-size", "4")
    run = BackfillRun.objects.get()
    assert (run.state, run.created, run.failed) == ("finished_with_failures", 4, 2)
    assert run.failed_by_reason == {"check": 2}
    assert (data["state"], data["state_label"]) == (
        "finished_with_failures",
        "finished with failures",
    )
    assert error is not None and error.returncode == 1
    assert f"Backfill #{run.pk} finished with failures: 2 of 6 sessions failed (check 2)" in str(
        error
    )
    assert f"--retry-failed {run.pk}" in str(error)


def test_a_clean_run_succeeds_and_the_cli_exits_zero(clear):
    ids = _sessions(3)
    data, error = _cli("--ids", *ids)
    run = BackfillRun.objects.get()
    assert error is None
    assert (run.state, run.created, run.failed) == ("succeeded", 3, 0)
    assert (data["state"], data["created"], data["failed"]) == ("succeeded", 3, 0)


def test_a_dry_run_succeeds_its_skipped_sessions_are_not_failures(clear):
    ids = _sessions(3)
    data, error = _cli("--ids", *ids, "--dry-run")
    run = BackfillRun.objects.get()
    assert error is None
    assert (run.state, run.skipped, run.failed, run.created) == ("succeeded", 3, 0, 0)
    assert data["state"] == "succeeded"


def test_a_stopped_run_is_not_a_success_for_the_cli(clear):
    ids = _sessions(2)
    pipeline_sql(
        'UPDATE scoring_config SET value = \'{"status": "maintenance", "message": "IR-07"}\''
        " WHERE key = 'system_status'"
    )
    _data, error = _cli("--ids", *ids)
    run = BackfillRun.objects.get()
    assert run.state == "paused"
    assert error is not None and str(error).startswith(
        f"Backfill #{run.pk} is paused, not finished"
    )


def test_a_diagnosis_run_that_diagnosed_every_session_refused_succeeded(schema_variant):
    load_reference_data()  # every write is refused by the variant's first blocker
    ids = _sessions(4)
    run = bf.run_until_done(bf.diagnosis_start(session_ids=ids, enqueue=False).pk)
    assert set(run.items.values_list("reason", flat=True)) == {schema_variant.first_blocker}
    assert (run.state, run.counts, run.failed) == ("succeeded", {"diagnosed": 4}, 0)


# --- Rollback runs: a conflict is a restore that did not happen ---------------------------
def test_a_rollback_with_a_conflict_finishes_with_failures_and_the_source_says_rolled_back(
    clear, admin_client
):
    ids = _sessions(3)
    source = bf.run_until_done(_start(ids).pk)
    pipeline_sql("UPDATE profiles SET confidence = 'edited' WHERE session_id = %s", [ids[0]])
    rollback = bf.run_until_done(bf.run_rollback(source.pk, enqueue=False).pk)
    assert rollback.counts == {"restored": 2, "conflict": 1}
    assert rollback.state == "finished_with_failures"
    assert "finished with failures" in _page(admin_client, rollback)
    page = _page(admin_client, source)
    assert 'succeeded</span>, <span id="run-rolled-back">rolled back by <a' in page
    heading = page[page.index('id="run-rolled-back"') : page.index("</h2>")]
    assert f">run #{rollback.pk}</a> on " in heading  # when, then what it could not restore
    assert '(not everything could be restored: <a href="#rollback-report">' in heading
    listing = admin_client.get(reverse("admin:remediation_backfillrun_changelist")).content.decode()
    assert f"succeeded, rolled back by run #{rollback.pk}" in listing
    assert "finished with failures" in listing


def test_a_rollback_where_every_session_conflicts_ends_all_failed(clear):
    ids = _sessions(2)
    source = bf.run_until_done(_start(ids).pk)
    pipeline_sql(
        "UPDATE profiles SET confidence = 'edited' WHERE session_id = ANY(%s::uuid[])", [ids]
    )
    rollback = bf.run_until_done(bf.run_rollback(source.pk, enqueue=False).pk)
    assert (rollback.state, rollback.counts) == ("failed", {"conflict": 2})
    # The report is written whatever the end: the source run says what happened.
    report = BackfillRun.objects.get(pk=source.pk).rollback_report
    assert report["restored"] == 0 and len(report["conflicts"]) == 2


def test_a_run_finished_with_failures_can_be_rolled_back(clear):
    ids = _sessions(3)
    _refuse(ids[:1])
    source = bf.run_until_done(_start(ids).pk)
    assert source.state == "finished_with_failures"
    rollback = bf.run_until_done(bf.run_rollback(source.pk, enqueue=False).pk)
    assert (rollback.state, rollback.counts) == ("succeeded", {"restored": 2})


# --- Retry rounds keep the earlier rounds' figures -----------------------------------------
def test_retry_failed_keeps_round_one_and_the_run_succeeds_when_the_retry_does(clear, admin_client):
    ids = _sessions(8)
    _refuse(ids[:5])
    run = bf.run_until_done(_start(ids, batch_size=3).pk)
    assert (run.state, run.created, run.failed) == ("finished_with_failures", 3, 5)
    page = _page(admin_client, run)
    assert '<span id="run-state" data-live="state">finished with failures</span>' in page
    assert "succeeded" not in page.split("</h2>")[0]
    assert ("retry", "Retry failed") in _controls(run)

    pipeline_sql("ALTER TABLE profiles DROP CONSTRAINT not_yet")
    runs.run_retry_failed(run.pk)
    during = BackfillRun.objects.get(pk=run.pk)
    # While the retry round runs, the 5 have no outcome yet; round 1 is kept as it was.
    assert (during.state, during.processed, during.created, during.failed) == ("enqueued", 3, 3, 0)
    assert during.rounds[0]["counts"] == {"created": 3, "failed": 5}
    assert (during.rounds[1]["retry"], during.rounds[1]["state"]) == (True, None)

    run = bf.run_until_done(run.pk)
    assert run.state == "succeeded"
    # The headline is what is true now: 8 created (over both rounds), none failed.
    assert (run.processed, run.created, run.failed, run.failed_by_reason) == (8, 8, 0, {})
    assert [
        (r["round"], r["retry"], r["sessions"], r["counts"], r["failed_by_reason"], r["state"])
        for r in run.rounds
    ] == [
        (1, False, 8, {"created": 3, "failed": 5}, {"check": 5}, "finished_with_failures"),
        (2, True, 5, {"created": 5}, {}, "succeeded"),
    ]
    assert all(r["started_at"] and r["finished_at"] for r in run.rounds)
    assert "retrying 5 failed sessions" not in run.message  # the summary of the end, now
    assert run.message.startswith("8 processed: 8 created")

    page = _page(admin_client, run)
    assert '<span id="run-state" data-live="state">succeeded</span>' in page
    rounds = page[page.index('id="run-rounds"') :]
    rounds = rounds[: rounds.index("</table>")]
    assert "round 1</td><td>8</td><td>3 created; 5 failed (check 5)</td>" in rounds
    assert "(check 5)</td><td>finished with failures</td>" in rounds
    assert "round 2 (retry)</td><td>5</td><td>5 created</td><td>succeeded</td>" in rounds
    # The breakdown says what is true now.
    assert '<tr><th>created</th><td data-live="created">8</td></tr>' in page
    assert '<tr><th>failed</th><td data-live="failed_reasons">0</td></tr>' in page
    assert ("retry", "Retry failed") not in _controls(run)


def test_a_run_that_ended_before_rounds_were_kept_gets_its_first_round_on_retry(clear):
    ids = _sessions(2)
    _refuse(ids[:1])
    run = bf.run_until_done(_start(ids).pk)
    BackfillRun.objects.filter(pk=run.pk).update(rounds=[])  # as stored by the old engine
    pipeline_sql("ALTER TABLE profiles DROP CONSTRAINT not_yet")
    runs.run_retry_failed(run.pk)
    run = bf.run_until_done(run.pk)
    assert run.state == "succeeded"
    assert [(r["round"], r["counts"]) for r in run.rounds] == [
        (1, {"created": 1, "failed": 1}),
        (2, {"created": 1}),
    ]


@pytest.mark.django_db(databases="__all__", transaction=True)
@override_settings(BACKFILL_BUSY_RETRY_SECONDS=1.5, BACKFILL_BUSY_BACKOFF_BASE=0.2)
def test_a_session_busy_elsewhere_for_every_round_counts_as_failed(clear_variant):
    ids = _sessions(3)
    held = ids[0]
    with held_elsewhere(ROW_LOCK, [held]):
        started = time.monotonic()
        run = bf.run_until_done(_start(ids, batch_size=3).pk)
        elapsed = time.monotonic() - started
    assert (run.state, run.created, run.failed) == ("finished_with_failures", 2, 1)
    assert run.failed_by_reason == {"busy": 1}
    # Backoff 0.2 + 0.4 + 0.8 s fits 1.5 s of waiting; the next wait (1.6 s) does not.
    assert bf.engine.busy_rounds() == 4
    assert run.items.get(session_id=held).tries == 4
    assert 1.4 <= elapsed < 10, elapsed


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_a_session_held_for_4_seconds_is_written_once_it_is_free(clear_variant):
    """The default backoff (0.5, 1, 2, 4 s, …, over 60 s) outlasts a 4 s lock."""
    ids = _sessions(3)
    held = ids[0]
    with held_elsewhere(ROW_LOCK, [held]) as other:
        release = threading.Timer(4.0, other.rollback)
        release.start()
        try:
            started = time.monotonic()
            run = bf.run_until_done(_start(ids, batch_size=3).pk)
            elapsed = time.monotonic() - started
        finally:
            release.join()
    assert (run.state, run.created, run.failed) == ("succeeded", 3, 0)
    assert 1 < run.items.get(session_id=held).tries < bf.engine.busy_rounds()
    assert 4.0 <= elapsed < 20, elapsed


def test_the_cli_rollback_exits_non_zero_when_a_session_was_left_alone(clear):
    ids = _sessions(2)
    source = bf.run_until_done(_start(ids).pk)
    pipeline_sql("UPDATE profiles SET confidence = 'edited' WHERE session_id = %s", [ids[0]])
    out = StringIO()
    with pytest.raises(CommandError, match=r"finished with failures: 1 of 2 sessions failed"):
        call_command("backfill", "--rollback", str(source.pk), stdout=out)
    report = json.loads(out.getvalue()[out.getvalue().index("\n{") :])
    assert report["restored"] == 1 and len(report["conflicts"]) == 1
