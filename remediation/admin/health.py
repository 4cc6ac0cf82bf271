"""Pipeline health in the admin: the dashboard (/admin/health/), alerts (acknowledge), snapshots."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.safestring import mark_safe

from remediation import charts, display
from remediation.admin.base import ReadOnlyAdmin
from remediation.admin.filters import CodeListFilter
from remediation.admin.permissions import has_perm
from remediation.models import Alert, MetricSnapshot
from remediation.selectors import health
from remediation.services.health import snapshot_take


def dashboard_context(window: str) -> dict[str, Any]:
    snap = health.current_snapshot()
    figures = {**snap.figures["windows"][window], **snap.figures["shared"]}
    days = [{**d, "bucket": datetime.fromisoformat(d["bucket"])} for d in snap.figures["daily"]]
    hours = [{**h, "bucket": datetime.fromisoformat(h["bucket"])} for h in snap.figures["hourly"]]
    # Conversion as the snapshots measured it then, beside conversion now: a backfill raises
    # the second, never the first, so a recovered outage stays in the history.
    days_then = health.conversion_then("day", snap.taken_at - timedelta(days=30))
    hours_then = health.conversion_then("hour", snap.taken_at - timedelta(hours=48))
    legend = ("conversion now", "gained since", "as measured then")
    no_sessions = "No session completed in the last {}: nothing to convert."
    day_chart = charts.bar_chart(
        [(d["bucket"].strftime("%m-%d"), d["rate"]) for d in days],
        title="Conversion per day of completion (30 days, UTC)",
        max_value=1.0,
        percent=True,
        thresholds=charts.CONVERSION_THRESHOLDS,
        compare=[days_then.get(d["bucket"], {}).get("rate") for d in days],
        legend=legend,
        empty="" if days else no_sessions.format("30 days"),
    )
    hour_chart = charts.bar_chart(
        [(h["bucket"].strftime("%d %Hh"), h["rate"]) for h in hours],
        title="Conversion per hour of completion (48 hours, UTC)",
        max_value=1.0,
        percent=True,
        thresholds=charts.CONVERSION_THRESHOLDS,
        compare=[hours_then.get(h["bucket"], {}).get("rate") for h in hours],
        legend=legend,
        empty="" if hours else no_sessions.format("48 hours"),
    )
    orphans = sum(d["orphans"] for d in days)
    orphan_chart = charts.bar_chart(
        [(d["bucket"].strftime("%m-%d"), float(d["orphans"])) for d in days],
        title="Orphans per day of completion (30 days, UTC)",
        color="#ba2121",
        empty=""
        if orphans
        else (
            "No orphans: every session completed in the last 30 days has a profile."
            if days
            else no_sessions.format("30 days")
        ),
    )
    fallback = figures["fallback_rate"]
    fb_chart = charts.bar_chart(
        [("fallback rate", fallback)],
        title=f"FC fallback rate ({window})",
        max_value=1.0,
        percent=True,
        thresholds=(charts.Threshold(0.10, "10 % investigate", "#c58a00"),),
        width=300,
        empty="" if fallback is not None else "No finalize with FC in the window.",
    )
    return {
        "snapshot": snap,
        "figures": figures,
        "window": window,
        "windows": list(health.WINDOWS),
        "charts": [mark_safe(c) for c in (day_chart, hour_chart, orphan_chart, fb_chart)],  # noqa: S308 (built by charts.py, escaped)
        "outages": outages(days, days_then),
        "open_alerts": Alert.objects.filter(state="open"),
        "thresholds": {
            "target": health.CONVERSION_TARGET,
            "alert": health.CONVERSION_ALERT,
            "page": health.CONVERSION_PAGE,
        },
    }


def outages(
    days: list[dict[str, Any]], then: dict[datetime, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Runs of adjacent days (of those with completions) whose conversion, as the snapshots
    measured it then, was below the alert threshold, with the figures then and now: the
    history a backfill does not erase. Newest first; days are UTC, not TIME_ZONE days."""
    groups: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for d in days:
        was = then.get(d["bucket"])
        if was is None or was["rate"] is None or was["rate"] >= health.CONVERSION_ALERT:
            current = None
            continue
        if current is None:
            current = {
                "first": d["bucket"].strftime("%Y-%m-%d"),
                "days": 0,
                "completed_then": 0,
                "converted_then": 0,
                "completed": 0,
                "converted": 0,
                "measured_from": was["measured_at"],
            }
            groups.append(current)
        current["last"] = d["bucket"].strftime("%Y-%m-%d")
        current["days"] += 1
        current["completed_then"] += was["completed"]
        current["converted_then"] += was["converted"]
        current["completed"] += d["completed"]
        current["converted"] += d["converted"]
        current["measured_to"] = was["measured_at"]
    for g in groups:
        g["rate_then"] = g["converted_then"] / g["completed_then"] if g["completed_then"] else None
        g["rate"] = g["converted"] / g["completed"] if g["completed"] else None
    return groups[::-1]


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = (
        "first_seen",
        "rule_words",
        "severity",
        "state",
        "message",
        "last_seen",
        "resolved_at",
        "acknowledged_by",
        "notify_attempts",
        "last_notify_error",
    )
    list_filter = ("state", "severity", ("rule", CodeListFilter))
    actions = ("acknowledge",)

    @admin.display(description="rule", ordering="rule")
    def rule_words(self, obj: Alert) -> str:
        return display.words(obj.rule)

    def has_acknowledge_permission(self, request: HttpRequest) -> bool:
        return has_perm(request, "remediation.change_alert")

    @admin.action(permissions=["acknowledge"], description="Acknowledge selected alerts")
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        n = queryset.filter(acknowledged_at__isnull=True).update(
            acknowledged_by=request.user.get_username(), acknowledged_at=timezone.now()
        )
        self.message_user(request, f"{display.count(n, 'alert')} acknowledged.", messages.SUCCESS)


