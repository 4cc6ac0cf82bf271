"""The incident timeline (/admin/incident/), its Markdown export, the canary's results and
the auto-heal switch. A page view only reads; the switch is a confirmed POST."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date

from remediation import display
from remediation.admin.base import ReadOnlyAdmin
from remediation.admin.permissions import has_perm
from remediation.models import Alert, CanaryResult
from remediation.selectors import canary as canary_reads
from remediation.selectors import timeline as tl
from remediation.services.autoheal import AutoHealRefused, autoheal_set

VIEW = "remediation.view_alert"
MANAGE_AUTO_HEAL = "remediation.manage_auto_heal"
DEFAULT_DAYS = 7
MAX_DAYS = 366


@admin.register(CanaryResult)
class CanaryResultAdmin(ReadOnlyAdmin):
    list_display = (
        "at",
        "outcome",
        "duration_ms",
        "statement",
        "sqlstate",
        "constraint_name",
        "trigger_name",
        "category",
        "rows_written",
        "source",
        "heal_run_id",
    )
    list_filter = ("outcome", "source", "sqlstate")
    date_hierarchy = "at"


def _range(request: HttpRequest) -> tuple[datetime, datetime, str, str]:
    """[start, end) from ?start=YYYY-MM-DD&end=YYYY-MM-DD (both days included); the last
    DEFAULT_DAYS days when absent or unreadable; at most MAX_DAYS long."""
    today = timezone.localdate()
    first = _day(request.GET.get("start", "")) or today - timedelta(days=DEFAULT_DAYS - 1)
    last = _day(request.GET.get("end", "")) or today
    if last < first:
        first, last = last, first
    if (last - first).days > MAX_DAYS:
        first = last - timedelta(days=MAX_DAYS)
    tz = timezone.get_current_timezone()
    start = datetime.combine(first, time.min, tzinfo=tz)
    end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=tz)
    return start, end, first.isoformat(), last.isoformat()


def _day(text: str) -> Any:
    try:
        return parse_date(text[:10]) if text and len(text) <= 10 else None
    except ValueError:
        return None


def _alert_id(request: HttpRequest) -> int | None:
    raw = request.GET.get("alert", "")
    return int(raw) if raw.isdigit() and len(raw) < 12 else None


def _incident(request: HttpRequest) -> dict[str, Any]:
    start, end, first, last = _range(request)
    alert = tl.incident_alert(start, end, _alert_id(request))
    return {
        "start": start,
        "end": end,
        "first_day": first,
        "last_day": last,
        "events": tl.timeline(start, end),
        "figures": tl.figures(alert),
        "alerts": list(
            Alert.objects.filter(rule=tl.WRITE_PATH_RULE, first_seen__gte=start, first_seen__lt=end)
        ),
    }


def timeline_page(request: HttpRequest) -> HttpResponse:
    if not has_perm(request, VIEW):
        raise PermissionDenied
    data = _incident(request)
    f = data["figures"]
    state = canary_reads.autoheal_state()
    now = timezone.now()
    context = {
        **admin.site.each_context(request),
        "title": "Incident timeline",
        "opts": Alert._meta,
        **data,
        "durations": {
            "detect": tl.duration(f.time_to_detect),
            "repair": tl.duration(f.time_to_repair),
            "results": tl.duration(f.time_to_results),
        },
        "query": request.GET.urlencode(),
        "latest_canary": canary_reads.latest_canary(),
        "canary_interval": settings.CANARY_INTERVAL_SECONDS,
        "autoheal": state,
        "autoheal_allowed": settings.AUTO_HEAL_ENABLED,
        "autoheal_on": canary_reads.autoheal_on(state),
        "can_switch": has_perm(request, MANAGE_AUTO_HEAL),
        "fresh_orphans": canary_reads.fresh_orphan_count(now),
        "orphan_minutes": settings.ORPHAN_ALERT_MINUTES,
        "heal_max": settings.AUTO_HEAL_MAX_SESSIONS,
        "heal_throttle": settings.AUTO_HEAL_THROTTLE_PER_MINUTE,
        "send_results": settings.AUTO_HEAL_SEND_RESULTS,
    }
    return TemplateResponse(request, "admin/remediation/timeline.html", context)


def timeline_export(request: HttpRequest) -> HttpResponse:
    if not has_perm(request, VIEW):
        raise PermissionDenied
    data = _incident(request)
    text = tl.as_markdown(
        data["events"],
        data["figures"],
        data["start"],
        data["end"],
        when=display.when,
    )
    response = HttpResponse(text, content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="incident-timeline.md"'
    return response


def autoheal_switch(request: HttpRequest) -> HttpResponse:
    """POST enabled=on|off with confirm=yes: switch auto-heal (Engineer, audited)."""
    if request.method != "POST":
        return HttpResponse(status=405)
    if not has_perm(request, MANAGE_AUTO_HEAL):
        raise PermissionDenied
    wanted = request.POST.get("enabled", "")
    if wanted not in ("on", "off"):
        messages.error(request, "Choose on or off.")
    elif request.POST.get("confirm") != "yes":
        messages.error(request, "Tick the confirmation box to switch auto-heal.")
    else:
        try:
            autoheal_set(enabled=wanted == "on", actor=request.user)
            messages.success(request, f"Auto-heal is {wanted}.")
        except AutoHealRefused as exc:
            messages.error(request, str(exc))
    return HttpResponseRedirect(reverse("admin:incident_timeline"))
