"""The run engine: a state machine that drives any bulk job batch by batch through django-q2.

A run is a `BackfillRun` row (its `kind` names the job) with one `BackfillItem` per
session. Each django-q2 task processes one short batch of items, records their outcomes,
moves the cursor and enqueues the next task. django-q2 delivers at least once, so:

- the run row is locked and the batch token compared: a duplicate or superseded delivery
  does nothing (a new token is issued with every batch);
- a per-lane advisory lock on the portal database keeps two workers off one lane;
- lanes: a run has `lanes` chains of tasks (BACKFILL_LANES; one when throttled), lane k
  taking the items whose ordinal % lanes == k, so that many batches are in flight at once
  on disjoint sessions, each with its own token (`batch_token` holds one per lane) and
  advisory lock; a lane with nothing left ends its chain while another lane still has
  items, the last one ends the run; a pause or cancel takes effect when no other lane is
  in a batch; requeued items keep their lane;
- what a batch writes to the pipeline and the record of it commit together: the kind
  writes a run-ledger entry per changed session in its pipeline transaction, and the
  portal mirrors the entries in the one transaction that records the batch (outcomes,
  attempts, figures, cursor, token), or later, from the ledger, when a crash came between
  the two commits (remediation/jobs/ledger.py); a batch's record moves the figures by
  what it changed in its items (applied once), a record from the ledger and every end
  of a run recount them from the items, so they equal what the items say
  (crashpoints.py names every commit boundary);
- a heartbeat is written per batch; the watchdog marks runs whose worker died
  `interrupted` and resumes them from the cursor;
- sessions another worker holds come back "busy" and go to the back of the queue, each
  with a time before which it is not tried again (backoff: BACKFILL_BUSY_BACKOFF_BASE,
  doubling, at most BUSY_MAX_DELAY apart); a batch never takes a session before its time
  (when only such sessions are left, the worker waits for the first of them); after
  BACKFILL_BUSY_RETRY_SECONDS of waiting in all a session still busy counts as failed.

How a run ends (`end_state`, the only place that decides it): when no item is left, the
run's figures are recounted from its items (each session once, by its latest outcome) and

- `succeeded`: no session failed;
- `finished_with_failures`: some sessions failed and at least one did not;
- `failed` ("all failed"): every processed session failed; none was written, restored,
  diagnosed or already had a profile.

What counts as a failure depends on what the kind promises (`FAILURE_OUTCOMES`): for a
backfill "failed", which includes sessions still busy elsewhere after the busy retries and
unknown session ids, and "unknown" (an edge call with no whole answer and no profile yet:
counted with the failures, shown as its own figure, settled from the database by "retry
failed"), while a dry run's "skipped" (would be written) is not a failure; for a
rollback "failed" and "conflict" (a row changed since the run was left alone: that
session's restore did not happen); for a diagnosis only "failed" (the diagnosis itself
could not be made): a diagnosis run that diagnosed every session succeeded, whatever the
diagnoses say ("rls" for all of them is a finding, not a failure).

Rounds: "retry failed" starts a new round over the failed sessions of a stopped run. The
run keeps one entry per round in `rounds` (appended when a retry starts, completed when the
round ends): that round's outcomes, failures by reason, start, end and the run's state at
its end, so earlier rounds' figures are never rewritten. The headline figures are always
what is true now, over all rounds.

A job kind (`JobKind`) only says what one batch does to its items; everything above is
the engine's. See remediation/jobs/finalize.py for the backfill, rollback.py and
diagnosis.py for the others.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections import Counter
from datetime import datetime, timedelta
from typing import Any, ClassVar

from django.conf import settings
from django.db import connections, transaction
from django.db.models import Count, F
from django.utils import timezone

from remediation import display
from remediation.jobs import crashpoints, ledger
from remediation.jobs.items import apply_outcomes, save_items
from remediation.models import BackfillItem, BackfillRun
from remediation.pipeline import SessionOutcome

logger = logging.getLogger("remediation.jobs")
State = BackfillRun.State

# Every allowed transition, and why it happens.
TRANSITIONS: dict[str, set[str]] = {
    State.ENQUEUED: {
        State.RUNNING,  # a worker took the first (or next) batch
        State.CANCELLED,  # cancelled before any worker took it
        State.PAUSED,  # paused before any worker took it
        State.INTERRUPTED,  # the watchdog found no worker for it
    },
    State.RUNNING: {
        State.PAUSING,  # pause asked: takes effect at the next batch boundary
        State.PAUSED,  # the job paused itself (e.g. the maintenance gate)
        State.CANCELLING,  # cancel asked: takes effect at the next batch boundary
        State.SUCCEEDED,  # no items left, and no session failed
        State.FINISHED_WITH_FAILURES,  # no items left; some sessions failed, some did not
        State.FAILED,  # no items left; every processed session failed
        State.ERRORED,  # a batch raised; the message says what
        State.INTERRUPTED,  # the watchdog found its worker dead
    },
    State.PAUSING: {
        State.PAUSED,  # the batch boundary came
        State.CANCELLING,  # cancel asked while pausing
        State.INTERRUPTED,  # the worker died before the boundary
        State.SUCCEEDED,  # the last batch finished first (no session failed)
        State.FINISHED_WITH_FAILURES,  # the last batch finished first (some failed)
        State.FAILED,  # the last batch finished first (all failed)
    },
    State.PAUSED: {
        State.ENQUEUED,  # resumed from the cursor
        State.CANCELLED,  # cancelled while paused
    },
    State.CANCELLING: {
        State.CANCELLED,  # the batch boundary came
        State.INTERRUPTED,  # the worker died before the boundary
    },
    State.INTERRUPTED: {
        State.ENQUEUED,  # the watchdog or someone resumed it
        State.CANCELLED,  # cancelled instead
    },
    State.SUCCEEDED: {State.ENQUEUED},  # retry failed sessions
    State.FINISHED_WITH_FAILURES: {State.ENQUEUED},  # retry failed sessions (a new round)
    State.FAILED: {State.ENQUEUED},  # retry failed sessions (a new round)
    State.ERRORED: {State.ENQUEUED, State.CANCELLED},  # retried, or given up
    State.CANCELLED: {State.ENQUEUED},  # retry failed sessions
}
ENDED = {State.SUCCEEDED, State.FINISHED_WITH_FAILURES, State.FAILED}  # went through every item
TERMINAL = ENDED | {State.CANCELLED, State.ERRORED}  # "retry failed" is allowed from these
STOPPED = TERMINAL | {State.PAUSED, State.INTERRUPTED}
BUSY_MAX_DELAY = 15.0  # seconds: the longest wait between two tries of a busy session


def busy_delay(tries: int) -> float:
    """The wait before a busy session's next try, after `tries` busy tries: exponential
    from BACKFILL_BUSY_BACKOFF_BASE, at most BUSY_MAX_DELAY."""
    return float(min(settings.BACKFILL_BUSY_BACKOFF_BASE * 2 ** (tries - 1), BUSY_MAX_DELAY))


def busy_rounds() -> int:
    """How many times a busy session is tried before it counts as failed ("busy"): as many
    as fit the backoff into BACKFILL_BUSY_RETRY_SECONDS of waiting in all."""
    waited, tries = 0.0, 1
    while tries < 1000 and waited + busy_delay(tries) <= settings.BACKFILL_BUSY_RETRY_SECONDS:
        waited += busy_delay(tries)
        tries += 1
    return tries


LOCK_CLASS = 72_0001  # advisory-lock namespace of runs (lane 0)
LANE_LOCK_CLASS = 72_0100  # lane k > 0 of a run: LANE_LOCK_CLASS + k


def new_tokens(lanes: int) -> str:
    """A fresh task token for each lane, space-separated (the run's `batch_token`)."""
    return " ".join(secrets.token_hex(8) for _ in range(max(1, lanes)))


def tokens(run: BackfillRun) -> list[str]:
    """The token of each lane's next task, by lane."""
    return str(run.batch_token or "").split()


def _rotate(run: BackfillRun, lane: int) -> str:
    """A new token for `lane` (its next task's); the other lanes' stay. Not saved."""
    toks = tokens(run)
    toks[lane] = secrets.token_hex(8)
    run.batch_token = " ".join(toks)
    return toks[lane]


def _lock_key(lane: int) -> int:
    return LOCK_CLASS if lane == 0 else LANE_LOCK_CLASS + lane


def _lanes_free(run_id: int, lanes: range | list[int]) -> bool:
    """No worker is in a batch of any of these lanes (each advisory lock can be taken)."""
    with connections["default"].cursor() as cur:
        for lane in lanes:
            cur.execute("SELECT pg_try_advisory_lock(%s, %s)", [_lock_key(lane), run_id])
            if not cur.fetchone()[0]:
                return False
            cur.execute("SELECT pg_advisory_unlock(%s, %s)", [_lock_key(lane), run_id])
    return True


# Item outcomes that mean the kind did not do what it promises for that session (see the
# module docstring); every other settled outcome is not a failure. Kinds not listed: "failed".
FAILURE_OUTCOMES: dict[str, frozenset[str]] = {
    # busy too long ends as failed/"busy"; "unknown" (the edge function got the request, no
    # answer, no profile yet) is not a success either: it keeps a run from "succeeded".
    BackfillRun.Kind.FINALIZE: frozenset({"failed", "unknown"}),
    BackfillRun.Kind.ROLLBACK: frozenset({"failed", "conflict"}),
    BackfillRun.Kind.DIAGNOSIS: frozenset({"failed"}),
    # notify (remediation/jobs/notify.py): a message that failed, or whose fate is unknown
    # (the worker stopped mid-send), is not a success; a skipped person is not a failure.
    BackfillRun.Kind.NOTIFY: frozenset({"failed", "unknown"}),
}
UNSETTLED = (BackfillItem.Outcome.PENDING, BackfillItem.Outcome.BUSY)  # no outcome yet


class RunError(Exception):
    """A request about a run that cannot be carried out; the message says why."""


class IllegalTransition(RunError):
    pass


class PauseRun(Exception):
    """Raised by a job kind before it writes anything: pause the run with this message."""


class JobKind:
    """What one batch of a job does. Subclasses set `name` and implement `process`."""

    name: ClassVar[str]

    def process(
        self, run: BackfillRun, items: list[BackfillItem], now: datetime
    ) -> list[SessionOutcome]:
        """Do the batch's work; one outcome per item it got to, in any order. Items left
        without an outcome (the batch's time budget ran out) go to the next batch. Raise
        PauseRun (before writing anything) to pause the run instead. A kind that writes
        the pipeline database writes the run ledger in the same transaction (ledger.write)."""
        raise NotImplementedError

    def ledgered(self, run: BackfillRun) -> bool:
        """Whether this run's batches write the run ledger (remediation/jobs/ledger.py)."""
        return False

    def record(self, run: BackfillRun, outcomes: list[SessionOutcome], now: datetime) -> None:
        """Extra rows to write in the same portal transaction as the items (e.g. attempts)."""

    def conclude(self, run: BackfillRun) -> None:
        """Portal rows to write in the transaction that ends the run (e.g. a report)."""

    def finished(self, run: BackfillRun) -> None:
        """After the run went through its items, whichever of the three ends it reached
        (succeeded, finished with failures, all failed), outside its transaction: what may
        be lost in a crash (the schedules make up for it)."""

    def summary(self, run: BackfillRun) -> str:
        counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted((run.counts or {}).items()))
        return f"{run.processed} processed: {counts or 'nothing'}"


