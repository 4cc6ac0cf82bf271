"""Fix A as a migration on the pipeline database: forward, backward, twice, under a lock."""

from __future__ import annotations

import time

import pytest
from django.test import override_settings

from remediation.fixes import executor
from tests.factories import PLAN_POLICY, held_elsewhere, pipeline_sql, set_fixes

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)
POLICY_COUNT = (
    "SELECT count(*) FROM pg_policies WHERE schemaname = 'public' AND tablename = 'profiles'"
    " AND policyname = 'Service role can manage profiles'"
)


@pytest.fixture
def pipeline_clean(pipeline_db):
    yield
    pipeline_sql('DROP POLICY IF EXISTS "Service role can manage profiles" ON public.profiles')
    pipeline_sql("DROP SCHEMA IF EXISTS opsportal CASCADE")


def migrate(target: str) -> None:
    set_fixes(target)


def policies() -> int:
    return pipeline_sql(POLICY_COUNT, fetch="one")[0]


def test_forward_backward_and_twice(pipeline_clean):
    assert policies() == 0 and not executor.is_applied("A")
    migrate("0005")
    assert policies() == 1 and executor.is_applied("A")
    definition = pipeline_sql(
        "SELECT cmd, roles::text, qual, with_check FROM pg_policies"
        " WHERE policyname = 'Service role can manage profiles'",
        fetch="one",
    )
    assert definition == (
        "ALL",
        "{public}",
        "(auth.role() = 'service_role'::text)",
        "(auth.role() = 'service_role'::text)",
    )
    migrate("0005")  # twice: nothing changes
    assert policies() == 1
    migrate("0004")
    assert policies() == 0 and not executor.is_applied("A")
    migrate("0004")
    assert policies() == 0
    # The portal's bookkeeping is in its own schema, never in public.
    assert pipeline_sql("SELECT to_regclass('public.django_migrations')", fetch="one")[0] is None
    assert (
        pipeline_sql("SELECT to_regclass('opsportal.django_migrations')", fetch="one")[0]
        is not None
    )


def test_a_policy_applied_by_hand_beforehand_leaves_exactly_one(pipeline_clean):
    pipeline_sql(PLAN_POLICY)
    migrate("0005")
    assert policies() == 1


def test_a_busy_table_makes_it_fail_fast_and_leaves_nothing(pipeline_clean):
    with held_elsewhere("LOCK TABLE public.profiles IN ACCESS EXCLUSIVE MODE"):
        started = time.monotonic()
        with (
            override_settings(PIPELINE_LOCK_TIMEOUT="700ms"),
            pytest.raises(Exception, match="lock timeout"),
        ):
            migrate("0005")
        elapsed = time.monotonic() - started
    assert elapsed < 5
    assert policies() == 0 and not executor.is_applied("A")
