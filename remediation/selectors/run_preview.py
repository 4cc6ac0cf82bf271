"""What rolling back or cancelling a run would do, read from the run's items (and, for what a
rollback cannot restore, from the live trigger catalog). Reads only."""

from __future__ import annotations

from typing import Any

from django.db import DatabaseError

from remediation.jobs.engine import STOPPED
from remediation.jobs.rollback import restorable_items
from remediation.jobs.selection import held_sessions
from remediation.models import BackfillItem, BackfillRun
from remediation.selectors.triggers import rewritten_columns, write_triggers

SAMPLE = 20
Outcome = BackfillItem.Outcome


def rollback_refusal(run: BackfillRun) -> str:
    """Why a rollback of `run` would be refused now ("" when it would start): the same
    rules as jobs.run_rollback, checked without writing."""
    if run.kind != BackfillRun.Kind.FINALIZE:
        return f"run #{run.pk} is a {run.kind} run; only backfills are rolled back"
    if run.state not in STOPPED:
        return f"run #{run.pk} is {run.state}: pause or cancel it before rolling back"
    if run.dry_run:
        return "a dry run changed nothing; there is nothing to roll back"
    active = run.follow_up_runs.filter(kind="rollback", state__in=BackfillRun.ACTIVE_STATES).first()
    if active is not None:
        return f"run #{run.pk} is being rolled back already (run #{active.pk})"
    if not restorable_items(run).exists():
        return f"run #{run.pk} has no session left to restore"
    return ""


def rollback_preview(run: BackfillRun) -> dict[str, Any]:
    """The count, a sample and what cannot be restored, from the run's items."""
    # restorable_items excludes JSON null pre-images; an SQL NULL one has nothing to restore
    # either (the rollback reports it as such), so it is counted apart, not as restored.
    items = restorable_items(run).filter(pre_image__isnull=False)
    by_outcome = {o: items.filter(outcome=o).count() for o in (Outcome.CREATED, Outcome.RESCORED)}
    written = run.items.filter(outcome__in=[Outcome.CREATED, Outcome.RESCORED])
    preview: dict[str, Any] = {
        "count": sum(by_outcome.values()),
        "created": by_outcome[Outcome.CREATED],
        "rescored": by_outcome[Outcome.RESCORED],
        "written": written.count(),
        "already_rolled_back": written.filter(rolled_back=True).count(),
        "without_pre_image": written.filter(rolled_back=False, pre_image__isnull=True).count(),
        "sample": list(
            items.order_by("ordinal").values(
                "ordinal", "session_id", "outcome", "profile_id", "processed_at"
            )[:SAMPLE]
        ),
        "refusal": rollback_refusal(run),
    }
    try:
        triggers = write_triggers()
        columns = sorted(rewritten_columns("assessment_sessions", triggers)) + sorted(
            f"profiles.{c}" for c in rewritten_columns("profiles", triggers)
        )
        other = [
            {"trigger": t.name, "table": t.table, "writes": sorted(t.writes_other_tables)}
            for t in triggers
            if t.table in ("profiles", "fc_scores") and t.enabled and t.writes_other_tables
        ]
        preview.update(rewritten=columns, other_tables=other, catalog_error="")
    except DatabaseError as exc:
        preview.update(rewritten=[], other_tables=[], catalog_error=str(exc).splitlines()[0])
    return preview


def rollback_sessions(run: BackfillRun) -> Any:
    """Every session a rollback of `run` restores, in order (for the CSV)."""
    return (
        restorable_items(run)
        .filter(pre_image__isnull=False)
        .order_by("ordinal")
        .values_list(
            "ordinal", "session_id", "outcome", "profile_id", "results_url", "processed_at"
        )
    )


ROLLBACK_COLUMNS = ["ordinal", "session_id", "outcome", "profile_id", "results_url", "processed_at"]


def cancel_preview(run: BackfillRun) -> dict[str, Any]:
    """How many of the run's sessions are not processed yet (they stay untouched)."""
    pending = run.items.filter(outcome=Outcome.PENDING)
    s = BackfillRun.State
    cancellable = (s.ENQUEUED, s.RUNNING, s.PAUSING, s.PAUSED, s.INTERRUPTED, s.ERRORED)
    return {
        "refusal": ""
        if run.state in cancellable
        else f"run #{run.pk} is {run.state}: it has stopped",
        "pending": pending.count(),
        "processed": run.items.exclude(outcome=Outcome.PENDING).count(),
        "total": run.items.count(),
        "sample": list(pending.order_by("ordinal").values_list("session_id", flat=True)[:SAMPLE]),
        "active": run.state in (BackfillRun.State.RUNNING, BackfillRun.State.PAUSING),
    }


def retry_preview(run: BackfillRun) -> dict[str, Any]:
    """What "Retry failed" does: which sessions a new round writes (failed, busy, unknown),
    how many of them by outcome and reason, the first few, and what the run holds now."""
    from remediation.jobs.engine import TERMINAL

    retried = run.items.filter(outcome__in=[Outcome.FAILED, Outcome.BUSY, Outcome.UNKNOWN])
    refusal = ""
    if run.kind == BackfillRun.Kind.ROLLBACK:
        refusal = "a rollback run is not retried: roll the source run back again"
    elif run.state not in TERMINAL:
        refusal = f"run #{run.pk} is {run.get_state_display()}; retry when it has stopped"
    elif not retried.exists():
        refusal = "no failed sessions to retry"
    held = held_sessions([str(s) for s in retried.values_list("session_id", flat=True)])
    held.pop(run.pk, None)
    if held and not refusal:
        n = sum(len(v) for v in held.values())
        refusal = (
            f"{n} of these sessions are held by another active run ("
            + ", ".join(f"run #{pk}" for pk in held)
            + "); retry when it has stopped"
        )
    by_reason: dict[str, int] = {}
    for outcome, reason in retried.values_list("outcome", "reason"):
        key = f"{outcome} ({reason})" if reason else outcome
        by_reason[key] = by_reason.get(key, 0) + 1
    return {
        "refusal": refusal,
        "count": retried.count(),
        "unknown": retried.filter(outcome=Outcome.UNKNOWN).count(),
        "busy": retried.filter(outcome=Outcome.BUSY).count(),
        "by_reason": sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0])),
        "sample": list(
            retried.order_by("ordinal").values(
                "ordinal", "session_id", "outcome", "reason", "sqlstate", "error"
            )[:SAMPLE]
        ),
        "round": len(run.rounds or []) + (1 if run.rounds else 2),
        "backend": run.backend,
        "rescore": run.rescore,
        "dry_run": run.dry_run,
    }