KINDS: dict[str, JobKind] = {}


def register(kind: JobKind) -> JobKind:
    """Make a job kind known to the engine (each kind module registers itself)."""
    KINDS[kind.name] = kind
    return kind


def kind_of(run: BackfillRun) -> JobKind:
    from remediation.jobs import diagnosis, finalize, notify, rollback  # noqa: F401  (they register)

    return KINDS[run.kind]


# --- Creating and steering -----------------------------------------------------------------
def run_create(
    *, kind: str, session_ids: list[str], enqueue: bool = True, **fields: Any
) -> BackfillRun:
    """A run with one item per session (in order), its first batch enqueued on commit."""
    with transaction.atomic():
        run = BackfillRun.objects.create(
            kind=kind,
            estimated_total=len(session_ids),
            batch_token=new_tokens(fields.get("lanes", 1)),
            state_changed_at=timezone.now(),
            **fields,
        )
        _create_items(run, session_ids)
        if enqueue:
            _enqueue_on_commit(run)
    return run


def _create_items(run: BackfillRun, session_ids: list[str]) -> None:
    """One pending item per session, ordinals in order, in one statement (bulk_create takes
    seconds for 20,000 items)."""
    field = BackfillItem._meta.get_field("session_id")
    ids = [str(field.to_python(sid)) for sid in session_ids]  # ValidationError as the ORM's
    with connections["default"].cursor() as cur:
        cur.execute(
            f"INSERT INTO {BackfillItem._meta.db_table} (run_id, ordinal, session_id, outcome,"
            " reason, sqlstate, constraint_name, error, type_code, results_url, tries,"
            " rolled_back) SELECT %s, u.n - 1, u.sid, %s, '', '', '', '', '', '', 0, false"
            " FROM unnest(%s::text::uuid[]) WITH ORDINALITY AS u(sid, n)",
            [run.pk, BackfillItem.Outcome.PENDING, "{" + ",".join(ids) + "}"],
        )


