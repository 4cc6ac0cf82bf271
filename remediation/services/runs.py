"""Steering runs of any job kind: pause, resume, cancel, retry failed sessions (audited)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from remediation.jobs.engine import (
    TERMINAL,
    IllegalTransition,
    RunError,
    open_retry_round,
    transition,
)
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
    """Put failed (and busy) sessions back at the end of a stopped run and enqueue it again:
    a new round. The earlier rounds' figures stay in `run.rounds`; the headline figures are
    recounted (the retried sessions have no outcome until the new round gives them one)."""
    with transaction.atomic():
        run = BackfillRun.objects.select_for_update().get(pk=run_id)
        if run.state not in TERMINAL:
            raise IllegalTransition(f"run #{run_id} is {run.state}; retry when it has stopped")
        failed = list(
            run.items.filter(outcome__in=[BackfillItem.Outcome.FAILED, BackfillItem.Outcome.BUSY])
        )
        if not failed:
            raise RunError("no failed sessions to retry")
        open_retry_round(run, failed, timezone.now())
        run.save()
    run = transition(
        run_id,
        State.ENQUEUED,
        message=f"round {len(run.rounds)}: retrying {len(failed)} failed sessions",
        new_token=True,
    )
    return _audited("retry_failed", run, actor)
