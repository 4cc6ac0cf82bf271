"""The runbook checks that depend on what the engine really writes: the CHECK constraints
against every value the engine can write under this database's config, and sessions with
FC responses but no FC scores."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from remediation.selectors import checks as runbook_checks
from tests.factories import load_reference_data, make_session, pipeline_sql, relax_checks

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def ref():
    load_reference_data()


def check(key: str) -> runbook_checks.Check:
    return {c.key: c for c in runbook_checks.run_checks()}[key]


def set_config(key: str, value) -> None:
    pipeline_sql(
        "UPDATE scoring_config SET value = %s::jsonb WHERE key = %s", [json.dumps(value), key]
    )


# --- CHECK constraints vs the engine's values -----------------------------------------------
def test_the_specs_old_vocabulary_fails_naming_every_value_the_engine_writes(ref):
    # The reference config: fc_expected_min 24, more than any session can answer (18 fc_map
    # items, 8 FC score keys): the engine writes 'low' for every session, never 'full'.
    c = check("check_constraints")
    assert c.status == "FAIL"
    assert c.figure == "3"
    assert "profiles_overlay_neuro_check rejects overlay_neuro = 'none'" in c.detail
    assert "profiles_overlay_state_check rejects overlay_state = 'none'" in c.detail
    assert "profiles_fc_coverage_bucket_check rejects fc_coverage_bucket = 'low'" in c.detail
    assert "'full'" not in c.detail.split("The engine writes here")[0]
    assert "fc_expected_min = 24" in c.detail
    verdicts = {r[0]: r[2] for r in c.rows}
    assert verdicts["profiles_fc_coverage_bucket_check"] == "refuses fc_coverage_bucket = 'low'"


def test_a_constraint_accepting_full_but_not_low_fails_naming_low(ref):
    relax_checks()
    pipeline_sql(
        "ALTER TABLE profiles ADD CONSTRAINT profiles_fc_coverage_bucket_check"
        " CHECK (fc_coverage_bucket IN ('None', 'Partial', 'Full', 'full'))"
    )
    c = check("check_constraints")
    assert (c.status, c.figure) == ("FAIL", "1")
    assert c.detail.startswith(
        "profiles_fc_coverage_bucket_check rejects fc_coverage_bucket = 'low'."
    )


def test_the_threshold_comes_from_this_databases_config(ref):
    relax_checks()
    pipeline_sql(
        "ALTER TABLE profiles ADD CONSTRAINT profiles_fc_coverage_bucket_check"
        " CHECK (fc_coverage_bucket = 'low')"
    )
    # 24: no session reaches it, the engine writes only 'low', which the constraint accepts.
    assert check("check_constraints").status == "PASS"
    # 8: a session with all eight FC scores reaches it and gets 'full'.
    set_config("fc_expected_min", 8)
    c = check("check_constraints")
    assert (c.status, c.figure) == ("FAIL", "1")
    assert "rejects fc_coverage_bucket = 'full'" in c.detail
    assert "fc_coverage_bucket 'low', 'full'" in c.detail
    # 0 (the default): fc_answered_ct >= 0 always, so never 'low'.
    set_config("fc_expected_min", 0)
    c = check("check_constraints")
    assert "fc_coverage_bucket 'full'." in c.detail and "'low'" not in c.detail


def test_constraints_on_other_columns_the_engine_writes_are_tested_too(ref):
    relax_checks()
    pipeline_sql(
        "ALTER TABLE profiles ADD CONSTRAINT profiles_validity_status_check"
        " CHECK (validity_status IN ('pass', 'fail')) NOT VALID,"
        " ADD CONSTRAINT profiles_session_kind_check CHECK (user_id IS NOT NULL) NOT VALID"
    )
    c = check("check_constraints")
    assert (c.status, c.figure) == ("FAIL", "1")
    assert "profiles_validity_status_check rejects validity_status = 'valid'" in c.detail
    # user_id is not a column the engine writes: its constraint is listed, not judged.
    assert ({r[0]: r[:2] for r in c.rows}["profiles_session_kind_check"]) == [
        "profiles_session_kind_check",
        "CHECK ((user_id IS NOT NULL)) NOT VALID",
    ]
    assert {r[0]: r[2] for r in c.rows}["profiles_session_kind_check"] == (
        "not written by the engine"
    )


def test_relaxed_constraints_pass(ref):
    relax_checks()
    c = check("check_constraints")
    assert (c.status, c.figure) == ("PASS", "0")
    assert pipeline_sql("SELECT count(*) FROM profiles", fetch="one")[0] == 0


# --- Sessions with FC responses but no FC scores --------------------------------------------
def _recent(n: int, first_seed: int = 0) -> list[str]:
    return [
        make_session(seed=first_seed + i, completed_at=timezone.now() - timedelta(days=1))
        for i in range(n)
    ]


def _fc_block_and_option() -> tuple[str, str]:
    block = pipeline_sql(
        "INSERT INTO fc_blocks (version, code, title, order_index)"
        " VALUES ('v1.2', 'B1', 'b', 1) RETURNING id::text",
        fetch="one",
    )[0]
    option = pipeline_sql(
        "INSERT INTO fc_options (block_id, option_code, prompt, weights_json, order_index)"
        """ VALUES (%s, 'A', 'a', '{"Ti": 1}', 1) RETURNING id::text""",
        [block],
        fetch="one",
    )[0]
    return block, option


def _fc_responses(ids: list[str]) -> None:
    block, option = _fc_block_and_option()
    for sid in ids:
        pipeline_sql(
            "INSERT INTO fc_responses (session_id, block_id, option_id) VALUES (%s, %s, %s)",
            [sid, block, option],
        )


def test_sessions_without_fc_responses_do_not_count(ref):
    _recent(12)  # the incident: no FC responses at all, so there is nothing to score
    c = check("no_fc_scores")
    assert (c.status, c.figure) == ("PASS", "0")


def test_sessions_with_fc_responses_and_no_scores_count(ref):
    with_fc = _recent(3)
    _recent(5, first_seed=10)  # no FC responses: not counted
    _fc_responses(with_fc)
    assert (check("no_fc_scores").status, check("no_fc_scores").figure) == ("WARN", "3")
    pipeline_sql(
        "INSERT INTO fc_scores (session_id, version, fc_kind, scores_json, blocks_answered)"
        """ VALUES (%s, 'v1.2', 'functions', '{"Ti": 100}', 1)""",
        [with_fc[0]],
    )
    assert check("no_fc_scores").figure == "2"


def test_more_than_ten_sessions_with_fc_responses_and_no_scores_fail(ref):
    ids = _recent(11)
    _fc_responses(ids)
    assert (check("no_fc_scores").status, check("no_fc_scores").figure) == ("FAIL", "11")


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_after_fix_d_the_check_passes(pipeline_db):
    from remediation.fixes import executor
    from tests.factories import restore_checks, set_fixes

    load_reference_data()
    assert check("check_constraints").status == "FAIL"
    try:
        executor.run("D")
        c = check("check_constraints")
        assert (c.status, c.figure) == ("PASS", "0"), c.detail
    finally:
        set_fixes("0004")
        restore_checks()
        pipeline_sql("DROP SCHEMA IF EXISTS opsportal CASCADE")


def test_the_optional_columns_check_shows_what_the_live_schema_has(schema_variant):
    from remediation.selectors.checks import run_checks

    check = {c.key: c for c in run_checks()}["optional_columns"]
    states = {(t, c): s for t, c, s in check.rows}
    for table, column in (
        ("assessment_sessions", "finalized_at"),
        ("assessment_sessions", "share_token_expires_at"),
        ("profiles", "share_token"),
    ):
        expected = "present" if schema_variant.has(table, column) else "absent"
        assert states[(table, column)] == expected, (schema_variant.name, table, column)
    if schema_variant.name == "rebuilt":
        assert "profiles.share_token" in check.detail and check.figure.startswith("4 of 7")
    else:
        assert check.detail == "All present." and check.figure == "7 of 7 present"


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_restore_checks_puts_back_exactly_what_was_there(pipeline_db):
    """Committed relax then restore leaves the catalog as the schema built it (validated
    CHECKs, not NOT VALID ones), so no later test depends on the order tests ran in."""
    from tests.factories import restore_checks

    catalog = (
        "SELECT conname, pg_get_constraintdef(oid), convalidated FROM pg_constraint"
        " WHERE conrelid = 'public.profiles'::regclass AND contype = 'c' ORDER BY conname"
    )
    before = pipeline_sql(catalog, fetch="all")
    assert len(before) == 3 and all(validated for *_, validated in before)
    relax_checks()
    assert pipeline_sql(catalog, fetch="all") == []
    restore_checks()
    assert pipeline_sql(catalog, fetch="all") == before
