"""classify_error on 23514: every CHECK constraint the attempted row violates, with its
value, although PostgreSQL reports only the first."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connections, transaction

from remediation.pipeline import classify_error
from remediation.services import session_diagnose
from tests.factories import apply_plan_policy, load_reference_data, make_session, pipeline_sql

pytestmark = pytest.mark.django_db(databases="__all__")

THREE = {
    ("profiles_fc_coverage_bucket_check", "fc_coverage_bucket", "low"),
    ("profiles_overlay_neuro_check", "overlay_neuro", "none"),
    ("profiles_overlay_state_check", "overlay_state", "none"),
}


@pytest.fixture
def ref():
    load_reference_data()


def test_the_diagnosis_names_all_three_constraints_the_engine_row_violates(ref):
    apply_plan_policy()  # Fix A's form: RLS lets the service-role write through
    sid = make_session()
    with connections["pipeline"].cursor() as cur:
        cur.execute("SELECT value FROM scoring_config WHERE key = 'fc_expected_min'")
        assert str(cur.fetchone()[0]) == "24"  # so the engine writes 'low'
    d = session_diagnose(session_id=sid)
    assert (d.category, d.sqlstate) == ("check", "23514")
    assert d.explanation.startswith(
        "3 CHECK constraints on profiles refuse the row (23514; PostgreSQL reports only the first): "
    )
    for name, column, value in THREE:
        assert f"{name} refuses {column} = {value!r}" in d.explanation
    # The first named is the one PostgreSQL reported, as before.
    assert d.explanation.split(": ", 1)[1].startswith(f"{d.constraint} refuses")


def _refused(row: dict) -> DatabaseError:
    sid = make_session()
    try:
        with transaction.atomic(using="pipeline"), connections["pipeline"].cursor() as cur:
            cur.execute(
                "INSERT INTO profiles (session_id, overlay_neuro, overlay_state, fc_coverage_bucket)"
                " VALUES (%s, %s, %s, %s)",
                [sid, row["overlay_neuro"], row["overlay_state"], row["fc_coverage_bucket"]],
            )
    except DatabaseError as exc:
        return exc
    raise AssertionError("the insert was accepted")


def test_classify_error_lists_every_violation_reported_one_first(ref):
    row = {"overlay_neuro": "none", "overlay_state": "0", "fc_coverage_bucket": "full"}
    exc = _refused(row)
    info = classify_error(exc, attempted_row=row)
    assert info.category == "check"
    assert {tuple(v) for v in info.violations} == {
        ("profiles_fc_coverage_bucket_check", "fc_coverage_bucket", "full"),
        ("profiles_overlay_neuro_check", "overlay_neuro", "none"),
    }
    first = info.violations[0]
    assert (info.constraint, info.column, info.value) == tuple(first)
    assert info.explanation.startswith("2 CHECK constraints on profiles refuse the row")


def test_one_violation_keeps_the_single_constraint_explanation(ref):
    row = {"overlay_neuro": "0", "overlay_state": "0", "fc_coverage_bucket": "low"}
    info = classify_error(_refused(row), attempted_row=row)
    assert info.violations == (("profiles_fc_coverage_bucket_check", "fc_coverage_bucket", "low"),)
    assert info.explanation == (
        "The CHECK constraint profiles_fc_coverage_bucket_check on profiles refused"
        " fc_coverage_bucket = 'low' (23514)."
    )


def test_without_the_row_only_the_reported_constraint_is_named(ref):
    row = {"overlay_neuro": "none", "overlay_state": "none", "fc_coverage_bucket": "low"}
    info = classify_error(_refused(row))
    assert len(info.violations) == 1 and info.violations[0].constraint == info.constraint
    assert info.value == ""
    assert pipeline_sql("SELECT count(*) FROM profiles", fetch="one")[0] == 0
