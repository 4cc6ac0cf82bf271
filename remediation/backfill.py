"""Bulk backfills: start, run batch by batch, pause/resume/cancel, retry, roll back exactly.

A run is a row with a strict state machine; each django-q2 task processes one short
batch, saves the cursor and enqueues the next (remediation.tasks). Everything a batch
writes is safe to repeat, because django-q2 delivers at least once:

- the run row is locked and the batch token compared, so a duplicate or stale delivery
  does nothing, and a per-run advisory lock keeps two workers off one run;
- sessions are claimed with row locks (`FOR UPDATE SKIP LOCKED`) in the pipeline
  database, so two runs, or a run and a support engineer finalizing by hand, never
  write one session twice; a session held elsewhere comes back "busy" and is retried;
- the pre-image of every row is stored (and committed) before the row changes, so
  "roll back this run" restores exactly those rows, refusing any changed since.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import secrets
import time
import uuid
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.db.models import F
from django.utils import timezone

from remediation import pipeline_write as pw
from remediation import selectors
from remediation.audit import audit
from remediation.models import BackfillItem, BackfillRun, FinalizeAttempt

logger = logging.getLogger("remediation.backfill")
State = BackfillRun.State

TRANSITIONS: dict[str, set[str]] = {
    State.ENQUEUED: {State.RUNNING, State.CANCELLED, State.PAUSED, State.INTERRUPTED},
    State.RUNNING: {State.PAUSING, State.PAUSED, State.CANCELLING, State.SUCCEEDED,
                    State.ERRORED, State.INTERRUPTED},
    State.PAUSING: {State.PAUSED, State.CANCELLING, State.INTERRUPTED, State.SUCCEEDED},
    State.PAUSED: {State.ENQUEUED, State.CANCELLED},
    State.CANCELLING: {State.CANCELLED, State.INTERRUPTED},
    State.INTERRUPTED: {State.ENQUEUED, State.CANCELLED},
    State.SUCCEEDED: {State.ENQUEUED},  # retry failed sessions
    State.ERRORED: {State.ENQUEUED, State.CANCELLED},
    State.CANCELLED: {State.ENQUEUED},  # retry failed sessions
}  # fmt: skip
TERMINAL = {State.SUCCEEDED, State.CANCELLED, State.ERRORED}
BUSY_ROUNDS = 5  # times a session held elsewhere is tried again before it counts as failed


class BackfillError(Exception):
    """A backfill request that cannot be carried out; the message says why."""


class IllegalTransition(BackfillError):
    pass


# --- Selection -------------------------------------------------------------------------
def parse_id_list(text: str) -> list[str]:
    """Session ids from free text or a CSV (first column, or a `session_id` column).

    Every bad line is reported at once, with its line number; nothing is dropped silently.
    """
    rows = list(csv.reader(io.StringIO(text)))
    column = 0
    if rows and any(c.strip().lower() in ("session_id", "id") for c in rows[0]):
        header = [c.strip().lower() for c in rows[0]]
        column = header.index("session_id") if "session_id" in header else header.index("id")
        rows = [[], *rows[1:]]
    ids: list[str] = []
    errors: list[str] = []
    seen: set[str] = set()
    for number, row in enumerate(rows, start=1):
        cells = [c.strip() for c in row]
        if not cells or not any(cells):
            continue
        value = cells[column] if column < len(cells) else ""
        try:
            sid = str(uuid.UUID(value))
        except ValueError:
            errors.append(f"line {number}: {value[:60]!r} is not a session id")
            continue
        if sid not in seen:
            seen.add(sid)
            ids.append(sid)
    if errors:
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        raise BackfillError("; ".join(errors[:10]) + more)
    if not ids:
        raise BackfillError("no session ids given")
    return ids


def _day(value: Any) -> date | None:
    if not value:
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise BackfillError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def selection_queryset(selection: str, params: dict[str, Any], rescore: bool = False) -> Any:
    """The sessions a window or filter selection covers, oldest completion first."""
    base = (
        selectors.sessions_with_flags().filter(status="completed")
        if rescore and selection == BackfillRun.Selection.WINDOW
        else selectors.orphaned_sessions()
    )
    tz = timezone.get_current_timezone()
    start, end = _day(params.get("completed_from")), _day(params.get("completed_to"))
    if selection == BackfillRun.Selection.WINDOW and not (start or end):
        raise BackfillError("a completion-date window needs a start or an end date")
    if start:
        base = base.filter(
            completed_at__gte=datetime.combine(start, datetime.min.time(), tzinfo=tz)
        )
    if end:
        base = base.filter(
            completed_at__lt=datetime.combine(
                end + timedelta(days=1), datetime.min.time(), tzinfo=tz
            )
        )
    fc = params.get("fc")
    if fc == "responses":
        base = base.filter(selectors.has_fc_responses_expression())
    elif fc == "none":
        base = base.filter(~selectors.has_fc_responses_expression())
    return base.order_by("completed_at", "id")


def resolve_selection(
    selection: str, params: dict[str, Any], ids: list[str] | None, rescore: bool
) -> list[str]:
    """The session ids a run will process, in order."""
    if selection in (BackfillRun.Selection.IDS, BackfillRun.Selection.CSV):
        if not ids:
            raise BackfillError("no session ids given")
        return ids
    if selection in (BackfillRun.Selection.WINDOW, BackfillRun.Selection.FILTER):
        return [
            str(pk)
            for pk in selection_queryset(selection, params, rescore).values_list("pk", flat=True)
        ]
    raise BackfillError(f"unknown selection {selection!r}")


# --- Starting and steering -----------------------------------------------------------------
def backfill_start(
    *,
    selection: str,
    params: dict[str, Any] | None = None,
    ids: list[str] | None = None,
    backend: str = "local",
    batch_size: int = 200,
    throttle_per_minute: int | None = None,
    dry_run: bool = False,
    rescore: bool = False,
    actor: Any = None,
    enqueue: bool = True,
    limit: int | None = None,
) -> BackfillRun:
    """Create a run with one item per selected session and enqueue its first batch."""
    if backend not in ("local", "edge"):
        raise BackfillError(f"unknown backend {backend!r}")
    if not 1 <= batch_size <= 5000:
        raise BackfillError("batch size must be between 1 and 5000")
    if throttle_per_minute is not None and throttle_per_minute <= 0:
        raise BackfillError("the throttle must be a positive number of sessions per minute")
    params = {k: v for k, v in (params or {}).items() if v not in (None, "")}
    session_ids = resolve_selection(selection, params, ids, rescore)
    caps = [c for c in (settings.BACKFILL_MAX_SESSIONS, limit) if c]
    cap = min(caps) if caps else 0
    if cap and len(session_ids) > cap:
        raise BackfillError(f"{len(session_ids)} sessions selected; your limit is {cap}")
    if not session_ids:
        raise BackfillError("the selection matches no session")
    user = actor if getattr(actor, "is_authenticated", False) else None
    with transaction.atomic():
        run = BackfillRun.objects.create(
            selection=selection,
            selection_params={**params, **({"ids": len(session_ids)} if ids else {})},
            backend=backend,
            batch_size=batch_size,
            throttle_per_minute=throttle_per_minute,
            dry_run=dry_run,
            rescore=rescore,
            estimated_total=len(session_ids),
            started_by=user,
            started_by_name=user.get_username() if user else str(actor or "system")[:150],
            batch_token=secrets.token_hex(8),
            state_changed_at=timezone.now(),
        )
        BackfillItem.objects.bulk_create(
            (BackfillItem(run=run, ordinal=i, session_id=sid) for i, sid in enumerate(session_ids)),
            batch_size=5000,
        )
        if enqueue:
            _enqueue_on_commit(run)
    logger.info("backfill %s started: %s sessions, backend %s", run.pk, len(session_ids), backend)
    audit(
        actor, "backfill.start", target=f"run #{run.pk}", sessions=session_ids, outcome=run.state,
        detail={"selection": selection, "params": params, "backend": backend, "batch_size": batch_size,
                "throttle_per_minute": throttle_per_minute, "dry_run": dry_run, "rescore": rescore},
    )  # fmt: skip
    return run


def _enqueue_on_commit(run: BackfillRun) -> None:
    run_id, token = run.pk, run.batch_token
    transaction.on_commit(lambda: enqueue_batch(run_id, token))


def enqueue_batch(run_id: int, token: str) -> None:
    """Hand the next batch to django-q2: only ids travel, never data or secrets."""
    from django_q.tasks import async_task

    async_task(
        "remediation.tasks.backfill_batch", run_id, token,
        task_name=f"backfill-{run_id}-{token}", group=f"backfill-{run_id}",
    )  # fmt: skip


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
            run.batch_token = secrets.token_hex(8)
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
    if to in TERMINAL or to == State.PAUSED:
        run.finished_at = now if to in TERMINAL else run.finished_at


def _audited(action: str, run: BackfillRun, actor: Any) -> BackfillRun:
    audit(actor, f"backfill.{action}", target=f"run #{run.pk}", outcome=run.state)
    return run


def backfill_pause(run_id: int, actor: Any = None) -> BackfillRun:
    """Running → pausing (takes effect at the next batch boundary); enqueued → paused."""
    run = BackfillRun.objects.get(pk=run_id)
    target = State.PAUSED if run.state == State.ENQUEUED else State.PAUSING
    return _audited(
        "pause", transition(run_id, target, message="paused by a support engineer"), actor
    )


def backfill_resume(run_id: int, actor: Any = None) -> BackfillRun:
    """Paused or interrupted → enqueued, continuing from the cursor."""
    return _audited("resume", transition(run_id, State.ENQUEUED, message="", new_token=True), actor)


def backfill_cancel(run_id: int, actor: Any = None) -> BackfillRun:
    """Stop for good: at the next batch boundary when running, at once otherwise."""
    run = BackfillRun.objects.get(pk=run_id)
    active = run.state in (State.RUNNING, State.PAUSING)
    target = State.CANCELLING if active else State.CANCELLED
    return _audited("cancel", transition(run_id, target, message="cancelled"), actor)


def backfill_retry_failed(run_id: int, actor: Any = None) -> BackfillRun:
    """Put failed and busy sessions back at the end of the run and enqueue it again."""
    with transaction.atomic():
        run = BackfillRun.objects.select_for_update().get(pk=run_id)
        if run.state not in (State.SUCCEEDED, State.CANCELLED, State.ERRORED):
            raise IllegalTransition(f"run #{run_id} is {run.state}; retry when it has stopped")
        failed = list(
            run.items.filter(outcome__in=[BackfillItem.Outcome.FAILED, BackfillItem.Outcome.BUSY])
        )
        if not failed:
            raise BackfillError("no failed sessions to retry")
        n_failed = sum(1 for i in failed if i.outcome == BackfillItem.Outcome.FAILED)
        _requeue(run, failed)
        run.failed = max(0, run.failed - n_failed)
        run.processed = max(0, run.processed - n_failed)
        run.failed_by_reason = {}
        run.save()
    run = transition(
        run_id, State.ENQUEUED, message=f"retrying {len(failed)} sessions", new_token=True
    )
    return _audited("retry_failed", run, actor)


def _requeue(run: BackfillRun, items: list[BackfillItem]) -> None:
    """Give items new ordinals past the end, so the cursor reaches them again."""
    top = run.items.order_by("-ordinal").values_list("ordinal", flat=True).first() or 0
    for offset, item in enumerate(items, start=1):
        item.ordinal = top + offset
        item.outcome = BackfillItem.Outcome.PENDING
        item.reason = item.sqlstate = item.error = item.constraint_name = ""
    BackfillItem.objects.bulk_update(
        items, ["ordinal", "outcome", "reason", "sqlstate", "error", "constraint_name"]
    )
    run.cursor = min(run.cursor, top + 1)


# --- Running a batch ---------------------------------------------------------------------
def process_batch(run_id: int, token: str, *, enqueue_next: bool = True) -> str:
    """Process one batch of a run; returns what happened ("stale", "done", "next", …)."""
    with transaction.atomic():
        run = BackfillRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None:
            return "missing"
        if token != run.batch_token:
            return "stale"  # a duplicate or superseded delivery
        if run.state == State.PAUSING:
            _set_state(run, State.PAUSED)
            run.save()
            return "paused"
        if run.state == State.CANCELLING:
            _set_state(run, State.CANCELLED)
            run.save()
            return "cancelled"
        if run.state == State.ENQUEUED:
            _set_state(run, State.RUNNING)
        elif run.state != State.RUNNING:
            return run.state
        run.heartbeat_at = timezone.now()
        run.save()
    with connections["default"].cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s, %s)", [LOCK_CLASS, run_id])
        if not cur.fetchone()[0]:
            return "busy"
    try:
        return _process_locked(run, enqueue_next)
    except Exception as exc:  # the run records it; the task itself must not loop on it
        logger.exception("backfill %s batch failed", run_id)
        with contextlib.suppress(IllegalTransition):
            transition(run_id, State.ERRORED, message=f"{type(exc).__name__}: {exc}"[:2000])
        return "errored"
    finally:
        with connections["default"].cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_CLASS, run_id])


LOCK_CLASS = 72_0001  # advisory-lock namespace of backfill runs


def _process_locked(run: BackfillRun, enqueue_next: bool) -> str:
    started = time.monotonic()
    items = list(run.items.filter(ordinal__gte=run.cursor).order_by("ordinal")[: run.batch_size])
    if not items:
        return _finish(run, enqueue_next)
    ctx = pw.load_context()
    if ctx.maintenance and not run.dry_run:
        status = ctx.system_status
        transition(
            run.pk, State.PAUSED,
            message=f"paused: scoring_config.system_status is {status.get('status')!r} "
            f"({status.get('message') or 'no message'}); resume when it is 'ok'",
        )  # fmt: skip
        return "paused"
    now = timezone.now()
    by_sid = {str(i.session_id): i for i in items}
    ids = list(by_sid)
    outcomes = _run_local(run, ctx, ids, now) if run.backend == "local" else _run_edge(run, ids)
    _record(run, by_sid, outcomes, now)
    # Sessions another worker held go to the back of the queue, a few times.
    busy = [by_sid[o.session_id] for o in outcomes if o.outcome == "busy"]
    retry = [i for i in busy if i.tries < BUSY_ROUNDS]
    last = items[-1].ordinal
    with transaction.atomic():
        locked = BackfillRun.objects.select_for_update().get(pk=run.pk)
        locked.cursor = last + 1
        if retry:
            _requeue(locked, retry)
        locked.batch_token = secrets.token_hex(8)
        locked.heartbeat_at = timezone.now()
        locked.save()
        token = locked.batch_token
    _throttle(run, len(items), time.monotonic() - started)
    if enqueue_next:
        enqueue_batch(run.pk, token)
    return "next"


def _throttle(run: BackfillRun, count: int, elapsed: float) -> None:
    if not run.throttle_per_minute:
        return
    wanted = count * 60.0 / run.throttle_per_minute
    time.sleep(max(0.0, min(wanted - elapsed, settings.BACKFILL_MAX_SLEEP)))


def _finish(run: BackfillRun, enqueue_next: bool) -> str:
    with transaction.atomic():
        locked = BackfillRun.objects.select_for_update().get(pk=run.pk)
        if locked.state != State.RUNNING:
            return locked.state
        _set_state(locked, State.SUCCEEDED, message=_summary(locked))
        locked.save()
    logger.info("backfill %s succeeded: %s", run.pk, _summary(locked))
    if not locked.dry_run and locked.created + locked.rescored:
        # The health figures and alerts reflect the recovery now, not at the next schedule.
        try:
            from remediation.health import snapshot_and_alert

            snapshot_and_alert()
        except Exception:  # the run succeeded; a failed snapshot is only logged
            logger.exception("health snapshot after backfill %s failed", run.pk)
    return "done"


def _summary(run: BackfillRun) -> str:
    return (
        f"{run.processed} processed: {run.created} created, {run.rescored} re-scored, "
        f"{run.existing} already had a profile, {run.failed} failed, {run.skipped} skipped"
    )


def _run_local(
    run: BackfillRun, ctx: pw.PipelineContext, ids: list[str], now: datetime
) -> list[pw.SessionOutcome]:
    def store_pre_images(outcomes: list[pw.SessionOutcome]) -> None:
        # Committed to the portal database before any pipeline row changes.
        rows: list[BackfillItem] = []
        items = {
            str(i.session_id): i
            for i in run.items.filter(session_id__in=[o.session_id for o in outcomes])
        }
        for o in outcomes:
            item = items[o.session_id]
            item.pre_image = o.pre_image
            rows.append(item)
        _set_items(rows, {"pre_image": "jsonb"})

    with transaction.atomic(using="pipeline"):
        with connections["pipeline"].cursor() as cur:
            cur.execute(
                "SELECT set_config('lock_timeout', '5s', true), set_config('statement_timeout', %s, true)",
                [f"{settings.PIPELINE_STATEMENT_TIMEOUT_MS}ms"],
            )
        return pw.write_batch(
            ctx, ids, rescore=run.rescore, now=now, lock="skip", dry_run=run.dry_run,
            before_write=None if run.dry_run else store_pre_images,
        )  # fmt: skip


def _run_edge(run: BackfillRun, ids: list[str]) -> list[pw.SessionOutcome]:
    """One edge call per session; pre-images read and stored before each call."""
    from remediation.finalizers.edge import edge_finalize

    out = []
    for sid in ids:
        o = pw.SessionOutcome(sid, "pending")
        if run.dry_run:
            o.outcome, o.reason, o.explanation = (
                "skipped",
                "dry_run",
                "dry run: would call finalizeAssessment",
            )
            out.append(o)
            continue
        o.pre_image = read_pre_image(sid)
        BackfillItem.objects.filter(run=run, session_id=sid).update(pre_image=o.pre_image)
        attempt = edge_finalize(
            session_id=sid, rescore=run.rescore, source="backfill", run_id=run.pk, actor="backfill"
        )
        o.outcome = (
            attempt.outcome if attempt.outcome in ("created", "rescored", "existing") else "failed"
        )
        o.reason, o.explanation = attempt.reason, attempt.explanation
        o.profile_id = str(attempt.profile_id) if attempt.profile_id else None
        o.type_code, o.results_url = attempt.type_code, attempt.results_url
        if o.outcome in ("created", "rescored"):
            o.post_fingerprint = fingerprint(sid)
        out.append(o)
    return out


def read_pre_image(session_id: str) -> dict[str, Any] | None:
    """The session, profile and fc_scores rows of a session, as JSON."""
    import json

    with connections["pipeline"].cursor() as cur:
        cur.execute(
            "SELECT to_jsonb(s)::text FROM assessment_sessions s WHERE id = %s", [session_id]
        )
        row = cur.fetchone()
        if row is None:
            return None
        cur.execute("SELECT to_jsonb(p)::text FROM profiles p WHERE session_id = %s", [session_id])
        profile = cur.fetchone()
        cur.execute(
            "SELECT to_jsonb(f)::text FROM fc_scores f WHERE session_id = %s ORDER BY version, fc_kind",
            [session_id],
        )
        fc = [json.loads(r[0]) for r in cur.fetchall()]
    return {
        "session": json.loads(row[0]),
        "profile": json.loads(profile[0]) if profile else None,
        "fc_scores": fc,
    }


def fingerprint(session_id: str) -> dict[str, Any]:
    """md5 of the session, profile and fc_scores rows as they are now."""
    with connections["pipeline"].cursor() as cur:
        cur.execute(
            "SELECT md5(to_jsonb(s)::text),"
            " (SELECT md5(to_jsonb(p)::text) FROM profiles p WHERE p.session_id = s.id),"
            " (SELECT md5(coalesce(jsonb_agg(to_jsonb(f) ORDER BY f.version, f.fc_kind), '[]')::text)"
            "  FROM fc_scores f WHERE f.session_id = s.id)"
            " FROM assessment_sessions s WHERE s.id = %s",
            [session_id],
        )
        row = cur.fetchone()
    return {"session": row[0], "profile": row[1], "fc_scores": row[2]} if row else {}


def _record(
    run: BackfillRun,
    by_sid: dict[str, BackfillItem],
    outcomes: list[pw.SessionOutcome],
    now: datetime,
) -> None:
    """Item outcomes, finalize attempts (for the health figures) and the run's counters."""
    counts: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    attempts: list[dict[str, Any]] = []
    items = []
    finished = timezone.now()
    for o in outcomes:
        item = by_sid[o.session_id]
        item.outcome = o.outcome if o.outcome != "pending" else "failed"
        if o.outcome == "busy" and item.tries + 1 >= BUSY_ROUNDS:
            item.outcome, o.outcome = "failed", "failed"
            o.reason = "busy"
        item.reason, item.error = o.reason, o.explanation[:4000]
        item.sqlstate = o.error.sqlstate if o.error else ""
        item.constraint_name = o.error.constraint if o.error else ""
        item.profile_id = o.profile_id
        item.type_code, item.results_url = o.type_code, o.results_url[:500]
        item.processed_at = now
        item.tries += 1
        if o.pre_image is not None:
            item.pre_image = o.pre_image
        item.post_fingerprint = o.post_fingerprint
        items.append(item)
        if o.outcome == "busy":
            continue
        counts[item.outcome] += 1
        if item.outcome == "failed":
            reasons[o.reason or "unknown"] += 1
        if run.backend == "local" and not run.dry_run:
            attempts.append(
                {
                    "session_id": o.session_id, "backend": "local", "source": "backfill",
                    "run_id": run.pk, "requested_by_name": run.started_by_name,
                    "rescore": run.rescore, "started_at": now, "finished_at": finished,
                    "outcome": o.outcome, "reason": o.reason, "sqlstate": item.sqlstate,
                    "constraint_name": item.constraint_name,
                    "table_name": o.error.table if o.error else "",
                    "error_message": o.error.message if o.error else "",
                    "explanation": o.explanation, "events": [e.to_dict() for e in o.events],
                    "profile_id": o.profile_id, "type_code": o.type_code,
                    "results_version": o.results_version, "results_url": o.results_url[:500],
                }
            )  # fmt: skip
    with transaction.atomic():
        _set_items(items, _RESULT_COLUMNS)
        _insert_attempts(attempts)
        locked = BackfillRun.objects.select_for_update().get(pk=run.pk)
        locked.processed = F("processed") + sum(counts.values())
        locked.created = F("created") + counts["created"]
        locked.rescored = F("rescored") + counts["rescored"]
        locked.existing = F("existing") + counts["existing"]
        locked.failed = F("failed") + counts["failed"]
        locked.skipped = F("skipped") + counts["skipped"]
        merged = Counter(locked.failed_by_reason or {})
        merged.update(reasons)
        locked.failed_by_reason = dict(merged)
        locked.heartbeat_at = timezone.now()
        locked.save()


