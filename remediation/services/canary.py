"""The write-path canary: one pass (the rolled-back write), its result, its alert.

A pass runs `remediation.pipeline.canary.canary_write` (what the pipeline does for a new
session, always rolled back), keeps the result (CanaryResult, pruned after
CANARY_RETENTION_DAYS), opens the HIGH alert `write_path` naming the cause when the write
path refuses ("profile writes fail: 23514 on profiles_fc_coverage_bucket_check"), and
resolves it on the next pass that succeeds. A pass that cannot reach a verdict (a lock not
granted within the lock timeout, the engine has nothing to score) is kept but changes no
alert. Then auto-heal gets its turn (remediation.services.autoheal).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from remediation import pipeline as pw
from remediation.models import Alert, CanaryResult
from remediation.pipeline.canary import INCONCLUSIVE_SQLSTATES, CanaryWrite, canary_write

logger = logging.getLogger("remediation.canary")

RULE = "write_path"
SEVERITY = "high"
_WHAT_FAILS = {
    "session insert": "session inserts fail",
    "profile write": "profile writes fail",
    "session update": "session updates fail",
}


def canary_run(
    *,
    source: str = "schedule",
    now: datetime | None = None,
    pause: Callable[[], None] | None = None,
) -> CanaryResult:
    """One canary pass: the rolled-back write, its result kept, the alert updated,
    old results pruned, auto-heal considered. `pause` is for tests (see canary_write)."""
    now = now or timezone.now()
    result = _result(_write(now, pause), now, source)
    result.save()
    _alert_update(result, now)
    CanaryResult.objects.filter(
        at__lt=now - timedelta(days=settings.CANARY_RETENTION_DAYS)
    ).delete()
    logger.info("canary %s in %.0f ms %s", result.outcome, result.duration_ms, result.cause)
    from remediation.services.autoheal import autoheal_after_canary

    try:
        autoheal_after_canary(result, now)
    except Exception:  # the pass and its alert are recorded; auto-heal's failure is logged
        logger.exception("auto-heal after canary pass %s failed", result.pk)
    return result


def _write(now: datetime, pause: Callable[[], None] | None) -> CanaryWrite | str:
    try:
        ctx = pw.load_context()
        return canary_write(ctx, now, pause=pause)
    except ValueError as exc:
        return str(exc)
    except DatabaseError as exc:  # reading the context failed: no verdict on the write
        info = pw.classify_error(exc)
        if info.sqlstate in INCONCLUSIVE_SQLSTATES:  # a lock held elsewhere: busy
            return CanaryWrite(False, 0.0, statement="context read", error=info)
        return f"the pipeline database could not be read: {str(exc).splitlines()[0]}"


def _result(write: CanaryWrite | str, now: datetime, source: str) -> CanaryResult:
    if isinstance(write, str):
        return CanaryResult(
            at=now,
            outcome=CanaryResult.Outcome.ERROR,
            duration_ms=0,
            message=write[:2000],
            explanation=write[:2000],
            source=source,
        )
    if write.ok:
        return CanaryResult(
            at=now,
            outcome=CanaryResult.Outcome.OK,
            duration_ms=write.duration_ms,
            rows_written=write.rows_written,
            source=source,
        )
    info = write.error
    assert info is not None
    return CanaryResult(
        at=now,
        outcome=CanaryResult.Outcome.BUSY if write.inconclusive else CanaryResult.Outcome.FAILED,
        duration_ms=write.duration_ms,
        rows_written=write.rows_written,
        statement=write.statement[:30],
        category=info.category[:20],
        sqlstate=info.sqlstate,
        constraint_name=info.constraint[:200],
        trigger_name=write.trigger[:200],
        table_name=info.table[:200],
        message=info.message[:2000],
        explanation=info.explanation[:2000],
        case=write.case[:200],
        source=source,
    )


def alert_message(result: CanaryResult) -> str:
    """ "profile writes fail: 23514 on profiles_fc_coverage_bucket_check" and the cause."""
    what = _WHAT_FAILS.get(result.statement, "the write path fails")
    text = f"{what}: {result.cause}"
    if result.explanation:
        text += f". {result.explanation}"
    if result.case:
        text += f" (engine row: {result.case})"
    return text


def _alert_update(result: CanaryResult, now: datetime) -> None:
    """Open or refresh the write_path alert on a failure, resolve it on ok; notify changes."""
    from remediation.services.health import alert_notify

    if result.outcome not in (CanaryResult.Outcome.OK, CanaryResult.Outcome.FAILED):
        return
    event = ""
    with transaction.atomic():
        alert = Alert.objects.select_for_update().filter(rule=RULE, state=Alert.State.OPEN).first()
        if result.outcome == CanaryResult.Outcome.FAILED:
            message = alert_message(result)
            if alert is None:
                alert = Alert.objects.create(
                    rule=RULE,
                    severity=SEVERITY,
                    message=message,
                    first_seen=now,
                    last_seen=now,
                )
                event = "firing"
            else:
                alert.last_seen, alert.message = now, message
                alert.save(update_fields=["last_seen", "message"])
        elif alert is not None:
            alert.state, alert.resolved_at, alert.last_seen = Alert.State.RESOLVED, now, now
            alert.save(update_fields=["state", "resolved_at", "last_seen"])
            event = "resolved"
    if event and alert is not None:
        alert_notify(alert, event)
