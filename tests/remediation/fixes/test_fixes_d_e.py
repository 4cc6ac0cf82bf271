"""Fixes D and E as pipeline migrations, and the demo's chain 42501 → 23514 → 54001 → created."""

from __future__ import annotations

import time

import pytest
from django.test import override_settings
from django.utils import timezone

from remediation import jobs as bf
from remediation import selectors
from remediation.dev.demo import seed_demo
from remediation.dev.emulation import load_emulated_schema
from remediation.fixes import executor
from remediation.selectors import health
from remediation.services import session_diagnose, session_finalize
from tests.factories import (
    held_elsewhere,
    load_reference_data,
    make_session,
    pipeline_sql,
    restore_checks,
    set_fixes,
)

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


@pytest.fixture
def rebuilt(pipeline_db):
    """The database rebuilt from the migrations: the CHECKs and the recursive trigger."""
    load_emulated_schema(service_role_bypassrls=False, fc_metrics_trigger=True)
    load_reference_data()
    yield
    pipeline_sql(
        "DELETE FROM profiles"
    )  # rows the old CHECKs reject would (rightly) block the reverse
    set_fixes("0004")
    pipeline_sql("DROP TRIGGER IF EXISTS update_fc_metrics_trigger ON profiles")
    pipeline_sql("ALTER ROLE service_role NOBYPASSRLS")
    restore_checks()
    pipeline_sql("DROP SCHEMA IF EXISTS opsportal CASCADE")


def migrate(target: str) -> None:
    set_fixes(target)


def constraint_defs() -> dict[str, str]:
    return dict(
        pipeline_sql(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = 'public.profiles'::regclass AND contype = 'c'",
            fetch="all",
        )
    )


def trigger_def() -> str | None:
    row = pipeline_sql(
        "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgname = 'update_fc_metrics_trigger'",
        fetch="one",
    )
    return row[0] if row else None


def test_the_demo_chain_step_by_step_then_a_backfill_clears_every_orphan(rebuilt):
    seed_demo(seed=3, now=timezone.now(), force=True, using="pipeline")
    load_emulated_schema(service_role_bypassrls=False, fc_metrics_trigger=True)
    newest = str(
        selectors.orphaned_sessions().order_by("-completed_at").values_list("pk", flat=True)[0]
    )
    chain = [session_diagnose(session_id=newest).category]
    migrate("0005")  # Fix A
    chain.append(session_diagnose(session_id=newest).sqlstate)
    migrate("0007")  # Fix D
    chain.append(session_diagnose(session_id=newest).sqlstate)
    migrate("0008")  # Fix E
    chain.append(session_diagnose(session_id=newest).category)
    assert chain == ["rls", "23514", "54001", "would_succeed"]
    attempt = session_finalize(session_id=newest)
    assert attempt.outcome == "created"
    # The trigger still maintains its columns.
    fc_count, answered, bucket = pipeline_sql(
        "SELECT fc_count, fc_answered_ct, fc_coverage_bucket FROM profiles WHERE session_id = %s",
        [newest],
        "one",
    )
    assert fc_count == answered > 0 and bucket == "low"
    run = bf.run_until_done(bf.backfill_start(selection="filter", params={}, enqueue=False).pk)
    assert run.state == "succeeded" and run.failed == 0
    assert selectors.orphaned_sessions().count() == 0
    start = timezone.now() - timezone.timedelta(days=20)
    completed, converted = health.conversion(start, timezone.now())
    assert completed > 40 and converted == completed
    # The run's end enqueued a health snapshot (its own task); once a worker has run it,
    # the dashboard shows the recovery.
    from django_q.models import OrmQ

    from remediation.models import MetricSnapshot
    from remediation.tasks import health_check

    assert "remediation.tasks.health_check" in [q.func() for q in OrmQ.objects.all()]
    health_check()
    latest = MetricSnapshot.objects.filter(window="all").first()
    assert latest is not None and latest.figures["windows"]["7d"]["conversion"] == 1.0


def test_fix_d_forward_backward_twice_and_refusal(rebuilt):
    pipeline_sql("DROP TRIGGER update_fc_metrics_trigger ON profiles")  # Fix E's business, not D's
    before = constraint_defs()
    migrate("0007")
    widened = constraint_defs()
    assert (
        "'none'" in widened["profiles_overlay_neuro_check"]
        and "'low'" in widened["profiles_fc_coverage_bucket_check"]
    )
    assert "'–'" in widened["profiles_overlay_neuro_check"]  # what was allowed still is
    migrate("0007")
    assert constraint_defs() == widened
    migrate("0006")
    assert constraint_defs() == before
    # A row written since that the old constraints reject makes the reverse refuse.
    migrate("0007")
    sid = make_session()
    pipeline_sql(
        "INSERT INTO profiles (session_id, overlay_neuro, overlay_state, fc_coverage_bucket)"
        " VALUES (%s, 'none', '0', 'None')",
        [sid],
    )
    with pytest.raises(
        Exception, match=r"Fix D cannot be rolled back.*profiles_overlay_neuro_check"
    ):
        migrate("0006")
    assert constraint_defs() == widened
    assert executor.is_applied("D")


def test_fix_e_forward_backward_twice_and_absent(rebuilt):
    original = trigger_def()
    assert original and "WHEN" not in original
    migrate("0008")
    guarded = trigger_def()
    assert "pg_trigger_depth() < 1" in guarded
    migrate("0008")
    assert trigger_def() == guarded
    migrate("0007")
    assert trigger_def() == original
    pipeline_sql("DROP TRIGGER update_fc_metrics_trigger ON profiles")
    migrate("0008")  # nothing to do: no trigger
    assert trigger_def() is None
    assert executor.is_applied("E")


@pytest.mark.parametrize("target", ["0007", "0008"])
def test_a_busy_table_makes_fixes_fail_fast(rebuilt, target):
    migrate("0006" if target == "0007" else "0007")
    before = (constraint_defs(), trigger_def())
    with held_elsewhere("LOCK TABLE public.profiles IN ACCESS EXCLUSIVE MODE"):
        started = time.monotonic()
        with (
            override_settings(PIPELINE_LOCK_TIMEOUT="500ms"),
            pytest.raises(Exception, match="lock timeout"),
        ):
            migrate(target)
    assert time.monotonic() - started < 5
    assert (constraint_defs(), trigger_def()) == before
