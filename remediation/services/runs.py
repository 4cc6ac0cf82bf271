"""Starting backfills without overlaps, and steering runs of any job kind: pause, resume,
cancel, retry failed sessions (audited)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import connections, transaction
from django.utils import timezone

from remediation.jobs import engine
from remediation.jobs.engine import (
    TERMINAL,
    IllegalTransition,
    RunError,
    open_retry_round,
    settle,
    transition,
)
from remediation.models import BackfillItem, BackfillRun
from remediation.services.audit import audit_record

State = BackfillRun.State
START_LOCK = 72_0003  # advisory-lock key (portal database) held while a run is being started


@dataclass
class Overlap:
    """Sessions of a selection that other runs (not stopped for good) still hold."""

    held: dict[int, list[str]] = field(default_factory=dict)  # run id → session ids

    @property
    def total(self) -> int:
        return sum(len(s) for s in self.held.values())

    def runs(self) -> list[tuple[BackfillRun, int]]:
        """The holding runs with how many of the selection each holds, oldest first."""
        by_pk = BackfillRun.objects.in_bulk(list(self.held))
        return [(by_pk[pk], len(sids)) for pk, sids in self.held.items() if pk in by_pk]

    def words(self) -> str:
        return ", ".join(f"{n} by run #{r.pk} ({r.get_state_display()})" for r, n in self.runs())


class RunOverlap(RunError):
    """A start refused because other runs hold some of the selected sessions."""

    def __init__(self, overlap: Overlap, selected: int) -> None:
        self.overlap = overlap
        noun = "session" if overlap.total == 1 else "sessions"
        super().__init__(
            f"{overlap.total} of the {selected} selected {noun} are held by another active run"
            f" ({overlap.words()}); nothing was started. Exclude them, or wait until that run"
            " has stopped."
        )


def run_overlap(session_ids: list[str]) -> Overlap:
    """Which of `session_ids` other runs hold now (a read, for the confirmation page)."""
    from remediation.jobs.selection import held_sessions

    return Overlap(held_sessions(session_ids))


def backfill_start_exclusive(*, overlap: str = "refuse", **kwargs: Any) -> BackfillRun:
    """Start a backfill (jobs.backfill_start's arguments) unless other active runs hold some
    of its sessions: `overlap="refuse"` (the default) raises RunOverlap and starts nothing;
    `"exclude"` leaves those sessions out (recorded in the run's selection params and audit).

    Starts are serialised by an advisory lock held until the new run's items are committed,
    so two starts at once cannot both take the same sessions: the second one sees the
    first's items."""
    from remediation.jobs.finalize import backfill_start
    from remediation.jobs.selection import resolve_selection, writing_runs_active

    if overlap not in ("refuse", "exclude"):
        raise RunError(f"unknown overlap choice {overlap!r} (refuse or exclude)")
    with transaction.atomic():
        with connections["default"].cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [START_LOCK])
        if not writing_runs_active():  # nothing can hold a session: resolve it once
            return backfill_start(**kwargs)
        params = {k: v for k, v in (kwargs.get("params") or {}).items() if v not in (None, "")}
        ids = resolve_selection(
            kwargs["selection"], params, kwargs.get("ids"), bool(kwargs.get("rescore"))
        )
        found = run_overlap(ids)
        if found.held and overlap == "refuse":
            raise RunOverlap(found, len(ids))
        return backfill_start(exclude=found.held or None, **kwargs)


def _audited(action: str, run: BackfillRun, actor: Any) -> BackfillRun:
    audit_record(actor, f"backfill.{action}", target=f"run #{run.pk}", outcome=run.state)
    return run


def run_pause(run_id: int, *, actor: Any = None) -> BackfillRun:
    """Running → pausing (takes effect at the next batch boundary); enqueued → paused."""
    with transaction.atomic():  # the state read under the row lock the transition takes
        run = BackfillRun.objects.select_for_update().get(pk=run_id)
        target = State.PAUSED if run.state == State.ENQUEUED else State.PAUSING
        moved = transition(run_id, target, message="paused by a support engineer")
    return _audited("pause", moved, actor)


def run_resume(run_id: int, *, actor: Any = None) -> BackfillRun:
    """Paused or interrupted → enqueued, continuing from the cursor."""
    return _audited("resume", transition(run_id, State.ENQUEUED, message="", new_token=True), actor)


def run_cancel(run_id: int, *, actor: Any = None) -> BackfillRun:
    """Stop for good: at the next batch boundary when running, at once otherwise."""
    with transaction.atomic():  # the state read under the row lock the transition takes
        run = BackfillRun.objects.select_for_update().get(pk=run_id)
        active = run.state in (State.RUNNING, State.PAUSING)
        target = State.CANCELLING if active else State.CANCELLED
        moved = transition(run_id, target, message="cancelled")
    return _audited("cancel", moved, actor)


def run_retry_failed(run_id: int, *, actor: Any = None) -> BackfillRun:
    """Put failed, busy and unknown sessions back at the end of a stopped run and enqueue it
    again: a new round. The earlier rounds' figures stay in `run.rounds`; the headline
    figures are recounted (the retried sessions have no outcome until the new round gives
    them one).

    `unknown` sessions (the edge function got the request, no answer came back whole) are
    settled first by reading the database: those whose profile is there now count as
    created (or re-scored) in the new round and are not posted again; only those still
    without a profile are retried."""
    from remediation.jobs.finalize import restore_completed_at_of, settle_unknown

    Outcome = BackfillItem.Outcome
    with transaction.atomic():
        run = BackfillRun.objects.select_for_update().get(pk=run_id)
        if run.state not in TERMINAL:
            raise IllegalTransition(f"run #{run_id} is {run.state}; retry when it has stopped")
        if engine.lanes_busy(run):
            raise IllegalTransition(
                f"a worker is still finishing a batch of run #{run_id}; retry in a few seconds"
            )
        candidates = list(
            run.items.filter(outcome__in=[Outcome.FAILED, Outcome.BUSY, Outcome.UNKNOWN])
        )
        if not candidates:
            raise RunError("no failed sessions to retry")
        # A new round is a start too: not over sessions another active run holds.
        with connections["default"].cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [START_LOCK])
        overlap = run_overlap([str(i.session_id) for i in candidates])
        overlap.held.pop(run.pk, None)
        if overlap.held:
            raise RunOverlap(overlap, len(candidates))
        unknown = [i for i in candidates if i.outcome == Outcome.UNKNOWN]
        still = {i.pk for i in unknown}
        if unknown and run.kind == BackfillRun.Kind.FINALIZE and not run.dry_run:
            # Read what the database shows before the round opens; saved after it opened,
            # so the round counts them.
            settled = _settled_preview(run, unknown)
            still -= {i.pk for i in settled}
        else:
            settled = []
        retried = [i for i in candidates if i.outcome != Outcome.UNKNOWN or i.pk in still]
        # The function may have run after its answer was lost and overwritten completed_at:
        # put it back from the pre-images before the new round claims them afresh.
        restore_completed_at_of([i for i in unknown if i.pk in still])
        open_retry_round(run, retried, timezone.now())
        if settled:
            settle_unknown(run, settled)
            settle(run)  # the headline figures: what is true now
            run.rounds[-1]["sessions"] = len(retried) + len(settled)
        run.save()
    words = f"retrying {len(retried)} failed sessions"
    if settled:
        words = (
            f"{len(settled)} unknown sessions settled from the database (their profile is "
            f"there; not posted again), {words}"
        )
    run = transition(
        run_id, State.ENQUEUED, message=f"round {len(run.rounds)}: {words}", new_token=True
    )
    return _audited("retry_failed", run, actor)


def _settled_preview(run: BackfillRun, unknown: list[BackfillItem]) -> list[BackfillItem]:
    """The unknown items whose fresh profile the database shows now (read, not saved)."""
    from django.db import connections

    from remediation import pipeline as pw
    from remediation.selectors.config import configured_results_version

    with connections["pipeline"].cursor() as cur:
        cur.execute(
            "SELECT session_id::text FROM profiles"
            " WHERE session_id = ANY(%s::uuid[]) AND results_version = %s",
            [pw.uuid_array([str(i.session_id) for i in unknown]), configured_results_version()],
        )
        present = {row[0] for row in cur.fetchall()}
    return [i for i in unknown if str(i.session_id) in present]
