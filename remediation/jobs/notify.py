"""Sending results notifications as a job: each item is one person's results message.

Exactly once, under at-least-once delivery and concurrent workers:

- a per-notification advisory lock (session-level, on the portal database) is held while a
  worker claims and sends it; a second worker finds it taken and gets "busy", and the lock
  goes with the connection when a worker dies;
- the claim (state "sending", under a row lock) is committed before the SMTP call, so a
  kill mid-send leaves a row that says so;
- a "sending" row whose lock is free was left by a dead worker: the message may have gone
  out, so it becomes "unknown" (needs a check) and is never sent again automatically; only
  an explicit resend (a new generation) sends another;
- a sent row is never sent again by an ordinary send (a repeated task, a retried round, a
  second run over the same people): the item is "skipped", reason "already_sent" (or
  "sent" when this very run sent it and its record of that was lost).

Temporary SMTP failures (4xx, connection errors before the message was handed over) are
retried in place with backoff (NOTIFY_MAX_TRIES, NOTIFY_RETRY_BACKOFF doubling); permanent
ones (5xx) fail at once. Messages are paced to NOTIFY_PER_MINUTE per worker; a batch stops
taking people when its time budget (BACKFILL_BATCH_SECONDS) has run out. A dry run
evaluates every person (who would be sent, who skipped and why) and sends nothing.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, connections, transaction
from django.utils import timezone

from remediation import pipeline as pw
from remediation.integrations import mail
from remediation.jobs.engine import JobKind, register
from remediation.models import BackfillItem, BackfillRun, ResultsNotification
from remediation.selectors import notifications as sel

logger = logging.getLogger("remediation.jobs.notify")
LOCK_CLASS = 72_0018  # advisory-lock namespace of notifications (runs use 72_0001)
NState = ResultsNotification.State
Reason = ResultsNotification.Reason
_pace_state = {"next": 0.0}


def _pace() -> None:
    """At most NOTIFY_PER_MINUTE messages a minute from this worker."""
    if settings.NOTIFY_PER_MINUTE <= 0:
        return
    wait = _pace_state["next"] - time.monotonic()
    if wait > 0:
        time.sleep(min(wait, 60.0))
    _pace_state["next"] = time.monotonic() + 60.0 / settings.NOTIFY_PER_MINUTE


def _lock_key(pk: int) -> int:
    return pk % 2_147_483_647


class NotifyJob(JobKind):
    name = "notify"

    def process(
        self, run: BackfillRun, items: list[BackfillItem], now: datetime
    ) -> list[pw.SessionOutcome]:
        ids = [str(i.session_id) for i in items]
        found = sel.targets(ids)
        blocked = sel.suppressed([t.email for t in found.values()])
        maintenance = sel.maintenance_on()
        latest = sel.latest_notifications(ids)
        if run.dry_run:
            return [_dry(found[sid], latest.get(sid), blocked, maintenance, now) for sid in ids]
        if connections["default"].in_atomic_block:  # the claim must commit before SMTP
            raise RuntimeError("notify must run outside a portal transaction (claims commit)")
        out: list[pw.SessionOutcome] = []
        # The batch's time budget (BACKFILL_BATCH_SECONDS): people not reached in time go
        # to the next task, so a task ends well before django-q2 kills it mid-send.
        deadline = time.monotonic() + settings.BACKFILL_BATCH_SECONDS
        for sid in ids:
            if out and time.monotonic() >= deadline:
                break
            n = latest.get(sid) or _first_notification(run, sid)
            out.append(_deliver(run, n, found[sid], blocked, maintenance))
        return out

    def record(self, run: BackfillRun, outcomes: list[pw.SessionOutcome], now: datetime) -> None:
        """One audit record per batch: who was sent their results, who was not and why."""
        if run.dry_run or not outcomes:
            return
        from remediation.services.audit import audit_record

        tally = Counter(o.outcome for o in outcomes)
        audit_record(
            run.started_by_name or "system",
            "notify.batch",
            target=f"run #{run.pk}",
            sessions=[o.session_id for o in outcomes if o.outcome == "sent"],
            outcome=f"{tally['sent']} sent",
            detail={
                "outcomes": dict(tally),
                "not_sent": {o.session_id: o.reason for o in outcomes if o.outcome != "sent"},
            },
        )

    def finished(self, run: BackfillRun) -> None:
        if run.dry_run:
            return
        try:  # the health figures and the failure-rate alert reflect the run now
            from remediation.services.health import health_check_run

            health_check_run()
        except Exception:  # the run has ended; a failed snapshot is only logged
            logger.exception("health snapshot after notify run %s failed", run.pk)

    def summary(self, run: BackfillRun) -> str:
        counts = run.counts or {}
        reasons = Counter(
            run.items.filter(outcome="skipped").values_list("reason", flat=True).iterator()
        )
        would = reasons.pop("would_send", 0)
        why = ", ".join(f"{r} {n}" for r, n in reasons.most_common())
        skipped = f"{sum(reasons.values())} skipped" + (f" ({why})" if why else "")
        if run.dry_run:
            return f"{run.processed} checked (dry run): {would} would be sent, {skipped}"
        return (
            f"{run.processed} processed: {counts.get('sent', 0)} sent, {skipped},"
            f" {counts.get('failed', 0)} failed, {counts.get('unknown', 0)} unknown"
        )


register(NotifyJob())


def _dry(
    target: sel.Target,
    n: ResultsNotification | None,
    blocked: set[str],
    maintenance: bool,
    now: datetime,
) -> pw.SessionOutcome:
    if n is not None and n.state in sel.NOT_AGAIN:
        reason = sel.NOT_AGAIN[n.state]
    elif n is not None and n.state == NState.FAILED and n.reason == Reason.PERMANENT:
        reason = "permanent"
    else:
        reason = sel.skip_reason(target, suppressed=blocked, maintenance=maintenance, now=now)
    return pw.SessionOutcome(
        target.session_id,
        "skipped",
        reason=reason or "would_send",
        explanation=sel.SKIP_WORDS.get(reason or "would_send", reason),
    )


def _first_notification(run: BackfillRun, sid: str) -> ResultsNotification:
    """The session's first notification (results_send_start makes them; a run started some
    other way gets them here)."""
    try:
        with transaction.atomic():
            return ResultsNotification.objects.create(
                session_id=sid,
                run=run,
                source_run_id=run.source_run_id,
                requested_by_id=run.started_by_id,
                requested_by_name=run.started_by_name,
            )
    except IntegrityError:  # another worker made it first
        return sel.latest_notifications([sid])[sid]


def _deliver(
    run: BackfillRun,
    n: ResultsNotification,
    target: sel.Target,
    blocked: set[str],
    maintenance: bool,
) -> pw.SessionOutcome:
    sid = target.session_id
    with connections["default"].cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s, %s)", [LOCK_CLASS, _lock_key(n.pk)])
        if not cur.fetchone()[0]:
            return pw.SessionOutcome(sid, "busy", reason="sending elsewhere")
    try:
        claimed, outcome = _claim(run, n.pk, target, blocked, maintenance)
        if outcome is not None:
            return outcome
        delivery = _send(claimed, target)
        return _settle(claimed, delivery, target)
    finally:
        with connections["default"].cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_CLASS, _lock_key(n.pk)])


def _claim(
    run: BackfillRun, pk: int, target: sel.Target, blocked: set[str], maintenance: bool
) -> tuple[ResultsNotification, pw.SessionOutcome | None]:
    """Under the row lock: settle what must not be sent; else mark it sending (committed)."""
    sid = target.session_id
    now = timezone.now()
    with transaction.atomic():
        n = ResultsNotification.objects.select_for_update().get(pk=pk)
        if n.state == NState.SENT and n.run_id == run.pk:
            # Sent by this run, whose record of it was lost (a crash, a redelivered batch).
            return n, pw.SessionOutcome(
                sid,
                "sent",
                explanation=n.smtp_reply,
                results_url=n.results_url,
                type_code=n.type_code,
            )
        if n.state == NState.SENT:
            return n, pw.SessionOutcome(
                sid, "skipped", reason="already_sent", explanation=sel.SKIP_WORDS["already_sent"]
            )
        if n.state == NState.SENDING:
            # We hold its lock, so the worker that claimed it is gone: it may have been sent.
            n.state, n.reason, n.settled_at = NState.UNKNOWN, Reason.INTERRUPTED, now
            n.save(update_fields=["state", "reason", "settled_at"])
            logger.warning("notification %s was left mid-send: now unknown", n.pk)
        if n.state == NState.UNKNOWN:
            return n, pw.SessionOutcome(
                sid, "unknown", reason=n.reason or "unknown", explanation=sel.SKIP_WORDS["unknown"]
            )
        if n.state == NState.FAILED and n.reason == Reason.PERMANENT:
            return n, pw.SessionOutcome(
                sid, "failed", reason="permanent", explanation=f"not retried: {n.smtp_reply}"
            )
        reason = sel.skip_reason(target, suppressed=blocked, maintenance=maintenance, now=now)
        n.run = run
        n.recipient = target.email[:320]
        n.results_url = target.results_url[:500]
        n.type_code = target.type_code
        if reason:
            n.state, n.reason, n.settled_at = NState.SKIPPED, reason, now
            n.save()
            return n, pw.SessionOutcome(
                sid, "skipped", reason=reason, explanation=sel.SKIP_WORDS.get(reason, reason)
            )
        n.state, n.reason, n.claimed_at, n.smtp_reply = NState.SENDING, "", now, ""
        n.message_id = sel.new_message_id()
        n.save()
    return n, None


def _send(n: ResultsNotification, target: sel.Target) -> mail.Delivery:
    """The SMTP transaction, tried again on temporary failures (with backoff)."""
    try:
        message = sel.message_for(target, message_id=n.message_id)
    except Exception as exc:  # nothing was sent: a broken template is not "unknown"
        logger.exception("results message for notification %s could not be built", n.pk)
        return mail.Delivery("permanent", f"the message could not be built: {type(exc).__name__}")
    delivery = mail.Delivery("temporary", "not tried")
    for attempt in range(1, max(1, settings.NOTIFY_MAX_TRIES) + 1):
        _pace()
        delivery = mail.send(message)
        n.attempts += 1
        n.smtp_reply = delivery.reply[:2000]
        if delivery.status != "temporary" or attempt >= settings.NOTIFY_MAX_TRIES:
            break
        ResultsNotification.objects.filter(pk=n.pk).update(
            attempts=n.attempts, smtp_reply=n.smtp_reply
        )
        time.sleep(settings.NOTIFY_RETRY_BACKOFF * 2 ** (attempt - 1))
    return delivery


def _settle(
    n: ResultsNotification, delivery: mail.Delivery, target: sel.Target
) -> pw.SessionOutcome:
    now = timezone.now()
    sid = target.session_id
    n.settled_at = now
    if delivery.status == "sent":
        n.state, n.sent_at = NState.SENT, now
        outcome = pw.SessionOutcome(
            sid,
            "sent",
            explanation=delivery.reply,
            results_url=target.results_url,
            type_code=target.type_code,
        )
    elif delivery.status == "unknown":
        n.state, n.reason = NState.UNKNOWN, Reason.LOST_REPLY
        outcome = pw.SessionOutcome(sid, "unknown", reason="lost_reply", explanation=delivery.reply)
    else:
        n.state = NState.FAILED
        n.reason = Reason.PERMANENT if delivery.status == "permanent" else Reason.TEMPORARY
        outcome = pw.SessionOutcome(sid, "failed", reason=n.reason, explanation=delivery.reply)
    n.save(update_fields=["state", "reason", "sent_at", "settled_at", "attempts", "smtp_reply"])
    return outcome