def started_by(actor: Any) -> dict[str, Any]:
    """The run's started_by/started_by_name for a user, "cli", "auto-heal", or nobody."""
    user = actor if getattr(actor, "is_authenticated", False) else None
    name = user.get_username() if user else str(actor or "system")[:150]
    return {"started_by": user, "started_by_name": name}


def _enqueue_on_commit(run: BackfillRun) -> None:
    """Each lane's next task, once the transaction commits."""
    run_id, toks = run.pk, tokens(run)

    def enqueue_lanes() -> None:
        for token in toks:
            enqueue_batch(run_id, token)

    transaction.on_commit(enqueue_lanes)


def enqueue_batch(run_id: int, token: str) -> None:
    """Hand the next batch to django-q2: only ids travel, never data or secrets."""
    from django_q.tasks import async_task

    async_task(
        "remediation.tasks.run_batch",
        run_id,
        token,
        task_name=f"run-{run_id}-{token}",
        group=f"run-{run_id}",
    )


def transition(
    run_id: int, to: str, *, message: str | None = None, new_token: bool = False
) -> BackfillRun:
    """Move a run to `to` under a row lock; only the listed transitions are allowed."""
    with transaction.atomic():
        run = BackfillRun.objects.select_for_update().get(pk=run_id)
        if to not in TRANSITIONS.get(run.state, set()):
            raise IllegalTransition(f"run #{run_id} is {run.state}; it cannot become {to}")
        _set_state(run, to, message)
        if new_token:
            run.batch_token = new_tokens(run.lanes)
        run.save()
        if to == State.ENQUEUED:
            _enqueue_on_commit(run)
    return run


