"""django-q2 entry points: module-level functions taking ids, nothing else."""

from __future__ import annotations

from remediation.jobs import engine


def run_batch(run_id: int, token: str) -> str:
    """Process batches of a run (any job kind) until it stops or the task's time budget
    (BACKFILL_TASK_SECONDS) runs out, then enqueue the next task."""
    return engine.run_task(run_id, token)


# Tasks enqueued before runs had kinds carry this name.
backfill_batch = run_batch


def backfill_watchdog() -> list[int]:
    """Mark runs with a dead worker interrupted and resume them from their cursor."""
    return engine.runs_watchdog()


def health_check() -> dict[str, list[str]]:
    """Store a health snapshot, evaluate the alert rules, notify what opened or resolved."""
    from remediation.services.health import health_check_run

    return health_check_run()


def canary() -> str:
    """One write-path canary pass (rolled back), its alert, then auto-heal's turn."""
    from remediation.services.canary import canary_run

    return canary_run(source="schedule").outcome


def orphan_ledger_refresh() -> dict[str, object] | None:
    """Bring the orphan list's ledger up to date (nothing when it has not been created)."""
    from remediation.services.orphan_ledger import orphan_ledger_refresh as refresh

    return refresh()
