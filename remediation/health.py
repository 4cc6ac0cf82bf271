"""Pipeline health: one definition of conversion, the incident's figures, alert rules.

Conversion = sessions completed in the window that now have a profile ÷ sessions completed
in the window (pipeline database). Finalize-side figures (FC fallback rate, FC scoring
success, write errors) come from the attempts the portal recorded (portal database).
Profile metrics are partitioned by results_version: v1.2.0 and v1.2.1 rows are on
different scales.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from django.conf import settings
from django.core.mail import send_mail
from django.db import connections, transaction
from django.db.models import Count, Q
from django.utils import timezone

from remediation.models import Alert, FinalizeAttempt, MetricSnapshot

logger = logging.getLogger("remediation.health")

WINDOWS = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
# Thresholds of the incident (spec: incident.md).
CONVERSION_TARGET = 0.90
CONVERSION_ALERT = 0.85
CONVERSION_PAGE = 0.75
FALLBACK_INVESTIGATE = 0.10


def _pipeline(sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with connections["pipeline"].cursor() as cur:
        cur.execute(sql, params or [])
        return list(cur.fetchall())


def conversion(start: datetime, end: datetime) -> tuple[int, int]:
    """(completed in [start, end), of which now have a profile)."""
    (row,) = _pipeline(
        "SELECT count(*), count(*) FILTER (WHERE EXISTS (SELECT 1 FROM profiles p WHERE p.session_id = s.id))"
        " FROM assessment_sessions s WHERE s.status = 'completed' AND s.completed_at >= %s AND s.completed_at < %s",
        [start, end],
    )
    return int(row[0]), int(row[1])


def conversion_series(start: datetime, end: datetime, unit: str = "day") -> list[dict[str, Any]]:
    """Completed, converted and orphans per day (or hour) of completion."""
    if unit not in ("day", "hour"):
        raise ValueError("unit is day or hour")
    rows = _pipeline(
        f"SELECT date_trunc('{unit}', s.completed_at) AS bucket, count(*),"
        " count(*) FILTER (WHERE EXISTS (SELECT 1 FROM profiles p WHERE p.session_id = s.id))"
        " FROM assessment_sessions s WHERE s.status = 'completed' AND s.completed_at >= %s AND s.completed_at < %s"
        " GROUP BY 1 ORDER BY 1",
        [start, end],
    )
    return [
        {
            "bucket": b,
            "completed": c,
            "converted": v,
            "orphans": c - v,
            "rate": (v / c) if c else None,
        }
        for b, c, v in rows
    ]


def profiles_per_version() -> dict[str, int]:
    return {
        str(v): int(n)
        for v, n in _pipeline(
            "SELECT coalesce(results_version, '(none)'), count(*) FROM profiles GROUP BY 1 ORDER BY 1"
        )
    }


def configured_version() -> str:
    rows = _pipeline("SELECT value #>> '{}' FROM scoring_config WHERE key = 'results_version'")
    return rows[0][0] if rows and rows[0][0] else "v1.2.1"


def version_drift(start: datetime, end: datetime) -> int:
    """Profiles written in the window with a results_version other than the configured one."""
    return int(_pipeline(
        "SELECT count(*) FROM profiles WHERE coalesce(updated_at, created_at) >= %s"
        " AND coalesce(updated_at, created_at) < %s AND results_version IS DISTINCT FROM %s",
        [start, end, configured_version()],
    )[0][0])  # fmt: skip


def legacy_fc_scores() -> int:
    """fc_scores rows with a kind other than 'functions' or a version other than 'v1.2'."""
    return int(
        _pipeline(
            "SELECT count(*) FROM fc_scores WHERE fc_kind <> 'functions' OR version <> 'v1.2'"
        )[0][0]
    )


def attempt_figures(start: datetime, end: datetime) -> dict[str, Any]:
    """Fallback rate, FC scoring success and write errors from the recorded attempts."""
    attempts = FinalizeAttempt.objects.filter(started_at__gte=start, started_at__lt=end)
    fallback = Q(events__contains=[{"name": "fc_fallback_legacy"}])
    loaded = Q(events__contains=[{"name": "fc_scores_loaded"}])
    fc_ok = Q(events__contains=[{"name": "fc_scoring_attempted", "success": True}])
    fc_bad = Q(events__contains=[{"name": "fc_scoring_attempted", "success": False}])
    agg = attempts.aggregate(
        total=Count("id"),
        fallback=Count("id", filter=fallback),
        with_fc=Count("id", filter=fallback | loaded),
        fc_ok=Count("id", filter=fc_ok),
        fc_bad=Count("id", filter=fc_bad),
    )
    errors = list(
        attempts.filter(outcome="failed").exclude(sqlstate="")
        .values("sqlstate", "constraint_name", "reason").annotate(n=Count("id")).order_by("-n")
    )  # fmt: skip
    fc_tries = agg["fc_ok"] + agg["fc_bad"]
    return {
        "attempts": agg["total"],
        "fallback": agg["fallback"],
        "fallback_rate": (agg["fallback"] / agg["with_fc"]) if agg["with_fc"] else None,
        "fc_success_rate": (agg["fc_ok"] / fc_tries) if fc_tries else None,
        "fc_attempts": fc_tries,
        "write_errors": errors,
        "write_error_total": sum(e["n"] for e in errors),
    }


def window_figures(window: str, now: datetime) -> dict[str, Any]:
    """The figures that depend on the window."""
    start = now - WINDOWS[window]
    completed, converted = conversion(start, now)
    return {
        "window": window,
        "start": start.isoformat(),
        "end": now.isoformat(),
        "completed": completed,
        "converted": converted,
        "conversion": (converted / completed) if completed else None,
        "orphans_in_window": completed - converted,
        "version_drift": version_drift(start, now),
        **attempt_figures(start, now),
    }


def shared_figures() -> dict[str, Any]:
    """The figures that do not depend on the window."""
    return {
        "profiles_per_version": profiles_per_version(),
        "configured_version": configured_version(),
        "legacy_fc_scores": legacy_fc_scores(),
    }


def compute(window: str = "24h", *, now: datetime | None = None) -> dict[str, Any]:
    """Every dashboard figure for a window ending now, computed live."""
    return {**window_figures(window, now or timezone.now()), **shared_figures()}


def take_snapshot(now: datetime | None = None) -> MetricSnapshot:
    """Every figure for every window plus the charts' series, stored (the scheduled check
    takes one every few minutes; the dashboard and /metrics read the newest)."""
    now = now or timezone.now()
    alert_span = timedelta(hours=settings.ALERT_WINDOW_HOURS)
    completed, converted = conversion(now - alert_span, now)
    figures = {
        "windows": {w: window_figures(w, now) for w in WINDOWS},
        "shared": shared_figures(),
        "daily": conversion_series(now - timedelta(days=30), now, "day"),
        "hourly": conversion_series(now - timedelta(hours=48), now, "hour"),
        "alert_conversion": converted / completed if completed else None,
    }
    return MetricSnapshot.objects.create(
        taken_at=now, window="all", figures=json.loads(json.dumps(figures, default=str))
    )


def latest_snapshot(max_age_seconds: int | None = None) -> MetricSnapshot:
    """The newest snapshot younger than max_age (default DASHBOARD_MAX_AGE), else a new one."""
    max_age = settings.DASHBOARD_MAX_AGE if max_age_seconds is None else max_age_seconds
    fresh = MetricSnapshot.objects.filter(
        window="all", taken_at__gte=timezone.now() - timedelta(seconds=max_age)
    ).first()
    return fresh or take_snapshot()


# --- Alerts ------------------------------------------------------------------------------
@dataclass
class RuleResult:
    rule: str
    severity: str
    firing: bool
    value: Any
    message: str


def evaluate(now: datetime | None = None) -> list[RuleResult]:
    """The incident's alert rules, on the alert window (ALERT_WINDOW_HOURS)."""
    now = now or timezone.now()
    window = timedelta(hours=settings.ALERT_WINDOW_HOURS)
    completed, converted = conversion(now - window, now)
    rate = converted / completed if completed else None
    enough = completed >= settings.ALERT_MIN_SESSIONS
    # "Below 85 % for an hour": every snapshot of the last hour, and one at least 55 minutes old.
    hour = MetricSnapshot.objects.filter(
        taken_at__gte=now - timedelta(minutes=65), taken_at__lte=now
    )
    rates = [s.figures.get("alert_conversion") for s in hour]
    sustained = hour.filter(taken_at__lte=now - timedelta(minutes=55)).exists() and all(
        r is not None and r < CONVERSION_ALERT for r in rates
    )
    figures = attempt_figures(now - window, now)
    # Write errors count over a shorter window, so the alert clears soon after the fix.
    error_window = timedelta(minutes=settings.ALERT_ERRORS_WINDOW_MINUTES)
    errors_now = attempt_figures(now - error_window, now)
    drift = version_drift(now - window, now)
    legacy = legacy_fc_scores()
    pct = f"{rate:.1%}" if rate is not None else "n/a"
    errors = ", ".join(
        f"{e['sqlstate']} {e['constraint_name'] or e['reason']} ×{e['n']}"
        for e in errors_now["write_errors"]
    )
    fb = figures["fallback_rate"]
    return [
        RuleResult("conversion_page", "page", enough and rate is not None and rate < CONVERSION_PAGE, rate,
                   f"Conversion {pct} over {settings.ALERT_WINDOW_HOURS} h ({converted}/{completed}) is below 75 %."),
        RuleResult("conversion_low", "medium", enough and rate is not None and rate < CONVERSION_ALERT and sustained,
                   rate, f"Conversion {pct} has been below 85 % for an hour."),
        RuleResult("version_override", "critical", drift > 0, drift,
                   f"{drift} profiles written with a results_version other than {configured_version()}."),
        RuleResult("legacy_fc", "high", legacy > 0, legacy,
                   f"{legacy} fc_scores rows with fc_kind ≠ 'functions' or version ≠ 'v1.2'."),
        RuleResult("fc_fallback", "investigate", fb is not None and fb > FALLBACK_INVESTIGATE, fb,
                   f"FC fallback rate {fb:.0%} of finalizes is above 10 %." if fb is not None else ""),
        RuleResult("write_errors", "high", errors_now["write_error_total"] > 0, errors_now["write_error_total"],
                   f"Profile write errors: {errors}." if errors else ""),
    ]  # fmt: skip


