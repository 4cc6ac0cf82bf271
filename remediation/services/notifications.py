"""Results notifications, written: start a send (a notify run), resend explicitly, and the
suppression list. Each records itself in the audit trail.

The sending itself is the notify job (remediation/jobs/notify.py): its items are these
rows, claimed one by one before each SMTP call.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max

from remediation.jobs.engine import RunError, run_create, started_by
from remediation.models import BackfillRun, ResultsNotification, SuppressedAddress
from remediation.services.audit import audit_record

NState = ResultsNotification.State
# A new explicit resend is not added on top of a message still waiting or being sent.
_PENDING = (NState.QUEUED, NState.SENDING)


def _clean_ids(session_ids: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for raw in session_ids:
        try:
            seen[str(uuid.UUID(str(raw).strip()))] = None
        except ValueError as exc:
            raise RunError(f"not a session id: {str(raw)[:60]!r}") from exc
    return list(seen)


def results_send_start(
    *,
    session_ids: list[str],
    actor: Any,
    source_run_id: int | None = None,
    dry_run: bool = False,
    resend: bool = False,
    enqueue: bool = True,
    batch_size: int | None = None,
) -> BackfillRun:
    """Start a notify run sending each session its results link; returns the run.

    An ordinary send never reaches anyone twice: a session whose latest message was sent
    (or may have been: "unknown") is skipped. `resend=True` is the explicit resend: a new
    message (generation) for each session, whatever happened before. `dry_run` evaluates
    everyone (who would be sent, who skipped and why) and writes no notification.
    """
    ids = _clean_ids(session_ids)
    if not ids:
        raise RunError("no session to send results to")
    if settings.BACKFILL_MAX_SESSIONS and len(ids) > settings.BACKFILL_MAX_SESSIONS:
        raise RunError(f"{len(ids)} sessions is over the limit of {settings.BACKFILL_MAX_SESSIONS}")
    if source_run_id is not None and not BackfillRun.objects.filter(pk=source_run_id).exists():
        raise RunError(f"no run #{source_run_id}")
    who = started_by(actor)
    with transaction.atomic():
        run = run_create(
            kind=BackfillRun.Kind.NOTIFY,
            session_ids=ids,
            enqueue=enqueue,
            selection=BackfillRun.Selection.RUN if source_run_id else BackfillRun.Selection.IDS,
            selection_params={
                "sessions": len(ids),
                "resend": resend,
                "per_minute": settings.NOTIFY_PER_MINUTE,
            },
            source_run_id=source_run_id,
            dry_run=dry_run,
            batch_size=batch_size or settings.NOTIFY_BATCH_SIZE,
            **who,
        )
        if not dry_run:
            _queue(run, ids, resend=resend, who=who)
        action = "notify.dry_run" if dry_run else ("notify.resend" if resend else "notify.send")
        audit_record(
            actor,
            action,
            target=f"run #{run.pk}",
            sessions=ids,
            outcome=run.state,
            detail={"source_run": source_run_id, "resend": resend},
        )
    return run


def _queue(run: BackfillRun, ids: list[str], *, resend: bool, who: dict[str, Any]) -> None:
    """Each session's notification for this run: the latest one, or a new generation."""
    latest = {
        str(sid): (gen, state)
        for sid, gen, state in ResultsNotification.objects.filter(session_id__in=ids)
        .order_by("session_id", "-generation")
        .distinct("session_id")
        .values_list("session_id", "generation", "state")
    }
    new = []
    for sid in ids:
        current = latest.get(sid)
        if current is None or (resend and current[1] not in _PENDING):
            new.append(
                ResultsNotification(
                    session_id=sid,
                    generation=(current[0] + 1) if current else 1,
                    run=run,
                    source_run_id=run.source_run_id,
                    requested_by=who["started_by"],
                    requested_by_name=who["started_by_name"],
                )
            )
    # A concurrent start may add the same generation: the unique constraint keeps one.
    ResultsNotification.objects.bulk_create(new, batch_size=2000, ignore_conflicts=True)
    # Messages that did not go out (skipped, failed for a temporary reason) are this run's
    # to try again; sent, unknown and permanently failed ones stay as they are.
    retry = ResultsNotification.objects.filter(session_id__in=ids).filter(
        state__in=[NState.SKIPPED, NState.FAILED]
    )
    retry = retry.exclude(state=NState.FAILED, reason=ResultsNotification.Reason.PERMANENT)
    top = (
        ResultsNotification.objects.filter(session_id__in=ids)
        .values("session_id")
        .annotate(g=Max("generation"))
    )
    tops = {(str(r["session_id"]), r["g"]) for r in top}
    requeue = [n.pk for n in retry if (str(n.session_id), n.generation) in tops]
    ResultsNotification.objects.filter(pk__in=requeue).update(
        state=NState.QUEUED, reason="", run=run
    )


def suppression_add(*, address: str, reason: str = "", actor: Any = None) -> SuppressedAddress:
    """Put an address on the suppression list (idempotent), audited."""
    entry, _ = SuppressedAddress.objects.get_or_create(
        address=address.strip().lower(),
        defaults={"reason": reason[:200], "added_by": str(getattr(actor, "username", actor))},
    )
    audit_record(actor, "notify.suppress", target=entry.address, outcome="suppressed")
    return entry