@admin.register(MetricSnapshot)
class MetricSnapshotAdmin(ReadOnlyAdmin):
    list_display = (
        "taken_at",
        "window",
        "conversion",
        "completed",
        "fallback_rate",
        "write_errors",
    )
    date_hierarchy = "taken_at"

    @staticmethod
    def _day(obj: MetricSnapshot) -> dict[str, Any]:
        return obj.figures.get("windows", {}).get("24h", {})

    @admin.display(description="conversion (24 h)")
    def conversion(self, obj: MetricSnapshot) -> str:
        v = self._day(obj).get("conversion")
        return "–" if v is None else f"{v:.1%}"

    @admin.display(description="completed")
    def completed(self, obj: MetricSnapshot) -> Any:
        return self._day(obj).get("completed")

    @admin.display(description="FC fallback")
    def fallback_rate(self, obj: MetricSnapshot) -> str:
        v = self._day(obj).get("fallback_rate")
        return "–" if v is None else f"{v:.0%}"

    @admin.display(description="write errors")
    def write_errors(self, obj: MetricSnapshot) -> Any:
        return self._day(obj).get("write_error_total")


def health_page(request: HttpRequest) -> HttpResponse:
    """GET: the dashboard from the newest snapshot (never stored by a view); POST: take one now."""
    if not has_perm(request, "remediation.view_alert"):
        raise PermissionDenied
    window = request.GET.get("window", "24h")
    if window not in health.WINDOWS:
        window = "24h"
    if request.method == "POST":
        snapshot_take()
        messages.success(request, "Health figures recomputed now.")
        return HttpResponseRedirect(f"{request.path}?window={window}")
    context = {
        **admin.site.each_context(request),
        "title": "Pipeline health",
        "opts": Alert._meta,
        **dashboard_context(window),
    }
    return TemplateResponse(request, "admin/remediation/health.html", context)