def snapshot_and_alert(now: datetime | None = None) -> dict[str, Any]:
    """The scheduled check: store a snapshot, open/refresh/resolve alerts, notify changes."""
    now = now or timezone.now()
    take_snapshot(now)
    opened, resolved = [], []
    for result in evaluate(now):
        with transaction.atomic():
            alert = (
                Alert.objects.select_for_update()
                .filter(rule=result.rule, state=Alert.State.OPEN)
                .first()
            )
            value = None if result.value is None else float(result.value)
            if result.firing and alert is None:
                alert = Alert.objects.create(
                    rule=result.rule, severity=result.severity, message=result.message, value=value,
                    first_seen=now, last_seen=now,
                )  # fmt: skip
                opened.append(alert)
            elif result.firing and alert is not None:
                alert.last_seen, alert.value, alert.message = now, value, result.message
                alert.save(update_fields=["last_seen", "value", "message"])
            elif not result.firing and alert is not None:
                alert.state, alert.resolved_at = Alert.State.RESOLVED, now
                alert.save(update_fields=["state", "resolved_at"])
                resolved.append(alert)
    for alert in opened:
        notify(alert, "firing")
    for alert in resolved:
        notify(alert, "resolved")
    MetricSnapshot.objects.filter(
        taken_at__lt=now - timedelta(days=settings.SNAPSHOT_RETENTION_DAYS)
    ).delete()
    return {"opened": [a.rule for a in opened], "resolved": [a.rule for a in resolved]}