def _set_state(run: BackfillRun, to: str, message: str | None = None) -> None:
    now = timezone.now()
    run.state = to
    run.state_changed_at = now
    if message is not None:
        run.message = message
    if to == State.RUNNING and run.started_at is None:
        run.started_at = now
    if to in TERMINAL:
        run.finished_at = now
        settle(run)
        close_round(run, now)


# --- Figures and rounds ----------------------------------------------------------------------
_HEADLINE = ("created", "rescored", "existing", "failed", "skipped")


def settle(run: BackfillRun) -> None:
    """Recount the run's headline figures from its items (each session once, by its latest
    outcome; pending ones not at all): what is true now. Not saved."""
    counts: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    rows = (
        run.items.exclude(outcome__in=UNSETTLED)
        .values_list("outcome", "reason")
        .annotate(n=Count("id"))
        .order_by()
    )
    for outcome, reason, n in rows:
        counts[outcome] += n
        if outcome == BackfillItem.Outcome.FAILED:
            reasons[reason or "unknown"] += n
    run.counts = dict(counts)
    run.failed_by_reason = dict(reasons)
    run.processed = sum(counts.values())
    for column in _HEADLINE:
        setattr(run, column, counts[column])


def _count_changes(
    run: BackfillRun, changes: list[tuple[tuple[str, str], tuple[str, str]]]
) -> bool:
    """Move the headline figures by items' (outcome, reason) changes, as settle() would count
    them after; False (nothing changed) when a figure would go negative, i.e. the figures
    were not the items' to begin with: the caller recounts. Not saved."""
    counts: Counter[str] = Counter(run.counts or {})
    reasons: Counter[str] = Counter(run.failed_by_reason or {})
    for (outcome, reason), sign in [
        *((before, -1) for before, _ in changes),
        *((after, 1) for _, after in changes),
    ]:
        if outcome in UNSETTLED:
            continue
        counts[outcome] += sign
        if outcome == BackfillItem.Outcome.FAILED:
            reasons[reason or "unknown"] += sign
    if any(n < 0 for n in (*counts.values(), *reasons.values())):
        return False
    run.counts = {k: n for k, n in counts.items() if n}
    run.failed_by_reason = {k: n for k, n in reasons.items() if n}
    run.processed = sum(run.counts.values())
    for column in _HEADLINE:
        setattr(run, column, counts[column])
    return True


def failures(run: BackfillRun, counts: dict[str, int] | None = None) -> int:
    """Sessions among `counts` (default: the run's) whose outcome is a failure for its kind."""
    failing = FAILURE_OUTCOMES.get(run.kind, frozenset({"failed"}))
    return sum(
        n for outcome, n in (run.counts if counts is None else counts).items() if outcome in failing
    )


def end_state(run: BackfillRun) -> str:
    """The state a run ends in, from its settled figures (the rule: module docstring)."""
    failed = failures(run)
    if not failed:
        return State.SUCCEEDED
    if failed == run.processed:
        return State.FAILED
    return State.FINISHED_WITH_FAILURES


def _round(number: int, *, retry: bool, started: datetime | None, sessions: int) -> dict[str, Any]:
    return {
        "round": number,
        "retry": retry,
        "sessions": sessions,
        "started_at": started.isoformat() if started else None,
        "finished_at": None,
        "state": None,
        "counts": {},
        "failed_by_reason": {},
        # The settled figures when the round began: the round's own are the difference.
        "before": {"counts": {}, "failed_by_reason": {}},
    }


def close_round(run: BackfillRun, now: datetime) -> None:
    """Complete the current (last) round's entry from the settled figures, appending the
    first round's entry when the run has none yet; a later stop of the same round (errored,
    then cancelled) updates that entry again. Not saved."""
    rounds = list(run.rounds or [])
    if not rounds:
        rounds.append(
            _round(
                len(rounds) + 1, retry=False, started=run.started_at, sessions=run.estimated_total
            )
        )
    current = rounds[-1]
    before = current.get("before") or {}
    counts = Counter(run.counts or {})
    counts.subtract(before.get("counts") or {})
    reasons = Counter(run.failed_by_reason or {})
    reasons.subtract(before.get("failed_by_reason") or {})
    current["counts"] = {k: n for k, n in sorted(counts.items()) if n > 0}
    current["failed_by_reason"] = {k: n for k, n in sorted(reasons.items()) if n > 0}
    current["finished_at"] = now.isoformat()
    current["state"] = run.state
    run.rounds = rounds


