"""The write-path probe writes the engine's real row (the test session's), so each role
meets what the edge function's write meets; the forged-claim note follows RLS."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from remediation.dev.emulation import load_emulated_schema
from remediation.services import probe, session_finalize
from tests.factories import (
    load_reference_data,
    make_session,
    pipeline_sql,
    relax_checks,
    restore_checks,
    set_fixes,
)


def cells_of(matrix: dict) -> dict:
    return {(c["role"], c["claim"]): c for c in matrix["cells"]}


SERVICE = ("service_role", "service_role")
FORGED = ("authenticated", "service_role (forged)")


@pytest.fixture
def rebuilt(pipeline_db):
    """The demo's database: no BYPASSRLS, no policy, the three CHECKs, the recursive trigger."""
    load_emulated_schema(service_role_bypassrls=False, fc_metrics_trigger=True)
    load_reference_data()
    yield
    pipeline_sql("DELETE FROM profiles")
    set_fixes("0004")
    pipeline_sql("DROP TRIGGER IF EXISTS update_fc_metrics_trigger ON profiles")
    pipeline_sql("ALTER ROLE service_role NOBYPASSRLS")
    restore_checks()
    pipeline_sql("DROP SCHEMA IF EXISTS opsportal CASCADE")


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_service_role_meets_what_the_engine_row_meets_fix_by_fix(rebuilt):
    make_session(seed=1, completed_at=timezone.now() - timedelta(days=2))
    test_session = make_session(seed=2, completed_at=timezone.now() - timedelta(hours=1))
    matrix = probe.probe_write_path()
    assert matrix["session"] == {
        "session_id": test_session,
        "synthetic": False,
        "values": {
            "type_code": matrix["session"]["values"]["type_code"],
            "overlay_neuro": "none",
            "overlay_state": "none",
            "fc_answered_ct": 18,  # its 18 fc_map answers, fewer than fc_expected_min 24
            "fc_coverage_bucket": "low",
        },
        "note": matrix["notes"][-1],
    }
    assert cells_of(matrix)[SERVICE]["insert"] == "refused: 42501 rls"
    set_fixes("0005")  # Fix A: RLS lets service_role through; the CHECKs refuse the row
    cells = cells_of(probe.probe_write_path())
    assert cells[SERVICE]["insert"].startswith("refused: 23514 check profiles_")
    assert cells[SERVICE]["insert_category"] == "check"
    set_fixes("0007")  # Fix D: the values fit; the recursive trigger fails the write
    matrix = probe.probe_write_path()
    cells = cells_of(matrix)
    assert cells[SERVICE]["insert"] == "refused: 54001 trigger"
    # The forged claim passed the plan's policy and was stopped only by the trigger: flagged.
    assert cells[FORGED]["insert"] == "refused: 54001 trigger"
    (note,) = [n for n in matrix["notes"] if "forged claim gets through" in n]
    assert "stopped by something after the policy: refused: 54001 trigger" in note
    set_fixes("0008")  # Fix E: the write succeeds
    matrix = probe.probe_write_path()
    assert cells_of(matrix)[SERVICE]["insert"] == "allowed"
    assert cells_of(matrix)[FORGED]["insert"] == "allowed"
    assert any("forged claim gets through" in n for n in matrix["notes"])
    assert pipeline_sql("SELECT count(*) FROM profiles", fetch="one")[0] == 0
    assert pipeline_sql("SELECT count(*) FROM fc_scores", fetch="one")[0] == 0


@pytest.mark.django_db(databases="__all__")
def test_without_an_orphan_the_probe_says_it_writes_a_synthetic_session():
    load_reference_data()
    matrix = probe.probe_write_path()
    assert matrix["session"]["synthetic"] is True and matrix["session"]["session_id"] is None
    assert "synthetic session (there is no orphaned session" in matrix["notes"][-1]
    assert matrix["session"]["values"]["fc_coverage_bucket"] == "low"
    assert cells_of(matrix)[SERVICE]["insert"] == "refused: 42501 rls"
    pipeline_sql("ALTER ROLE service_role BYPASSRLS")
    assert cells_of(probe.probe_write_path())[SERVICE]["insert"].startswith("refused: 23514")
    assert pipeline_sql("SELECT count(*) FROM assessment_sessions", fetch="one")[0] == 0


@pytest.mark.django_db(databases="__all__")
def test_a_test_session_without_answers_falls_back_and_says_why():
    load_reference_data()
    sid = make_session(answers={}, completed_at=timezone.now() - timedelta(hours=1))
    matrix = probe.probe_write_path()
    assert matrix["session"]["synthetic"] is True
    assert f"the test session {sid} cannot be scored" in matrix["notes"][-1]


@pytest.mark.django_db(databases="__all__")
def test_the_probes_row_is_the_row_the_write_path_writes():
    load_reference_data()
    sid = make_session(seed=5, completed_at=timezone.now() - timedelta(hours=1))
    values = probe.probe_write_path()["session"]["values"]
    pipeline_sql("ALTER ROLE service_role BYPASSRLS")
    relax_checks()
    assert session_finalize(session_id=sid).outcome == "created"
    written = pipeline_sql(
        "SELECT type_code, overlay_neuro, overlay_state, fc_answered_ct, fc_coverage_bucket"
        " FROM profiles WHERE session_id = %s",
        [sid],
        fetch="one",
    )
    assert tuple(values.values()) == written


@pytest.mark.django_db(databases="__all__")
def test_a_forged_claim_refused_by_rls_is_not_flagged():
    load_reference_data()
    make_session(completed_at=timezone.now() - timedelta(hours=1))
    pipeline_sql(
        "CREATE POLICY only_service ON profiles FOR ALL TO service_role USING (true)"
        " WITH CHECK (true)"
    )
    matrix = probe.probe_write_path()
    assert cells_of(matrix)[FORGED]["insert"] == "refused: 42501 rls"
    assert cells_of(matrix)[SERVICE]["insert"].startswith("refused: 23514 check")
    assert not any("forged claim" in n for n in matrix["notes"])


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_the_probe_shows_what_each_fix_a_form_lets_through(pipeline_db):
    """Issue 14, item 3: the plan's form lets a forged service_role claim through, the strict
    form does not; tried alone and rolled back, so the table's policies are untouched."""
    from remediation.services.probe import probe_write_path
    from tests.factories import load_reference_data, make_session, pipeline_sql

    load_reference_data()
    make_session()
    policies = "SELECT count(*) FROM pg_policies WHERE tablename = 'profiles'"
    before = pipeline_sql(policies, fetch="one")[0]
    forms = {f["form"]: f for f in probe_write_path()["forms"]}
    assert forms["plan"]["forged"]["passed_rls"] is True
    assert forms["strict"]["forged"]["passed_rls"] is False
    assert "42501" in forms["strict"]["forged"]["insert"]
    # The real service_role passes the policy under both forms (the engine's row may then
    # meet a CHECK: that is a later blocker, not the policy).
    assert (
        forms["plan"]["service_role"]["passed_rls"]
        and forms["strict"]["service_role"]["passed_rls"]
    )
    assert pipeline_sql(policies, fetch="one")[0] == before