_ATTEMPT_COLUMNS = {
    "session_id": "uuid", "backend": "text", "source": "text", "run_id": "bigint",
    "requested_by_name": "text", "rescore": "boolean", "started_at": "timestamptz",
    "finished_at": "timestamptz", "outcome": "text", "reason": "text", "sqlstate": "text",
    "constraint_name": "text", "table_name": "text", "error_message": "text",
    "explanation": "text", "events": "jsonb", "profile_id": "uuid", "type_code": "text",
    "results_version": "text", "results_url": "text",
}  # fmt: skip


def _insert_attempts(rows: list[dict[str, Any]]) -> None:
    """One FinalizeAttempt per backfilled session (the health figures count them), in one
    INSERT whose rows travel as one JSON parameter."""
    if not rows:
        return
    import json

    names = ", ".join(_ATTEMPT_COLUMNS)
    spec = ", ".join(f"{n} {t}" for n, t in _ATTEMPT_COLUMNS.items())
    with connections["default"].cursor() as cur:
        cur.execute(
            f"INSERT INTO {FinalizeAttempt._meta.db_table} ({names})"
            f" SELECT {names} FROM jsonb_to_recordset(%s::jsonb) AS v({spec})",
            [json.dumps(rows, default=str)],
        )


def _set_items(items: list[BackfillItem], columns: dict[str, str]) -> None:
    """UPDATE many items in one statement, the rows travelling as one JSON parameter.

    Django's bulk_update builds a CASE per row and column, which cost more than the whole
    pipeline write of a batch.
    """
    if not items:
        return
    import json

    names = list(columns)
    rows = [{"id": i.pk, **{n: getattr(i, n) for n in names}} for i in items]
    spec = ", ".join(["id bigint", *(f"{n} {columns[n]}" for n in names)])
    sets = ", ".join(f"{n} = v.{n}" for n in names)
    with connections["default"].cursor() as cur:
        cur.execute(
            f"UPDATE {BackfillItem._meta.db_table} i SET {sets}"
            f" FROM jsonb_to_recordset(%s::jsonb) AS v({spec}) WHERE i.id = v.id",
            [json.dumps(rows, default=str)],
        )


