"""django-q2 entry points: module-level functions taking ids, nothing else."""

from __future__ import annotations

from remediation import backfill


def backfill_batch(run_id: int, token: str) -> str:
    """Process one batch of a backfill run and enqueue the next."""
    return backfill.process_batch(run_id, token)


def backfill_watchdog() -> list[int]:
    """Mark runs with a dead worker interrupted and resume them from their cursor."""
    return backfill.runs_watchdog()


def health_check() -> dict[str, list[str]]:
    """Store a health snapshot, evaluate the alert rules, notify what opened or resolved."""
    from remediation import health

    return health.snapshot_and_alert()
