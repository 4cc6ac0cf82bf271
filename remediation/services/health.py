"""Health writes: store a snapshot, open/refresh/resolve alerts, notify their changes."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from remediation.integrations import alerts as delivery
from remediation.models import Alert, MetricSnapshot
from remediation.selectors import health as figures

logger = logging.getLogger("remediation.health")


def snapshot_take(now: datetime | None = None) -> MetricSnapshot:
    """Every figure for every window plus the charts' series, stored (the scheduled check
    takes one every few minutes; the dashboard and /metrics read the newest)."""
    now = now or timezone.now()
    return MetricSnapshot.objects.create(
        taken_at=now, window="all", figures=figures.as_json(figures.all_figures(now))
    )


def health_check_run(now: datetime | None = None) -> dict[str, Any]:
    """The scheduled check: store a snapshot, open/refresh/resolve alerts, notify changes."""
    now = now or timezone.now()
    snapshot_take(now)
    _diagnose_fresh_orphans(now)
    opened, resolved = [], []
    for result in figures.evaluate(now):
        with transaction.atomic():
            alert = (
                Alert.objects.select_for_update()
                .filter(rule=result.rule, state=Alert.State.OPEN)
                .first()
            )
            value = None if result.value is None else float(result.value)
            if result.firing and alert is None:
                alert = Alert.objects.create(
                    rule=result.rule,
                    severity=result.severity,
                    message=result.message,
                    value=value,
                    first_seen=now,
                    last_seen=now,
                )
                opened.append(alert)
            elif result.firing and alert is not None:
                alert.last_seen, alert.value, alert.message = now, value, result.message
                alert.save(update_fields=["last_seen", "value", "message"])
            elif not result.firing and alert is not None:
                alert.state, alert.resolved_at = Alert.State.RESOLVED, now
                alert.save(update_fields=["state", "resolved_at"])
                resolved.append(alert)
    for alert in opened:
        alert_notify(alert, "firing")
    for alert in resolved:
        alert_notify(alert, "resolved")
    MetricSnapshot.objects.filter(
        taken_at__lt=now - timedelta(days=settings.SNAPSHOT_RETENTION_DAYS)
    ).delete()
    return {"opened": [a.rule for a in opened], "resolved": [a.rule for a in resolved]}


def _diagnose_fresh_orphans(now: datetime, size: int = 3) -> None:
    """The fresh-orphan alert shows its newest sessions with a diagnosis: the ones not
    diagnosed since they became fresh orphans are diagnosed now (a rolled-back write each)."""
    from remediation.selectors.canary import fresh_orphan_sample, undiagnosed_since
    from remediation.services.sessions import session_diagnose

    try:
        sample = [o.session_id for o in fresh_orphan_sample(now, size)]
        since = now - timedelta(minutes=settings.ORPHAN_ALERT_MINUTES)
        for sid in undiagnosed_since(sample, since):
            session_diagnose(session_id=sid)
    except Exception:  # the alert still opens; its sample says "not diagnosed yet"
        logger.exception("diagnosing the fresh orphans failed")


def alert_notify(alert: Alert, event: str) -> None:
    """Webhook (with retries) and email; the tries and the last error are recorded."""
    text = f"[{alert.severity.upper()}] PRISM {alert.rule} {event}: {alert.message}"
    errors = []
    if settings.ALERT_WEBHOOK_URL:
        payload = {
            "text": text,
            "rule": alert.rule,
            "severity": alert.severity,
            "event": event,
            "value": alert.value,
            "first_seen": alert.first_seen.isoformat(),
        }
        delivered, tries, error = delivery.post_webhook(payload)
        alert.notify_attempts += tries
        if delivered:
            alert.notified_at = timezone.now()
        else:
            errors.append(error)
    if settings.ALERT_EMAILS:
        error = delivery.send_email(text, text, settings.ALERT_EMAILS)
        if error:
            errors.append(error)
        else:
            alert.notified_at = alert.notified_at or timezone.now()
    alert.last_notify_error = "; ".join(errors)[:2000]
    alert.save(update_fields=["notify_attempts", "notified_at", "last_notify_error"])
    logger.info("alert %s %s (%s)", alert.rule, event, alert.severity)