_RESULT_COLUMNS = {
    "outcome": "text", "reason": "text", "error": "text", "sqlstate": "text", "constraint_name": "text",
    "profile_id": "uuid", "type_code": "text", "results_url": "text", "processed_at": "timestamptz",
    "pre_image": "jsonb", "post_fingerprint": "jsonb", "tries": "smallint",
}  # fmt: skip


# --- Watchdog ----------------------------------------------------------------------------
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
        with connections["default"].cursor() as cur:  # a live worker holds the run's lock
            cur.execute("SELECT pg_try_advisory_lock(%s, %s)", [LOCK_CLASS, run.pk])
            free = cur.fetchone()[0]
            if free:
                cur.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_CLASS, run.pk])
        if not free:
            continue
        try:
            transition(
                run.pk, State.INTERRUPTED,
                message=f"worker stopped mid-run (no heartbeat since {beat:%Y-%m-%d %H:%M:%S}); "
                f"resuming from session {run.cursor}",
            )  # fmt: skip
        except IllegalTransition:
            continue
        found.append(run.pk)
        if resume:
            transition(run.pk, State.ENQUEUED, new_token=True)
    return found


def run_until_done(
    run_id: int, *, progress: Any = None, max_batches: int = 1_000_000
) -> BackfillRun:
    """Drive a run in this process (tests, `manage.py backfill --sync`), batch after batch."""
    for _ in range(max_batches):
        run = BackfillRun.objects.get(pk=run_id)
        if run.state in TERMINAL or run.state in (State.PAUSED, State.INTERRUPTED):
            return run
        result = process_batch(run_id, run.batch_token, enqueue_next=False)
        if progress:
            progress(BackfillRun.objects.get(pk=run_id))
        if result in ("stale", "busy", "missing"):
            time.sleep(0.2)
    return BackfillRun.objects.get(pk=run_id)