def rounds_words(run: BackfillRun) -> str:
    """Each round's own outcomes in words, for a run with more than one round ("" else):
    what the headline figures (each session's latest outcome) do not show. The open last
    round's figures are the settled ones less those it began with."""
    rounds = run.rounds or []
    if len(rounds) < 2:
        return ""
    parts = []
    for r in rounds:
        if r.get("state"):
            counts = Counter(r.get("counts") or {})
        else:
            counts = Counter(run.counts or {})
            counts.subtract((r.get("before") or {}).get("counts") or {})
        shown = ", ".join(f"{n} {o}" for o, n in sorted(counts.items()) if n > 0) or "nothing"
        parts.append(f"round {r.get('round')}{' (retry)' if r.get('retry') else ''}: {shown}")
    return "; ".join(parts)


def open_retry_round(run: BackfillRun, retried: list[BackfillItem], now: datetime) -> None:
    """Start a new round over `retried` (failed sessions of a stopped run): put them back
    past the end, recount the figures (they have no outcome now) and append the round's
    entry. The earlier rounds' entries stay as they were. Not saved."""
    if not run.rounds:  # a run that ended before rounds were kept: its first round, now
        close_round(run, run.finished_at or now)
    requeue(run, retried)
    settle(run)
    entry = _round(len(run.rounds) + 1, retry=True, started=now, sessions=len(retried))
    entry["before"] = {"counts": dict(run.counts), "failed_by_reason": dict(run.failed_by_reason)}
    run.rounds = [*run.rounds, entry]
    run.finished_at = None


def requeue(run: BackfillRun, items: list[BackfillItem], *, backoff: bool = False) -> None:
    """Give items new ordinals past the end, each in its lane (ordinal % lanes kept), so the
    cursor reaches them again; with `backoff` (busy sessions) not before busy_delay(tries)
    from now."""
    top = run.items.order_by("-ordinal").values_list("ordinal", flat=True).first() or 0
    now = timezone.now()
    lanes = max(1, run.lanes)
    base = top + 1
    following: dict[int, int] = {}  # lane -> the next free ordinal past the end in it
    for item in items:
        lane = item.ordinal % lanes
        item.ordinal = following.get(lane, base + (lane - base) % lanes)
        following[lane] = item.ordinal + lanes
        item.outcome = BackfillItem.Outcome.PENDING
        item.reason = item.sqlstate = item.error = item.constraint_name = ""
        item.not_before = now + timedelta(seconds=busy_delay(item.tries)) if backoff else None
        # Nothing of this session was written: no pre-image to keep (a stored pre-image on
        # a pending item means "claimed in this round": see finalize._run_edge).
        item.pre_image = item.post_fingerprint = None
    BackfillItem.objects.bulk_update(
        items,
        [
            "ordinal",
            "outcome",
            "reason",
            "sqlstate",
            "error",
            "constraint_name",
            "not_before",
            "pre_image",
            "post_fingerprint",
        ],
    )
    run.cursor = min(run.cursor, base)


# --- Running a batch -----------------------------------------------------------------------
def run_task(run_id: int, token: str, *, enqueue_next: bool = True, on_batch: Any = None) -> str:
    """One django-q2 task of a run: batch after batch, with no queue hop between them,
    until the run stops (no item left, paused, cancelled, errored) or the task's time
    budget (BACKFILL_TASK_SECONDS) runs out; then the next task is enqueued. Every batch
    goes through process_batch's own checks (the run row locked, the token compared, the
    state read), so a pause or cancel takes effect at the next batch boundary; the batch
    budget of an edge batch ends with the task's (the run's `task_deadline`)."""
    deadline = time.monotonic() + settings.BACKFILL_TASK_SECONDS
    first = True
    lower: int | None = None  # the lane's own cursor within this task (lanes > 1)
    while True:
        result, token, lower = _batch(
            run_id, token, deadline=deadline, mirror_first=first, lower=lower
        )
        if result != "next":
            return result
        first = False
        if on_batch:
            on_batch(run_id)
        if time.monotonic() >= deadline:
            crashpoints.reached("task.handed_over")
            if enqueue_next:
                enqueue_batch(run_id, token)
            return "next"
        crashpoints.reached("task.between_batches")


def process_batch(run_id: int, token: str, *, enqueue_next: bool = True) -> str:
    """Process one batch of a run; returns what happened ("stale", "done", "next", …)."""
    result, token, _ = _batch(run_id, token, deadline=None, mirror_first=True)
    if result == "next" and enqueue_next:
        enqueue_batch(run_id, token)
    return result


