"""The backfill: give each selected session its profile, locally or through the edge function.

Local: one pipeline transaction per batch writes every session as service_role (one
savepoint each) and, in the same transaction, a run-ledger entry per session it wrote
(pre-image, fingerprint, profile: remediation/jobs/ledger.py), so the writes and the record
of them become durable together and "roll back this run" restores exactly those rows,
whenever the worker was killed.

Edge: the function writes in its own transaction, so the portal claims each session
before the call (its pre-image committed on the item) and reads the profile back after it.
A claimed item still pending in a later batch is a call whose outcome was lost: the
database decides (a fresh profile that was not there before is the run's own work) before
anything is posted again. Up to EDGE_CONCURRENCY calls are made at once (edge_pool.py:
one HTTP session per thread, one backoff for the pool on 429/503). A batch of edge calls
stops taking sessions when its time budget (BACKFILL_BATCH_SECONDS, or the end of the
task's) runs out; the rest go to the next batch.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connections

from remediation import pipeline as pw
from remediation.jobs import crashpoints, ledger
from remediation.jobs.engine import JobKind, PauseRun, register, rounds_words
from remediation.jobs.items import insert_rows
from remediation.models import BackfillItem, BackfillRun, FinalizeAttempt

logger = logging.getLogger("remediation.jobs.finalize")

_ATTEMPT_COLUMNS = {
    "session_id": "uuid",
    "backend": "text",
    "source": "text",
    "run_id": "bigint",
    "requested_by_name": "text",
    "rescore": "boolean",
    "started_at": "timestamptz",
    "finished_at": "timestamptz",
    "outcome": "text",
    "reason": "text",
    "sqlstate": "text",
    "constraint_name": "text",
    "failed_statement": "text",
    "table_name": "text",
    "error_message": "text",
    "explanation": "text",
    "events": "jsonb",
    "profile_id": "uuid",
    "type_code": "text",
    "results_version": "text",
    "results_url": "text",
}


class FinalizeJob(JobKind):
    name = "finalize"

    def process(
        self, run: BackfillRun, items: list[BackfillItem], now: datetime
    ) -> list[pw.SessionOutcome]:
        ids = [str(i.session_id) for i in items]
        if run.backend == "edge":
            return _run_edge(run, items)
        try:
            ctx = _context(run)
        except pw.PipelineTimeout as exc:  # a table the context reads is locked: retried later
            return pw.mark_busy([pw.SessionOutcome(sid, "pending") for sid in ids], exc)
        if ctx.maintenance and not run.dry_run:
            status = ctx.system_status
            raise PauseRun(
                f"paused: scoring_config.system_status is {status.get('status')!r} "
                f"({status.get('message') or 'no message'}); resume when it is 'ok'"
            )
        return _run_local(run, ctx, ids, now)

    def ledgered(self, run: BackfillRun) -> bool:
        return run.backend == "local" and not run.dry_run

    def record(self, run: BackfillRun, outcomes: list[pw.SessionOutcome], now: datetime) -> None:
        """One FinalizeAttempt per locally backfilled session (the health figures count them)."""
        if run.backend != "local" or run.dry_run:
            return
        from django.utils import timezone

        finished = timezone.now()
        rows = [_attempt_row(run, o, now, finished) for o in outcomes]
        insert_rows(FinalizeAttempt._meta.db_table, _ATTEMPT_COLUMNS, rows)

    def finished(self, run: BackfillRun) -> None:
        # Whatever the end (succeeded, finished with failures, all failed): when something
        # was written, the health figures and alerts reflect it now, not at the next schedule.
        # The snapshot (about 2 s at 1 M sessions) is its own task: the run's task is done.
        if run.dry_run or not (run.created + run.rescored):
            return
        try:
            from django_q.tasks import async_task

            async_task(
                "remediation.tasks.health_check",
                task_name=f"health-after-run-{run.pk}",
                group="health-after-run",
            )
        except Exception:  # the run has ended; a snapshot not enqueued is only logged
            logger.exception("health snapshot after backfill %s not enqueued", run.pk)

    def summary(self, run: BackfillRun) -> str:
        text = (
            f"{run.processed} processed: {run.created} created, {run.rescored} re-scored, "
            f"{run.existing} already had a profile, {run.failed} failed, {run.skipped} skipped"
        ) + (f", {unknown} unknown" if (unknown := (run.counts or {}).get("unknown")) else "")
        by_round = rounds_words(run)
        # After a retry the headline is each session's latest outcome; the rounds say what
        # each pass did (5 failed, then 5 already had a profile is not "0 failed" alone).
        return f"{text} (now, over every round; {by_round})" if by_round else text


register(FinalizeJob())

# The context the previous batch of the same task read: (run, task deadline, context).
_task_context: tuple[int, float, pw.PipelineContext] | None = None


def _context(run: BackfillRun) -> pw.PipelineContext:
    """The pipeline context for a batch. The batches of one task (remediation/jobs/
    engine.run_task) share the scoring key, prototypes, calibration, FC options and table
    shapes the first one read; scoring_config (the maintenance gate, the results version,
    the engine's settings) is read again for every batch, and a change reads all again."""
    global _task_context
    deadline = getattr(run, "task_deadline", None)
    cached = _task_context
    if deadline is not None and cached and cached[:2] == (run.pk, deadline):
        with connections["pipeline"].cursor() as cur:
            cur.execute("SELECT key, value FROM scoring_config")
            config = {k: json.loads(v) if isinstance(v, str) else v for k, v in cur.fetchall()}
        if config == cached[2].config:
            return cached[2]
    ctx = pw.load_context()
    _task_context = (run.pk, deadline, ctx) if deadline is not None else None
    return ctx


def _attempt_row(
    run: BackfillRun, o: pw.SessionOutcome, now: datetime, finished: datetime
) -> dict[str, Any]:
    return {
        "session_id": o.session_id,
        "backend": "local",
        "source": "backfill",
        "run_id": run.pk,
        "requested_by_name": run.started_by_name,
        "rescore": run.rescore,
        "started_at": o.recorded_at or now,
        "finished_at": finished,
        "outcome": o.outcome,
        "reason": o.reason,
        "sqlstate": o.error.sqlstate if o.error else "",
        "constraint_name": o.error.constraint if o.error else "",
        "failed_statement": o.error.statement if o.error else "",
        "table_name": o.error.table if o.error else "",
        "error_message": o.error.message if o.error else "",
        "explanation": o.explanation,
        "events": [e.to_dict() for e in o.events],
        "profile_id": o.profile_id,
        "type_code": o.type_code,
        "results_version": o.results_version,
        "results_url": o.results_url[:500],
    }


def _run_local(
    run: BackfillRun, ctx: pw.PipelineContext, ids: list[str], now: datetime
) -> list[pw.SessionOutcome]:
    with pw.pipeline_transaction() as conn:
        # The written sessions' fingerprints are computed by the statement that writes
        # their ledger entries (one round trip for both).
        outcomes = pw.write_batch(
            ctx,
            ids,
            rescore=run.rescore,
            now=now,
            lock="skip",
            dry_run=run.dry_run,
            fingerprint=False,
        )
        if not run.dry_run:
            written = [o for o in outcomes if o.outcome in ("created", "rescored")]
            with conn.cursor() as cur:
                ledger.write(cur, run.ledger_key, written, now, fingerprint=True)
            crashpoints.reached("pipeline.before_commit")
    return outcomes


def _run_edge(run: BackfillRun, items: list[BackfillItem]) -> list[pw.SessionOutcome]:
    """One edge call per session, up to EDGE_CONCURRENCY at a time (remediation/jobs/
    edge_pool.py), each claimed first (pre-image committed on its item), until the batch's
    time budget runs out (BACKFILL_BATCH_SECONDS, or the task's end if sooner); a claim
    left by a lost outcome is settled from the database instead of posting again."""
    from remediation.jobs.edge_pool import run_pool

    if run.dry_run:
        out = []
        for item in items:
            o = pw.SessionOutcome(str(item.session_id), "skipped", reason="dry_run")
            o.explanation = "dry run: would call finalizeAssessment"
            out.append(o)
        return out
    budget_end = time.monotonic() + settings.BACKFILL_BATCH_SECONDS
    task_end = getattr(run, "task_deadline", None)
    if task_end is not None:
        budget_end = min(budget_end, task_end)
    return run_pool(
        items,
        lambda item, http: _edge_one(run, item, http),
        concurrency=settings.EDGE_CONCURRENCY,
        budget_end=budget_end,
    )


def _edge_one(run: BackfillRun, item: BackfillItem, http: Any) -> pw.SessionOutcome:
    """One session: settle its claim from the database, or claim it (pre-image committed
    on the item), call the function once, read back its fingerprint."""
    from remediation.services.edge import edge_finalize

    sid = str(item.session_id)
    o = pw.SessionOutcome(sid, "pending")
    if item.pre_image is not None:
        if _settle_claim(item, o):
            return o
        # Claimed in this round and not written: the claim's pre-image stays (a call the
        # kill cut short may have changed the session row since; it is put back from it).
        o.pre_image = item.pre_image
    else:
        with connections["pipeline"].cursor() as cur:
            o.pre_image = pw.read_pre_images(cur, [sid]).get(sid)
        BackfillItem.objects.filter(pk=item.pk).update(pre_image=o.pre_image)
    crashpoints.reached("edge.claimed")
    attempt = edge_finalize(
        session_id=sid,
        rescore=run.rescore,
        source="backfill",
        run_id=run.pk,
        actor="backfill",
        http=http,
        pre_image=o.pre_image,
    )
    crashpoints.reached("edge.called")
    # "unknown" stays unknown (the function may have run): "retry failed" settles it
    # by reading the database before it posts anything again.
    kept = attempt.outcome in ("created", "rescored", "existing", "unknown")
    o.outcome = attempt.outcome if kept else "failed"
    o.reason, o.explanation = attempt.reason, attempt.explanation
    if attempt.completed_at_restored:
        o.notes = {"completed_at_restored": attempt.completed_at_restored}
    o.profile_id = str(attempt.profile_id) if attempt.profile_id else None
    o.type_code, o.results_url = attempt.type_code, attempt.results_url
    if o.outcome in ("created", "rescored"):
        with connections["pipeline"].cursor() as cur:
            o.post_fingerprint = pw.fingerprints(cur, [sid]).get(sid)
    return o


def _settle_claim(item: BackfillItem, o: pw.SessionOutcome) -> bool:
    """A claimed item whose outcome was lost (the worker died after claiming it): when the
    database shows a profile of the configured version that differs from the pre-image, the
    earlier call wrote it: the outcome is created (re-scored), not posted again. Otherwise
    (no call was made, or it wrote nothing) False: the session is posted now."""
    from remediation.selectors.config import configured_results_version

    sid = str(item.session_id)
    before = (item.pre_image or {}).get("profile")
    with connections["pipeline"].cursor() as cur:
        cur.execute(
            "SELECT p.id::text, coalesce(p.type_code, ''), s.share_token, to_jsonb(p)::text"
            " FROM profiles p JOIN assessment_sessions s ON s.id = p.session_id"
            " WHERE p.session_id = %s::uuid AND p.results_version = %s",
            [sid, configured_results_version()],
        )
        row = cur.fetchone()
        if row is None:
            return False
        profile_id, type_code, token, image = row
        if before is not None and json.loads(image) == before:
            return False  # the profile is the one that was there before: nothing written
    # Put back now, or (the call's own restore was done before the kill) as its attempt says.
    note = _restore_completed_at(item) or _restored_by_attempt(item)
    with connections["pipeline"].cursor() as cur:
        o.post_fingerprint = pw.fingerprints(cur, [sid]).get(sid)
    o.outcome = "rescored" if before else "created"
    o.reason = "claim_settled"
    o.explanation = (
        "the worker stopped after calling the edge function for this session; the database "
        "shows the profile it wrote: counted as written, not posted again"
    )
    if note:
        o.notes = {"completed_at_restored": note}
        o.explanation += ". " + _words(note)
    o.profile_id, o.type_code = profile_id, type_code
    o.results_url = pw.results_url(sid, token)
    o.pre_image = item.pre_image
    return True


def settle_unknown(run: BackfillRun, items: list[BackfillItem]) -> list[BackfillItem]:
    """Read the database for `unknown` items (the edge function got the request, no answer
    came back whole): a session whose profile now has the configured results version gets
    the outcome created (re-scored when its pre-image had a profile) with the reason
    `unknown_settled` and its fingerprint, so a rollback covers it. Returns the settled
    items (saved); the others are left as they are, for the caller to post again."""
    from remediation.selectors.config import configured_results_version

    unknown = {str(i.session_id): i for i in items if i.outcome == BackfillItem.Outcome.UNKNOWN}
    if not unknown:
        return []
    expected = configured_results_version()
    notes = restore_completed_at_of(list(unknown.values()))
    with connections["pipeline"].cursor() as cur:
        cur.execute(
            "SELECT p.session_id::text, p.id::text, coalesce(p.type_code, ''), s.share_token"
            " FROM profiles p JOIN assessment_sessions s ON s.id = p.session_id"
            " WHERE p.session_id = ANY(%s::uuid[]) AND p.results_version = %s",
            [pw.uuid_array(list(unknown)), expected],
        )
        found = {row[0]: row[1:] for row in cur.fetchall()}
        prints = pw.fingerprints(cur, list(found))
    settled = []
    for sid, (profile_id, type_code, token) in found.items():
        item = unknown[sid]
        had = bool((item.pre_image or {}).get("profile"))
        item.outcome = BackfillItem.Outcome.RESCORED if had else BackfillItem.Outcome.CREATED
        item.reason = "unknown_settled"
        item.error = (
            "No answer came back whole, but the database shows the profile: counted as "
            "written, not posted again."
        )
        item.profile_id, item.type_code = profile_id, type_code
        item.results_url = pw.results_url(sid, token)[:500]
        item.post_fingerprint = prints.get(sid)
        if notes.get(sid):
            item.notes = {"completed_at_restored": notes[sid]}
            item.error += " " + _words(notes[sid])
        settled.append(item)
    BackfillItem.objects.bulk_update(
        settled,
        [
            "outcome",
            "reason",
            "error",
            "profile_id",
            "type_code",
            "results_url",
            "post_fingerprint",
            "notes",
        ],
    )
    return settled


def restore_completed_at_of(items: list[BackfillItem]) -> dict[str, dict[str, Any]]:
    """For edge items whose call may have run after its answer was lost (unknown, or a
    claim a kill cut short): put completed_at back from each one's pre-image where the
    function changed it since. What was done, by session id (audited); safe to repeat."""
    notes = {}
    for item in items:
        note = _restore_completed_at(item)
        if note:
            notes[str(item.session_id)] = note
    return notes


def _restore_completed_at(item: BackfillItem) -> dict[str, Any] | None:
    from remediation.services.edge import completed_at_audit, completed_at_restore

    if not item.pre_image:
        return None
    sid = str(item.session_id)
    note = completed_at_restore(sid, item.pre_image)
    if note:
        completed_at_audit("backfill", note, sid, run=item.run_id, item=item.pk)
    return note


def _restored_by_attempt(item: BackfillItem) -> dict[str, Any] | None:
    """The completed_at restore this run's attempt for the item's session recorded."""
    return (
        FinalizeAttempt.objects.filter(run_id=item.run_id, session_id=item.session_id)
        .exclude(completed_at_restored=None)
        .order_by("-started_at")
        .values_list("completed_at_restored", flat=True)
        .first()
    )


def _words(note: dict[str, Any]) -> str:
    from remediation.services.edge import completed_at_words

    return completed_at_words(note)


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
    exclude: dict[int, list[str]] | None = None,
) -> BackfillRun:
    """Create a finalize run with one item per selected session and enqueue its first batch.

    `exclude`: sessions other runs hold ({run id: session ids}, services/runs.py), left out
    of this run and recorded in its selection params."""
    from remediation.jobs.engine import RunError, run_create, started_by
    from remediation.jobs.selection import resolve_selection
    from remediation.services.audit import audit_record

    _check_parameters(backend, batch_size, throttle_per_minute)
    params = {k: v for k, v in (params or {}).items() if v not in (None, "")}
    session_ids = resolve_selection(selection, params, ids, rescore)
    if exclude:
        held = {s for sids in exclude.values() for s in sids}
        session_ids = [s for s in session_ids if str(s) not in held]
        params["excluded_held_by"] = {str(r): len(sids) for r, sids in exclude.items()}
        if not session_ids:
            raise RunError("every selected session is held by another active run")
    _check_size(len(session_ids), limit)
    _check_person(actor, len(session_ids), rescore=rescore, dry_run=dry_run, backend=backend)
    run = run_create(
        kind=BackfillRun.Kind.FINALIZE,
        session_ids=session_ids,
        enqueue=enqueue,
        selection=selection,
        selection_params={**params, **({"ids": len(session_ids)} if ids else {})},
        backend=backend,
        batch_size=batch_size,
        throttle_per_minute=throttle_per_minute,
        dry_run=dry_run,
        rescore=rescore,
        # Batches in flight at once; a throttle is the run's, so a throttled run has one.
        lanes=1 if throttle_per_minute else min(settings.BACKFILL_LANES, len(session_ids) or 1),
        **started_by(actor),
    )
    logger.info("backfill %s started: %s sessions, backend %s", run.pk, len(session_ids), backend)
    audit_record(
        actor,
        "backfill.start",
        target=f"run #{run.pk}",
        sessions=session_ids,
        outcome=run.state,
        detail={
            "selection": selection,
            "params": params,
            "backend": backend,
            "batch_size": batch_size,
            "throttle_per_minute": throttle_per_minute,
            "dry_run": dry_run,
            "rescore": rescore,
        },
    )
    return run