# --- Rollback ------------------------------------------------------------------------------
def backfill_rollback(run_id: int, *, actor: Any = None) -> dict[str, Any]:
    """Restore exactly the rows the run changed, refusing (and listing) any changed since."""
    run = BackfillRun.objects.get(pk=run_id)
    if run.state not in TERMINAL and run.state not in (State.PAUSED, State.INTERRUPTED):
        raise BackfillError(f"run #{run_id} is {run.state}: pause or cancel it before rolling back")
    if run.dry_run:
        raise BackfillError("a dry run changed nothing; there is nothing to roll back")
    items = list(
        run.items.filter(outcome__in=["created", "rescored"], rolled_back=False).exclude(
            pre_image=None
        )
    )
    report: dict[str, Any] = {
        "restored": 0,
        "conflicts": [],
        "errors": [],
        "at": timezone.now().isoformat(),
    }
    for item in items:
        try:
            with transaction.atomic(using="pipeline"):
                changed = _restore(item)
            if changed:
                report["conflicts"].append({"session_id": str(item.session_id), "changed": changed})
                continue
        except DatabaseError as exc:
            info = pw.classify_error(exc)
            report["errors"].append(
                {
                    "session_id": str(item.session_id),
                    "sqlstate": info.sqlstate,
                    "error": info.message,
                }
            )
            continue
        item.rolled_back = True
        item.save(update_fields=["rolled_back"])
        report["restored"] += 1
    run.rolled_back_at = timezone.now()
    run.rollback_report = report
    run.save(update_fields=["rolled_back_at", "rollback_report"])
    logger.info(
        "backfill %s rolled back: %s restored, %s conflicts",
        run_id,
        report["restored"],
        len(report["conflicts"]),
    )
    audit(
        actor, "backfill.rollback", target=f"run #{run_id}",
        sessions=[i.session_id for i in items], outcome=f"{report['restored']} restored",
        detail={"conflicts": report["conflicts"], "errors": report["errors"]},
    )  # fmt: skip
    return report