def _batch(
    run_id: int,
    token: str,
    *,
    deadline: float | None,
    mirror_first: bool,
    lower: int | None = None,
) -> tuple[str, str, int | None]:
    """One batch of one lane: (what happened, the token of the lane's next batch, the lane's
    cursor). The lane's advisory lock is taken first and the run's state read after, under
    the run's row lock: a lane inside a batch always holds its lock, so a lane that finds
    every lane's lock free knows no batch of the run is being written."""
    head = BackfillRun.objects.filter(pk=run_id).values_list("batch_token", flat=True).first()
    if head is None:
        return "missing", token, lower
    if token not in str(head).split():
        return "stale", token, lower  # a duplicate or superseded delivery
    lane = str(head).split().index(token)
    if not _lock_lane(run_id, lane):
        return "busy", token, lower  # a delivery of this lane's token is in a batch
    held = True
    try:
        with transaction.atomic():
            run = BackfillRun.objects.select_for_update().filter(pk=run_id).first()
            if run is None:
                return "missing", token, lower
            if tokens(run)[lane : lane + 1] != [token]:
                return "stale", token, lower  # superseded while the lock was taken
            if run.state in (State.PAUSING, State.CANCELLING):
                _unlock_lane(run_id, lane)
                held = False
                return _stop_when_lanes_free(run) or str(run.state), token, lower
            if run.state == State.ENQUEUED:
                _set_state(run, State.RUNNING)
                run.heartbeat_at = timezone.now()
                run.save()
            elif run.state != State.RUNNING:
                return str(run.state), token, lower
            else:
                run.heartbeat_at = timezone.now()
                BackfillRun.objects.filter(pk=run_id).update(heartbeat_at=run.heartbeat_at)
        run.task_deadline = deadline  # type: ignore[attr-defined]
        try:
            result = _process_locked(run, mirror_first, lane, lower)
        except Exception as exc:  # the run records it; the task itself must not loop on it
            logger.exception("run %s batch failed", run_id)
            with contextlib.suppress(IllegalTransition):
                transition(run_id, State.ERRORED, message=f"{type(exc).__name__}: {exc}"[:2000])
            return "errored", token, lower
    finally:
        if held:
            _unlock_lane(run_id, lane)
    if result[0] in CHAIN_ENDS:
        # This lane's chain ends here (its lock is free now): a pause or cancel asked while
        # it was in its batch takes effect now unless another lane is still in one (that
        # lane does it at its own boundary or end), so none is ever left half-asked.
        with transaction.atomic():
            run = BackfillRun.objects.select_for_update().get(pk=run_id)
            stopped = _stop_when_lanes_free(run)
        if stopped:
            return stopped, result[1], result[2]
    return result


# A lane's results after which it enqueues no next task.
CHAIN_ENDS = ("lane_done", str(State.PAUSING), str(State.CANCELLING))


def _lock_lane(run_id: int, lane: int) -> bool:
    with connections["default"].cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s, %s)", [_lock_key(lane), run_id])
        return bool(cur.fetchone()[0])


def _unlock_lane(run_id: int, lane: int) -> None:
    with connections["default"].cursor() as cur:
        cur.execute("SELECT pg_advisory_unlock(%s, %s)", [_lock_key(lane), run_id])


def _stop_when_lanes_free(run: BackfillRun) -> str | None:
    """A pausing (cancelling) run, locked by the caller, becomes paused (cancelled) when no
    lane is in a batch; the new state, or None (not asked, or a lane is still writing)."""
    if run.state not in (State.PAUSING, State.CANCELLING):
        return None
    if not _lanes_free(run.pk, range(run.lanes)):
        return None
    stopped = State.PAUSED if run.state == State.PAUSING else State.CANCELLED
    _set_state(run, stopped)
    run.save()
    return str(stopped)


def lanes_busy(run: BackfillRun) -> bool:
    """Whether a worker is inside a batch of the run (some lane's advisory lock is held)."""
    return not _lanes_free(run.pk, range(run.lanes))