def _check_parameters(backend: str, batch_size: int, throttle_per_minute: int | None) -> None:
    from remediation.jobs.engine import RunError

    if backend not in ("local", "edge"):
        raise RunError(f"unknown backend {backend!r}")
    if not 1 <= batch_size <= 5000:
        raise RunError("batch size must be between 1 and 5000")
    if throttle_per_minute is not None and throttle_per_minute <= 0:
        raise RunError("the throttle must be a positive number of sessions per minute")


LARGE_BACKFILL = "remediation.run_large_backfill"  # the Engineer role's permission


def support_quota(user: Any, now: datetime | None = None) -> tuple[int, datetime | None, int]:
    """(sessions this person may still start now, when the next ones free up, the cap):
    SUPPORT_MAX_BACKFILL over all finalize runs the person started within the last
    SUPPORT_BACKFILL_WINDOW_MINUTES (dry runs write nothing and do not count)."""
    from datetime import timedelta

    from django.utils import timezone

    now = now or timezone.now()
    window = timedelta(minutes=settings.SUPPORT_BACKFILL_WINDOW_MINUTES)
    cap = settings.SUPPORT_MAX_BACKFILL
    recent = list(
        BackfillRun.objects.filter(
            kind=BackfillRun.Kind.FINALIZE,
            started_by=user,
            dry_run=False,
            created_at__gt=now - window,
        )
        .order_by("created_at")
        .values_list("created_at", "estimated_total")
    )
    used = sum(n for _, n in recent)
    frees = recent[0][0] + window if recent else None
    return max(0, cap - used), frees, cap


