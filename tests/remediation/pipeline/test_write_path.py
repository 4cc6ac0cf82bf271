"""The local finalizer and the diagnosis on the emulated Supabase database."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

import scoring
from remediation import pipeline as pw
from remediation.models import FinalizeAttempt, SessionDiagnosis
from remediation.services import InvalidSessionId, session_diagnose, session_finalize
from tests.factories import (
    OPTION_A_EVERYWHERE,
    apply_plan_policy,
    held_elsewhere,
    load_reference_data,
    make_session,
    pipeline_sql,
    relax_checks,
)

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def ref():
    load_reference_data()


def _profile_count(sid):
    return pipeline_sql("SELECT count(*) FROM profiles WHERE session_id = %s", [sid], "one")[0]


def _session(sid):
    return pipeline_sql(
        "SELECT status, completed_at, finalized_at, share_token, share_token_expires_at"
        " FROM assessment_sessions WHERE id = %s",
        [sid],
        "one",
    )


# Inherently the emulation's incident (no BYPASSRLS, no policy: RLS refuses the write); on
# the rebuilt variant service_role bypasses RLS, which the diagnosis tests cover there.
def test_without_bypassrls_and_policy_the_write_fails_with_rls(ref):
    sid = make_session()
    before = _session(sid)
    attempt = session_finalize(session_id=sid, actor="tester")
    assert attempt.outcome == "failed"
    assert attempt.reason == "rls"
    assert attempt.sqlstate == "42501"
    assert "row-level security" in attempt.error_message
    assert attempt.table_name == "profiles"
    assert _profile_count(sid) == 0
    assert _session(sid) == before  # nothing half-written
    assert FinalizeAttempt.objects.filter(session_id=sid).count() == 1


def test_after_the_plans_policy_the_v121_row_fails_a_check_constraint(ref):
    apply_plan_policy()
    sid = make_session()
    attempt = session_finalize(session_id=sid)
    assert (attempt.outcome, attempt.reason, attempt.sqlstate) == ("failed", "check", "23514")
    assert attempt.constraint_name in {
        "profiles_overlay_neuro_check",
        "profiles_overlay_state_check",
        "profiles_fc_coverage_bucket_check",
    }
    assert attempt.constraint_name in attempt.explanation
    diag = session_diagnose(session_id=sid)
    assert diag.category == "check" and diag.constraint == attempt.constraint_name
    assert diag.value in ("none", "low", "full")
    assert _profile_count(sid) == 0


def test_once_the_values_fit_the_trigger_recursion_fails_with_54001(ref):
    from remediation.dev.emulation import load_emulated_schema

    apply_plan_policy()
    relax_checks()
    load_emulated_schema(service_role_bypassrls=False, fc_metrics_trigger=True)
    sid = make_session()
    attempt = session_finalize(session_id=sid)
    assert (attempt.outcome, attempt.reason, attempt.sqlstate) == ("failed", "trigger", "54001")
    assert "update_profile_fc_metrics" in attempt.explanation
    assert session_diagnose(session_id=sid).category == "trigger"


def test_a_grant_missing_is_named_as_such(ref):
    pipeline_sql("ALTER ROLE service_role BYPASSRLS")
    pipeline_sql("REVOKE INSERT ON profiles FROM service_role")
    sid = make_session()
    diag = session_diagnose(session_id=sid)
    assert (diag.category, diag.sqlstate) == ("grant", "42501")
    assert "permission denied" in diag.message


def test_with_the_path_clear_finalize_creates_a_v121_profile_and_updates_the_session(ref):
    pipeline_sql("ALTER ROLE service_role BYPASSRLS")
    relax_checks()
    completed_at = timezone.now() - timedelta(days=5)
    sid = make_session(completed_at=completed_at, share_token="keep-me")
    assert session_diagnose(session_id=sid).category == "would_succeed"
    assert _profile_count(sid) == 0  # the diagnosis rolled back
    attempt = session_finalize(session_id=sid, actor="tester")
    assert attempt.outcome == "created", attempt.explanation
    assert attempt.results_version == "v1.2.1"
    assert attempt.results_url.endswith(f"/results/{sid}?t=keep-me")
    row = pipeline_sql(
        "SELECT id::text, results_version, version, type_code, overlay_neuro, recomputed_at,"
        " submitted_at FROM profiles WHERE session_id = %s",
        [sid],
        "one",
    )
    assert row[0] == attempt.profile_id and row[1:3] == ("v1.2.1", "v1.2.1")
    assert row[3] == attempt.type_code and row[4] == "none" and row[5] is None
    status, kept_completed, finalized, token, expires = _session(sid)
    assert status == "completed" and kept_completed == completed_at and token == "keep-me"
    assert finalized >= attempt.started_at
    assert abs((expires - attempt.started_at) - timedelta(days=30)) < timedelta(seconds=5)
    names = [e["name"] for e in attempt.events]
    assert "fc_fallback_legacy" in names and "scoring_complete" in names
    # Finalizing again returns the profile untouched.
    again = session_finalize(session_id=sid)
    assert again.outcome == "existing" and again.profile_id == attempt.profile_id
    assert (
        pipeline_sql("SELECT submitted_at FROM profiles WHERE session_id = %s", [sid], "one")[0]
        == row[6]
    )
    # An explicit re-score keeps submitted_at and sets recomputed_at.
    rescored = session_finalize(session_id=sid, rescore=True)
    assert rescored.outcome == "rescored"
    submitted, recomputed = pipeline_sql(
        "SELECT submitted_at, recomputed_at FROM profiles WHERE session_id = %s", [sid], "one"
    )
    assert submitted == row[6] and recomputed is not None and _profile_count(sid) == 1


def test_effective_answers_include_those_only_in_answer_numeric(clear_variant):
    sid_text = make_session(seed=5)
    sid_numeric = make_session(seed=5, numeric_only=True)  # same answers, Likert only numeric
    a = session_finalize(session_id=sid_text)
    b = session_finalize(session_id=sid_numeric)
    strengths = pipeline_sql(
        "SELECT session_id::text, strengths FROM profiles WHERE session_id IN (%s, %s)",
        [sid_text, sid_numeric],
        "all",
    )
    assert a.outcome == b.outcome == "created"
    values = {s: v for s, v in strengths}
    assert values[sid_text] == values[sid_numeric]
    assert (
        pipeline_sql(
            "SELECT count(*) FROM assessment_responses WHERE session_id = %s AND answer_value IS NULL",
            [sid_numeric],
            "one",
        )[0]
        > 100
    )


def test_the_profile_matches_the_engine_on_the_same_answers(clear_variant):
    sid = make_session(seed=9)
    session_finalize(session_id=sid)
    ctx = pw.load_context()
    with connections["pipeline"].cursor() as cur:
        answers = pw.read_answers(cur, sid)
    result = ctx.scorer.score(answers)
    stored = scoring.stored_confidence(result, ctx.scorer.config, [])
    type_code, conf_raw, conf_cal, confidence, top_types = pipeline_sql(
        "SELECT type_code, conf_raw, conf_calibrated, confidence, top_types FROM profiles WHERE session_id = %s",
        [sid],
        "one",
    )
    assert type_code == result.type_code
    assert float(conf_raw) == stored.conf_raw and float(conf_cal) == stored.conf_calibrated
    assert confidence == stored.confidence
    assert [t["code"] for t in json.loads(top_types)] == [t.code for t in result.top_types]


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("unknown", "unknown_session"),
        ("no_answers", "no_answers"),
        ("abandoned", "abandoned"),
        ("garbage", "unscorable"),
    ],
)
def test_sessions_that_cannot_be_finalized_say_why(ref, case, reason):
    pipeline_sql("ALTER ROLE service_role BYPASSRLS")
    if case == "unknown":
        sid = "00000000-0000-4000-8000-000000000000"
    elif case == "no_answers":
        sid = make_session(answers={})
    elif case == "abandoned":
        sid = make_session(status="abandoned")
    else:
        sid = make_session(answers={20: "Agree", 21: "lots", 999: "5"})
    attempt = session_finalize(session_id=sid)
    assert (attempt.outcome, attempt.reason) == ("failed", reason)
    assert attempt.explanation
    if case != "unknown":
        assert session_diagnose(session_id=sid).category == reason


def test_malformed_session_id_is_a_clear_error(ref):
    with pytest.raises(InvalidSessionId, match="not a session id"):
        session_finalize(session_id="'; DROP TABLE profiles; --")


def test_maintenance_gate_pauses_finalize(ref):
    pipeline_sql(
        'UPDATE scoring_config SET value = \'{"status": "maintenance", "message": "IR-07"}\''
        " WHERE key = 'system_status'"
    )
    sid = make_session()
    attempt = session_finalize(session_id=sid)
    assert (attempt.outcome, attempt.reason) == ("failed", "maintenance")
    assert "IR-07" in attempt.explanation


def test_fc_scoring_runs_first_and_its_failure_is_recorded_not_fatal(ref):
    from remediation import reference_data

    pipeline_sql("ALTER ROLE service_role BYPASSRLS")
    relax_checks()
    from remediation.services import fc

    seed = json.loads(reference_data.fc_seed_path().read_text())
    fc.fc_set_load(seed)
    sid = make_session(seed=3)
    for block in seed["blocks"]:
        pipeline_sql(
            "INSERT INTO fc_responses (session_id, block_id, option_id) VALUES (%s, %s, %s)",
            [sid, block["id"], block["options"][0]["id"]],
        )
    attempt = session_finalize(session_id=sid)
    assert attempt.outcome == "created"
    names = [e["name"] for e in attempt.events]
    assert {"name": "fc_scoring_attempted", "session_id": sid, "success": True} in attempt.events
    assert "fc_scores_loaded" in names and "fc_fallback_legacy" not in names
    scores, blocks = pipeline_sql(
        "SELECT scores_json, blocks_answered FROM fc_scores WHERE session_id = %s", [sid], "one"
    )
    assert blocks == 6
    assert json.loads(scores) == OPTION_A_EVERYWHERE
    # An FC write the database refuses is recorded, and the profile is still written.
    sid2 = make_session(seed=4)
    pipeline_sql(
        "INSERT INTO fc_responses (session_id, block_id, option_id) VALUES (%s, %s, %s)",
        [sid2, seed["blocks"][0]["id"], seed["blocks"][0]["options"][1]["id"]],
    )
    pipeline_sql("REVOKE INSERT, UPDATE ON fc_scores FROM service_role")
    attempt2 = session_finalize(session_id=sid2)
    assert attempt2.outcome == "created"
    failed = [e for e in attempt2.events if e["name"] == "fc_scoring_attempted"]
    assert failed and failed[0]["success"] is False and "42501" in failed[0]["error"]
    assert "fc_fallback_legacy" in [e["name"] for e in attempt2.events]


def test_diagnosis_is_saved_and_reports_existing_profiles(clear_variant):
    sid = make_session()
    session_finalize(session_id=sid)
    diag = session_diagnose(session_id=sid)
    assert diag.category == "has_profile" and not diag.blocking
    assert SessionDiagnosis.objects.get(session_id=sid).category == "has_profile"


def test_two_concurrent_finalizes_of_one_session_give_one_profile(clear_variant):
    sid = make_session(seed=21)
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def worker():
        barrier.wait()
        try:
            outcomes.append(session_finalize(session_id=sid).outcome)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["created", "existing"]
    assert _profile_count(sid) == 1


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_a_session_held_by_another_worker_is_reported_busy(pipeline_db):
    from django.test import override_settings

    load_reference_data()
    sid = make_session(seed=31)
    with (
        held_elsewhere("SELECT 1 FROM assessment_sessions WHERE id = %s FOR UPDATE", [sid]),
        override_settings(PIPELINE_ROW_LOCK_TIMEOUT="300ms"),
    ):
        attempt = session_finalize(session_id=sid)
    assert (attempt.outcome, attempt.reason, attempt.sqlstate) == ("failed", "busy", "55P03")
    assert "holds this session" in attempt.explanation


def _answer_fc(session_id: str, seed: dict) -> None:
    for block in seed["blocks"]:
        pipeline_sql(
            "INSERT INTO fc_responses (session_id, block_id, option_id) VALUES (%s, %s, %s)",
            [session_id, block["id"], block["options"][0]["id"]],
        )


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_a_session_is_all_or_nothing_alone_and_in_a_batch(clear_path):
    """Issue 14, item 5: a session's FC scores, profile and session update commit together
    or not at all. A refused profile write takes the session's FC scores with it, in a batch
    as well as alone, while the batch's other sessions are written whole."""
    from remediation import jobs, reference_data
    from remediation.services import fc

    seed = json.loads(reference_data.fc_seed_path().read_text())
    fc.fc_set_load(seed)
    good, bad = make_session(seed=1), make_session(seed=2)
    _answer_fc(good, seed)
    _answer_fc(bad, seed)
    # The profile write of `bad` alone is refused (a CHECK on its own row).
    pipeline_sql(
        "ALTER TABLE profiles ADD CONSTRAINT refuse_one CHECK (session_id <> %s::uuid)", [bad]
    )
    try:
        alone = session_finalize(session_id=bad)
        assert (alone.outcome, alone.sqlstate) == ("failed", "23514")
        count = "SELECT count(*) FROM {} WHERE session_id = %s"
        assert pipeline_sql(count.format("fc_scores"), [bad], "one")[0] == 0
        run = jobs.run_until_done(
            jobs.backfill_start(selection="ids", ids=[good, bad], enqueue=False).pk
        )
        assert (run.created, run.failed) == (1, 1)
        assert pipeline_sql(count.format("fc_scores"), [good], "one")[0] == 1
        assert pipeline_sql(count.format("profiles"), [good], "one")[0] == 1
        assert pipeline_sql(count.format("fc_scores"), [bad], "one")[0] == 0
        assert pipeline_sql(count.format("profiles"), [bad], "one")[0] == 0
        status = "SELECT status FROM assessment_sessions WHERE id = %s"
        assert pipeline_sql(status, [good], "one")[0] == "completed"
    finally:
        pipeline_sql("DELETE FROM profiles")
        pipeline_sql("ALTER TABLE profiles DROP CONSTRAINT refuse_one")


def test_no_scorable_answers_is_refused_unless_allowed(ref):
    """Issue 14, item 9: the engine returns the all-zero profile; the portal refuses to
    write it by default, and writes it where WRITE_UNSCORABLE_PROFILES allows."""
    from django.test import override_settings

    pipeline_sql("ALTER ROLE service_role BYPASSRLS")
    relax_checks()
    sid = make_session(answers={1: "NaN", 2: "🙂", 247: "free text"})
    refused = session_finalize(session_id=sid)
    assert (refused.outcome, refused.reason) == ("failed", "unscorable")
    assert refused.explanation.startswith("no scorable answers")
    with override_settings(WRITE_UNSCORABLE_PROFILES=True):
        written = session_finalize(session_id=sid)
    assert written.outcome == "created", written.explanation
    type_code, close_call, fit_band = pipeline_sql(
        "SELECT type_code, close_call, fit_band FROM profiles WHERE session_id = %s", [sid], "one"
    )
    assert (type_code, close_call, fit_band) == ("LIE", True, "low_fit")