def notify(alert: Alert, event: str) -> None:
    """Webhook (JSON POST, Slack-compatible `text`) with retries, and email; every try recorded."""
    text = f"[{alert.severity.upper()}] PRISM {alert.rule} {event}: {alert.message}"
    errors = []
    if settings.ALERT_WEBHOOK_URL:
        payload = {"text": text, "rule": alert.rule, "severity": alert.severity, "event": event,
                   "value": alert.value, "first_seen": alert.first_seen.isoformat()}  # fmt: skip
        for attempt in range(1, settings.ALERT_WEBHOOK_RETRIES + 2):
            alert.notify_attempts += 1
            try:
                resp = requests.post(
                    settings.ALERT_WEBHOOK_URL, json=payload, timeout=5, allow_redirects=False
                )
                if 200 <= resp.status_code < 300:
                    alert.notified_at = timezone.now()
                    alert.last_notify_error = ""
                    break
                errors.append(f"webhook try {attempt}: HTTP {resp.status_code}")
            except requests.RequestException as exc:
                errors.append(f"webhook try {attempt}: {type(exc).__name__}")
            time.sleep(settings.ALERT_WEBHOOK_BACKOFF * attempt)
        else:
            alert.last_notify_error = "; ".join(errors)[:2000]
    if settings.ALERT_EMAILS:
        try:
            send_mail(text[:150], text, None, settings.ALERT_EMAILS)
            alert.notified_at = alert.notified_at or timezone.now()
        except Exception as exc:  # mail transport errors are recorded, not raised
            alert.last_notify_error = (
                alert.last_notify_error + f"; email: {type(exc).__name__}"
            ).strip("; ")
    alert.save(update_fields=["notify_attempts", "notified_at", "last_notify_error"])
    logger.info("alert %s %s (%s)", alert.rule, event, alert.severity)


