"""Steering runs of any job kind: pause, resume, cancel, retry failed sessions (audited)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from remediation.jobs.engine import IllegalTransition, RunError, requeue, transition
from remediation.models import BackfillItem, BackfillRun
from remediation.services.audit import audit_record

State = BackfillRun.State


def _audited(action: str, run: BackfillRun, actor: Any) -> BackfillRun:
    audit_record(actor, f"backfill.{action}", target=f"run #{run.pk}", outcome=run.state)
    return run


def run_pause(run_id: int, *, actor: Any = None) -> BackfillRun:
    """Running → pausing (takes effect at the next batch boundary); enqueued → paused."""
    run = BackfillRun.objects.get(pk=run_id)
    target = State.PAUSED if run.state == State.ENQUEUED else State.PAUSING
    return _audited(
        "pause", transition(run_id, target, message="paused by a support engineer"), actor
    )


def run_resume(run_id: int, *, actor: Any = None) -> BackfillRun:
    """Paused or interrupted → enqueued, continuing from the cursor."""
    return _audited("resume", transition(run_id, State.ENQUEUED, message="", new_token=True), actor)


def run_cancel(run_id: int, *, actor: Any = None) -> BackfillRun:
    """Stop for good: at the next batch boundary when running, at once otherwise."""
    run = BackfillRun.objects.get(pk=run_id)
    active = run.state in (State.RUNNING, State.PAUSING)
    target = State.CANCELLING if active else State.CANCELLED
    return _audited("cancel", transition(run_id, target, message="cancelled"), actor)


def run_retry_failed(run_id: int, *, actor: Any = None) -> BackfillRun:
    """Put failed and busy sessions back at the end of the run and enqueue it again."""
    with transaction.atomic():
        run = BackfillRun.objects.select_for_update().get(pk=run_id)
        if run.state not in (State.SUCCEEDED, State.CANCELLED, State.ERRORED):
            raise IllegalTransition(f"run #{run_id} is {run.state}; retry when it has stopped")
        failed = list(
            run.items.filter(outcome__in=[BackfillItem.Outcome.FAILED, BackfillItem.Outcome.BUSY])
        )
        if not failed:
            raise RunError("no failed sessions to retry")
        n_failed = sum(1 for i in failed if i.outcome == BackfillItem.Outcome.FAILED)
        requeue(run, failed)
        run.failed = max(0, run.failed - n_failed)
        run.processed = max(0, run.processed - n_failed)
        counts = dict(run.counts or {})
        counts["failed"] = max(0, counts.get("failed", 0) - n_failed)
        run.counts = counts
        run.failed_by_reason = {}
        run.save()
    run = transition(
        run_id, State.ENQUEUED, message=f"retrying {len(failed)} sessions", new_token=True
    )
    return _audited("retry_failed", run, actor)
