"""Pipeline health figures: one definition of conversion, the incident's figures.

Conversion = sessions completed in the window that now have a profile ÷ sessions completed
in the window (pipeline database). Finalize-side figures (FC fallback rate, FC scoring
success, write errors) come from the attempts the portal recorded (portal database).
Profile metrics are partitioned by results_version: v1.2.0 and v1.2.1 rows are on
different scales. Reads only: snapshots are stored by services.health.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.models import Count, Q
from django.utils import timezone

from remediation import display
from remediation.models import FinalizeAttempt, MetricSnapshot
from remediation.pipeline.context import FC_VERSION
from remediation.selectors.canary import fresh_orphan_count, fresh_orphan_sample
from remediation.selectors.config import configured_results_version
from remediation.selectors.notifications import alert_figures as notification_alert_figures
from remediation.selectors.notifications import figures as notification_figures
from remediation.selectors.sessions import HAS_PROFILE_SQL

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
        f"SELECT count(*), count(*) FILTER (WHERE {HAS_PROFILE_SQL})"
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
        f" count(*) FILTER (WHERE {HAS_PROFILE_SQL})"
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


STEPS = {"day": timedelta(days=1), "hour": timedelta(hours=1)}


def conversion_then(unit: str, start: datetime) -> dict[datetime, dict[str, Any]]:
    """Conversion per day (or hour) of completion as it was first measured after that day
    ended, read from the stored snapshots (their own daily/hourly series): {bucket: the
    snapshot's entry for it (completed, converted, orphans, rate) plus `measured_at`}, for
    the buckets from `start` on.

    A snapshot stores the conversion of each day as it stood then; a later backfill raises
    the conversion now, never the one a snapshot recorded, so an outage stays visible. The
    snapshot used for a bucket is the first one taken after the bucket ended (for the
    current bucket, the newest); a bucket with no snapshot after it, or none recording it
    (no completion then), is left out. Buckets are UTC, as conversion_series() cuts them.
    """
    from datetime import UTC

    from django.db.models.functions import Trunc

    if unit not in STEPS:
        raise ValueError("unit is day or hour")
    series = "daily" if unit == "day" else "hourly"
    stored = MetricSnapshot.objects.filter(window="all", taken_at__gte=start)
    # The first snapshot of each bucket: the first one taken after the bucket before it ended.
    firsts = list(
        stored.annotate(cut=Trunc("taken_at", unit, tzinfo=UTC))
        .values_list("cut", "taken_at", f"figures__{series}")
        .order_by("cut", "taken_at")
        .distinct("cut")
    )
    snapshots = [(taken_at, entries) for _, taken_at, entries in firsts]
    newest = stored.values_list("taken_at", f"figures__{series}").first()
    if newest is not None:
        snapshots.append(newest)
    then: dict[datetime, dict[str, Any]] = {}
    for i, (taken_at, entries) in enumerate(snapshots):
        last = i == len(snapshots) - 1
        for entry in entries or []:
            bucket = datetime.fromisoformat(entry["bucket"])
            ended = taken_at >= bucket + STEPS[unit]
            if bucket not in then and bucket >= start - STEPS[unit] and (ended or last):
                then[bucket] = {**entry, "bucket": bucket, "measured_at": taken_at}
    return then


def profiles_per_version() -> dict[str, int]:
    return {
        str(v): int(n)
        for v, n in _pipeline(
            "SELECT coalesce(results_version, '(none)'), count(*) FROM profiles GROUP BY 1 ORDER BY 1"
        )
    }


def version_drift(start: datetime, end: datetime) -> int:
    """Profiles written in the window with a results_version other than the configured one."""
    return int(
        _pipeline(
            "SELECT count(*) FROM profiles WHERE coalesce(updated_at, created_at) >= %s"
            " AND coalesce(updated_at, created_at) < %s AND results_version IS DISTINCT FROM %s",
            [start, end, configured_results_version()],
        )[0][0]
    )


def legacy_fc_scores() -> int:
    """fc_scores rows with a kind other than 'functions' or a version other than 'v1.2'."""
    return int(
        _pipeline(
            "SELECT count(*) FROM fc_scores WHERE fc_kind <> 'functions' OR version <> %s",
            [FC_VERSION],
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
    # Only refused profile writes are profile write errors (not a session update that names
    # a missing column, not a lock or statement timeout: 55P03, 57014).
    errors = list(
        attempts.filter(outcome="failed", failed_statement__in=["", "profile write"])
        .exclude(sqlstate="")
        .exclude(sqlstate__in=["55P03", "57014"])
        .values("sqlstate", "constraint_name", "reason")
        .annotate(n=Count("id"))
        .order_by("-n")
    )
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
        # Results notifications settled in the window (selectors/notifications.py).
        **notification_figures(start, now),
    }


def shared_figures() -> dict[str, Any]:
    """The figures that do not depend on the window."""
    return {
        "profiles_per_version": profiles_per_version(),
        "configured_version": configured_results_version(),
        "legacy_fc_scores": legacy_fc_scores(),
    }


def compute(window: str = "24h", *, now: datetime | None = None) -> dict[str, Any]:
    """Every dashboard figure for a window ending now, computed live."""
    return {**window_figures(window, now or timezone.now()), **shared_figures()}


def current_snapshot(max_age_seconds: int | None = None) -> MetricSnapshot:
    """The newest stored snapshot younger than max_age, else the figures computed now in an
    unsaved snapshot (a page view never writes; the schedule stores them)."""
    stored = fresh_snapshot(max_age_seconds)
    if stored is not None:
        return stored
    now = timezone.now()
    return MetricSnapshot(taken_at=now, window="all", figures=as_json(all_figures(now)))


def as_json(figures: dict[str, Any]) -> dict[str, Any]:
    """Figures as a snapshot stores them (dates as ISO text)."""
    return json.loads(json.dumps(figures, default=str))


def alert_span_conversion(now: datetime) -> tuple[int, int]:
    """Conversion over the alert window (ALERT_WINDOW_HOURS) ending now."""
    return conversion(now - timedelta(hours=settings.ALERT_WINDOW_HOURS), now)


def all_figures(now: datetime) -> dict[str, Any]:
    """Every figure for every window plus the charts' series (what a snapshot stores)."""
    completed, converted = alert_span_conversion(now)
    return {
        "windows": {w: window_figures(w, now) for w in WINDOWS},
        "shared": shared_figures(),
        "daily": conversion_series(now - timedelta(days=30), now, "day"),
        "hourly": conversion_series(now - timedelta(hours=48), now, "hour"),
        "alert_conversion": converted / completed if completed else None,
    }


def fresh_snapshot(max_age_seconds: int | None = None) -> MetricSnapshot | None:
    """The newest snapshot younger than max_age (default DASHBOARD_MAX_AGE), or None."""
    max_age = settings.DASHBOARD_MAX_AGE if max_age_seconds is None else max_age_seconds
    return MetricSnapshot.objects.filter(
        window="all", taken_at__gte=timezone.now() - timedelta(seconds=max_age)
    ).first()


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
    # Long on purpose: the incident's alert rules as one table, thresholds side by side.
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
        f"{display.sqlstate(e['sqlstate'])} {e['constraint_name'] or display.words(e['reason'])}"
        f" ×{e['n']}"
        for e in errors_now["write_errors"]
    )
    fb = figures["fallback_rate"]
    fresh = fresh_orphan_count(now)
    mail = notification_alert_figures(now)
    mail_rate, mail_tried = mail["notify_failure_rate"], mail["notify_sent"] + mail["notify_failed"]
    return [
        RuleResult(
            "conversion_page",
            "page",
            enough and rate is not None and rate < CONVERSION_PAGE,
            rate,
            f"Conversion {pct} over {settings.ALERT_WINDOW_HOURS} h ({converted}/{completed}) is below 75 %.",
        ),
        RuleResult(
            "conversion_low",
            "medium",
            enough and rate is not None and rate < CONVERSION_ALERT and sustained,
            rate,
            f"Conversion {pct} has been below 85 % for an hour.",
        ),
        RuleResult(
            "version_override",
            "critical",
            drift > 0,
            drift,
            f"{display.count(drift, 'profile')} written with a results_version other than"
            f" {configured_results_version()}.",
        ),
        RuleResult(
            "legacy_fc",
            "high",
            legacy > 0,
            legacy,
            f"{display.count(legacy, 'fc_scores row')} with fc_kind ≠ 'functions' or version ≠ 'v1.2'.",
        ),
        RuleResult(
            "fc_fallback",
            "investigate",
            fb is not None and fb > FALLBACK_INVESTIGATE,
            fb,
            f"FC fallback rate {fb:.0%} of finalizes is above 10 %." if fb is not None else "",
        ),
        RuleResult(
            "write_errors",
            "high",
            errors_now["write_error_total"] > 0,
            errors_now["write_error_total"],
            f"Profile write errors: {errors}." if errors else "",
        ),
        RuleResult("fresh_orphans", "high", fresh > 0, fresh, fresh_orphans_message(fresh, now)),
        # Results notifications: too many of the window's messages failed (SMTP refusals,
        # an unreachable server, retries used up).
        RuleResult(
            "notify_failures",
            "high",
            mail_tried >= settings.NOTIFY_ALERT_MIN_MESSAGES
            and mail_rate is not None
            and mail_rate > settings.NOTIFY_ALERT_FAILURE_RATE,
            mail_rate,
            f"{mail['notify_failed']} of {display.count(mail_tried, 'results message')} failed in"
            " the last"
            f" {settings.NOTIFY_ALERT_WINDOW_MINUTES} min (alert above"
            f" {settings.NOTIFY_ALERT_FAILURE_RATE:.0%})."
            if mail_tried
            else "",
        ),
    ]


def fresh_orphans_message(count: int, now: datetime) -> str:
    """How many fresh orphans, and a sample with their diagnosis."""
    if not count:
        return ""
    sample = "; ".join(f"{o.session_id} ({o.diagnosis})" for o in fresh_orphan_sample(now, 3))
    has = "has" if count == 1 else "have"
    return (
        f"{display.count(count, 'session')} completed more than {settings.ORPHAN_ALERT_MINUTES}"
        f" min ago (within the last {settings.ORPHAN_ALERT_HOURS} h) {has} no profile."
        f" Newest: {sample}."
    )


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