# --- Other tools ----------------------------------------------------------------------------
def prometheus_text(now: datetime | None = None) -> str:
    """The dashboard's figures in the Prometheus text format."""
    now = now or timezone.now()
    lines = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, Any]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            if value is not None:
                lines.append(f"{name}{labels} {float(value):g}")

    snap = latest_snapshot()
    per_window = {w: snap.figures["windows"][w] for w in ("1h", "24h", "7d")}
    metric(
        "prism_sessions_completed",
        "gauge",
        "Sessions completed in the window.",
        [(f'{{window="{w}"}}', f["completed"]) for w, f in per_window.items()],
    )
    metric(
        "prism_conversion_ratio",
        "gauge",
        "Completed sessions in the window that have a profile / completed.",
        [(f'{{window="{w}"}}', f["conversion"]) for w, f in per_window.items()],
    )
    metric(
        "prism_orphans",
        "gauge",
        "Completed sessions in the window without a profile.",
        [(f'{{window="{w}"}}', f["orphans_in_window"]) for w, f in per_window.items()],
    )
    day = {**per_window["24h"], **snap.figures["shared"]}
    metric(
        "prism_fc_fallback_ratio",
        "gauge",
        "Finalizes (24 h) that used the legacy FC fallback.",
        [("", day["fallback_rate"])],
    )
    metric(
        "prism_fc_scoring_success_ratio",
        "gauge",
        "FC scoring attempts (24 h) that succeeded.",
        [("", day["fc_success_rate"])],
    )
    metric(
        "prism_profile_write_errors",
        "gauge",
        "Profile write errors (24 h) by SQLSTATE and constraint.",
        [
            (f'{{sqlstate="{e["sqlstate"]}",constraint="{e["constraint_name"]}"}}', e["n"])
            for e in day["write_errors"]
        ],
    )
    metric(
        "prism_profiles",
        "gauge",
        "Profiles per results_version.",
        [(f'{{results_version="{v}"}}', n) for v, n in day["profiles_per_version"].items()],
    )
    metric(
        "prism_version_drift_profiles",
        "gauge",
        "Profiles written (24 h) with a results_version other than configured.",
        [("", day["version_drift"])],
    )
    metric(
        "prism_legacy_fc_scores",
        "gauge",
        "fc_scores rows with kind != functions or version != v1.2.",
        [("", day["legacy_fc_scores"])],
    )
    open_alerts = Alert.objects.filter(state="open").values("severity").annotate(n=Count("id"))
    metric(
        "prism_alerts_open",
        "gauge",
        "Open alerts by severity.",
        [(f'{{severity="{r["severity"]}"}}', r["n"]) for r in open_alerts],
    )
    return "\n".join(lines) + "\n"


def healthz() -> tuple[bool, dict[str, Any]]:
    """Portal database, pipeline database and job-cluster liveness."""
    from django_q.models import Schedule

    report: dict[str, Any] = {}
    for alias, name in (("default", "portal_db"), ("pipeline", "pipeline_db")):
        try:
            with connections[alias].cursor() as cur:
                cur.execute("SELECT 1")
            report[name] = "ok"
        except Exception as exc:  # any failure to reach it is the answer
            report[name] = f"error: {type(exc).__name__}"
    # The cluster's scheduler moves next_run forward every minute; overdue means no cluster.
    watchdog = Schedule.objects.filter(name="backfill-watchdog").first()
    if watchdog is None:
        report["cluster"] = "unknown: run manage.py setup_schedules"
    elif watchdog.next_run and watchdog.next_run < timezone.now() - timedelta(
        seconds=settings.CLUSTER_STALE_SECONDS
    ):
        report["cluster"] = f"stale: scheduler last due {watchdog.next_run.isoformat()}"
    else:
        report["cluster"] = "ok"
    return all(v == "ok" for v in report.values()), report