def _process_locked(
    run: BackfillRun, mirror_first: bool, lane: int, lower: int | None
) -> tuple[str, str, int | None]:
    started = time.monotonic()
    crashpoints.reached("batch.started")
    kind = kind_of(run)
    # A batch whose portal record was lost: its ledger entries, first. Within one task the
    # batches before this one recorded theirs (a failure to would have ended the task).
    if mirror_first and mirror(run, kind, lane=lane) is not None:
        run.refresh_from_db()
    token = tokens(run)[lane]
    pending = run.items.filter(
        ordinal__gte=max(run.cursor, lower or 0), outcome=BackfillItem.Outcome.PENDING
    )
    if run.lanes > 1:
        pending = pending.alias(lane=F("ordinal") % run.lanes).filter(lane=lane)
    items = list(pending.order_by("ordinal")[: run.batch_size])
    if not items:
        if run.lanes > 1 and run.items.filter(outcome=BackfillItem.Outcome.PENDING).exists():
            return "lane_done", token, lower  # another lane has work left: it ends the run
        return _finish(run, kind), token, lower
    now = timezone.now()
    # Busy sessions backing off: the batch stops before the first one not due yet.
    due = next((n for n, i in enumerate(items) if i.not_before and i.not_before > now), None)
    if due == 0:
        return (*_wait_for(run, lane, items[0], now), lower)
    if due is not None:
        items = items[:due]
    try:
        outcomes = kind.process(run, items, now)
    except PauseRun as exc:
        # Pausing: paused once no lane is in a batch (_batch, at this lane's chain end).
        with contextlib.suppress(IllegalTransition):  # another lane asked first
            transition(run.pk, State.PAUSING, message=str(exc))
        return str(State.PAUSING), token, lower
    crashpoints.reached("pipeline.committed")
    done = {o.session_id for o in outcomes}
    # The cursor stops at the first item the batch did not get to (time budget). With
    # lanes, each lane keeps its own within the task, and the run's stays where all are.
    left = [i.ordinal for i in items if str(i.session_id) not in done]
    cursor = min(left) if left else items[-1].ordinal + 1
    token = record_batch(
        run,
        kind,
        {str(i.session_id): i for i in items},
        outcomes,
        now,
        cursor if run.lanes == 1 else None,
        lane=lane,
    )
    _throttle(run, len(done), time.monotonic() - started)
    return "next", token, (cursor if run.lanes > 1 else None)


def record_batch(
    run: BackfillRun,
    kind: JobKind,
    items: dict[str, BackfillItem],
    outcomes: list[SessionOutcome],
    now: datetime,
    cursor: int | None = None,
    *,
    lane: int | None = None,
    recount: bool = False,
) -> str:
    """The portal's record of a batch, in one transaction: item outcomes, the kind's rows
    (attempts), busy sessions requeued, the figures moved by the items' changes (with
    `recount`, or when they do not add up: recounted from the items), the cursor
    (when given) and a new token for `lane` (when given); then the ledger entries it
    mirrored are forgotten. Safe to repeat: an outcome from the ledger is applied to its
    item once (ledger_seq). Returns the lane's token."""
    rounds = busy_rounds()
    prior = {sid: (i.outcome, i.reason) for sid, i in items.items()}
    applied = apply_outcomes(items, outcomes, now, busy_rounds=rounds)
    retry = [
        items[o.session_id]
        for o in applied
        if o.outcome == "busy" and items[o.session_id].tries < rounds
    ]
    with transaction.atomic():
        locked = BackfillRun.objects.select_for_update().get(pk=run.pk)
        save_items([items[o.session_id] for o in applied])
        kind.record(locked, [o for o in applied if o.outcome != "busy"], now)
        if cursor is not None:
            locked.cursor = max(locked.cursor, cursor)
        if retry:
            requeue(locked, retry, backoff=True)
        # The figures move by what this batch changed (the ledger makes that exactly once);
        # a record made from the ledger after a crash recounts them from the items instead.
        changes = [(prior[o.session_id], (o.outcome, o.reason)) for o in applied]
        if recount or not _count_changes(locked, changes):
            settle(locked)
        token = _rotate(locked, lane) if lane is not None else ""
        locked.heartbeat_at = timezone.now()
        locked.save()
    crashpoints.reached("record.committed")
    ledger.forget(run.ledger_key, [o.ledger_seq for o in outcomes if o.ledger_seq])
    crashpoints.reached("ledger.forgotten")
    return token


def mirror(run: BackfillRun, kind: JobKind | None = None, *, lane: int | None = None) -> int | None:
    """Record what the run ledger still holds for `run` (entries of a batch whose portal
    record was lost to a crash) and forget those entries; the number of sessions whose
    outcome this recorded (None: the ledger held nothing, the run row is unchanged). The
    cursor does not move: those items are no longer pending. With `lane` (a lane's task
    starting), only that lane's entries: another lane may be between its two commits;
    without, every entry (no lane is in a batch: the run is ending, stopped or dead)."""
    kind = kind or kind_of(run)
    if not kind.ledgered(run):
        return None
    found = ledger.read(run.ledger_key)
    if not found:
        return None
    items = {
        str(i.session_id): i
        for i in run.items.filter(session_id__in=sorted({o.session_id for o in found}))
    }
    if lane is not None and run.lanes > 1:
        items = {sid: i for sid, i in items.items() if i.ordinal % run.lanes == lane}
        found = [o for o in found if o.session_id in items]
        if not found:
            return None
    fresh = [
        o
        for o in found
        if o.session_id in items and (items[o.session_id].ledger_seq or 0) < (o.ledger_seq or 0)
    ]
    # Applies only the fresh ones; the figures recounted from the items.
    record_batch(run, kind, items, found, timezone.now(), lane=lane, recount=True)
    if fresh:
        logger.warning(
            "run %s: %s outcomes recovered from the run ledger (a batch's record was lost)",
            run.pk,
            len(fresh),
        )
    return len(fresh)