def _check_person(
    actor: Any, count: int, *, rescore: bool, dry_run: bool, backend: str = "local"
) -> None:
    """Support (a user without run_large_backfill): no re-score runs, and the per-person
    limit within the window; the edge backend needs use_edge_backend. The command line and
    the system (not users) are not limited."""
    from django.utils import timezone

    from remediation.jobs.engine import RunError
    from remediation.services.sessions import edge_allowed

    if backend == "edge" and not edge_allowed(actor):
        raise RunError("the edge backend needs the Engineer role (use_edge_backend)")
    if not getattr(actor, "is_authenticated", False) or actor.has_perm(LARGE_BACKFILL):
        return
    if rescore:
        raise RunError("re-score runs need the Engineer role (run_large_backfill)")
    if dry_run:
        return
    left, frees, cap = support_quota(actor)
    if count > left:
        minutes = settings.SUPPORT_BACKFILL_WINDOW_MINUTES
        when = (
            f"; more become available from {timezone.localtime(frees):%H:%M}"
            if frees and count <= cap
            else ""
        )
        raise RunError(
            f"{count} sessions selected; you may start {left} more now (at most {cap} "
            f"sessions within {minutes} minutes, over all your runs){when}"
        )


def _check_size(count: int, limit: int | None) -> None:
    """BACKFILL_MAX_SESSIONS and the caller's own limit (Support's SUPPORT_MAX_BACKFILL)."""
    from remediation.jobs.engine import RunError

    caps = [c for c in (settings.BACKFILL_MAX_SESSIONS, limit) if c]
    cap = min(caps) if caps else 0
    if cap and count > cap:
        raise RunError(f"{count} sessions selected; your limit is {cap}")
    if not count:
        raise RunError("the selection matches no session")