_SESSION_COLUMNS = (
    "status", "completed_at", "finalized_at", "share_token", "share_token_expires_at",
    "completed_questions", "updated_at",
)  # fmt: skip


def _restore(item: BackfillItem) -> list[str]:
    """Put one session's rows back; returns the rows changed since the run (then nothing is done)."""
    import json

    sid = str(item.session_id)
    pre = item.pre_image or {}
    with connections["pipeline"].cursor() as cur:
        cur.execute("SELECT 1 FROM assessment_sessions WHERE id = %s FOR UPDATE", [sid])
        now = fingerprint(sid)
        post = item.post_fingerprint or {}
        changed = [k for k in ("session", "profile", "fc_scores") if post.get(k) != now.get(k)]
        if changed:
            return changed
        if pre.get("profile") is None:
            # Only the profile this run created, never another.
            cur.execute(
                "DELETE FROM profiles WHERE session_id = %s AND id = %s",
                [sid, str(item.profile_id)],
            )
        else:
            cols = [c for c in pre["profile"] if c not in ("id", "session_id")]
            cur.execute(
                f"UPDATE profiles p SET ({', '.join(cols)}) = (SELECT {', '.join('r.' + c for c in cols)}"
                " FROM jsonb_populate_record(NULL::profiles, %s::jsonb) r) WHERE p.session_id = %s",
                [json.dumps(pre["profile"]), sid],
            )
        cur.execute(
            f"UPDATE assessment_sessions s SET ({', '.join(_SESSION_COLUMNS)}) ="
            f" (SELECT {', '.join('r.' + c for c in _SESSION_COLUMNS)}"
            " FROM jsonb_populate_record(NULL::assessment_sessions, %s::jsonb) r) WHERE s.id = %s",
            [json.dumps(pre["session"]), sid],
        )
        cur.execute(
            "SELECT md5(coalesce(jsonb_agg(to_jsonb(f) ORDER BY f.version, f.fc_kind), '[]')::text)"
            " FROM fc_scores f WHERE f.session_id = %s",
            [sid],
        )
        current_fc = cur.fetchone()[0]
        cur.execute("SELECT md5(%s::jsonb::text)", [json.dumps(pre.get("fc_scores") or [])])
        if cur.fetchone()[0] != current_fc:
            cur.execute("DELETE FROM fc_scores WHERE session_id = %s", [sid])
            if pre.get("fc_scores"):
                cur.execute(
                    "INSERT INTO fc_scores SELECT * FROM jsonb_populate_recordset(NULL::fc_scores, %s::jsonb)",
                    [json.dumps(pre["fc_scores"])],
                )
    return []