def _wait_for(run: BackfillRun, lane: int, item: BackfillItem, now: datetime) -> tuple[str, str]:
    """Only busy sessions not due yet are left: wait for the first (at most
    BACKFILL_MAX_SLEEP), then hand the run to the next task (the cursor does not move)."""
    assert item.not_before is not None
    wait = (item.not_before - now).total_seconds()
    time.sleep(max(0.0, min(wait, settings.BACKFILL_MAX_SLEEP)))
    with transaction.atomic():
        locked = BackfillRun.objects.select_for_update().get(pk=run.pk)
        token = _rotate(locked, lane)
        locked.heartbeat_at = timezone.now()
        locked.save()
    return "next", token


def _throttle(run: BackfillRun, count: int, elapsed: float) -> None:
    if not run.throttle_per_minute:
        return
    wanted = count * 60.0 / run.throttle_per_minute
    time.sleep(max(0.0, min(wanted - elapsed, settings.BACKFILL_MAX_SLEEP)))


def _finish(run: BackfillRun, kind: JobKind) -> str:
    """No item left: end the run in the state its figures call for (end_state)."""
    mirror(run, kind)
    with transaction.atomic():
        locked = BackfillRun.objects.select_for_update().get(pk=run.pk)
        if locked.state != State.RUNNING:
            return str(locked.state)
        settle(locked)
        to = end_state(locked)
        if to not in TRANSITIONS[locked.state]:  # pragma: no cover - the table lists them all
            raise IllegalTransition(f"run #{run.pk} is {locked.state}; it cannot become {to}")
        _set_state(locked, to, message=kind.summary(locked))
        locked.save()
        kind.conclude(locked)
    crashpoints.reached("run.ended")
    logger.info("run %s (%s) %s: %s", run.pk, run.kind, locked.state, locked.message)
    kind.finished(locked)
    return "done"


# --- Watchdog and driving a run in-process ---------------------------------------------------
def runs_watchdog(*, resume: bool = True) -> list[int]:
    """Mark runs whose worker stopped (stale heartbeat) interrupted, and resume them."""
    stale_before = timezone.now() - timedelta(seconds=settings.BACKFILL_STALE_SECONDS)
    found = []
    candidates = BackfillRun.objects.filter(
        state__in=[State.RUNNING, State.PAUSING, State.CANCELLING, State.ENQUEUED]
    )
    for run in candidates:
        beat = run.heartbeat_at or run.state_changed_at or run.created_at
        if beat >= stale_before:
            continue
        if not _lanes_free(run.pk, range(run.lanes)):  # a live worker holds a lane's lock
            continue
        if run.state in (State.PAUSING, State.CANCELLING):
            # Asked to stop and no worker is left to reach a boundary: stopped, not resumed.
            with contextlib.suppress(Exception):  # the resumed stop records it otherwise
                mirror(run)
            with transaction.atomic():
                locked = BackfillRun.objects.select_for_update().get(pk=run.pk)
                if _stop_when_lanes_free(locked):
                    logger.warning("run %s: its worker stopped while %s", run.pk, run.state)
            continue
        pending = run.items.filter(outcome__in=UNSETTLED).count()
        try:
            transition(
                run.pk,
                State.INTERRUPTED,
                message=f"worker stopped mid-run (no heartbeat since {display.when(beat)}); "
                f"resuming: {pending} session{'' if pending == 1 else 's'} left",
            )
        except IllegalTransition:
            continue
        found.append(run.pk)
        try:  # the dead worker's last batch may be in the ledger only: record it now
            mirror(run)
        except Exception:  # the pipeline database is down: the resumed batch does it
            logger.exception("run %s: the run ledger could not be read", run.pk)
        if resume:
            transition(run.pk, State.ENQUEUED, new_token=True)
    return found


def run_until_done(
    run_id: int, *, progress: Any = None, max_batches: int = 1_000_000
) -> BackfillRun:
    """Drive a run in this process (tests, `manage.py backfill --sync`), task after task,
    exactly as django-q2 workers run them (minus the queue hop between tasks)."""

    def each(pk: int) -> None:
        if progress:
            progress(BackfillRun.objects.get(pk=pk))

    for _ in range(max_batches):
        run = BackfillRun.objects.get(pk=run_id)
        if run.state in STOPPED:
            return run
        for token in tokens(run):  # the lanes one after the other
            result = run_task(run_id, token, enqueue_next=False, on_batch=each)
            if result != "next":
                each(run_id)
            if result in ("stale", "busy", "missing"):
                time.sleep(0.2)
    return BackfillRun.objects.get(pk=run_id)
