"""The incident timeline: every recorded event of an incident in time order, and its figures.

Built only from what the portal already keeps: canary results (failures and recoveries),
alerts (opened, resolved), health snapshots (conversion, when it moved), the audit trail
(fixes applied and rolled back, gates changed, auto-heal switched or tripped, results sent
where that is recorded) and runs (started, finished). Reads only.

The incident's figures, around one `write_path` alert (the newest in the range unless one
is chosen):

- time to detect: from the last ok canary pass before the alert (the write path was known
  to work then; the break came after it) to the alert opening: an upper bound;
- time to repair: from the alert opening to its resolution (the first ok pass after it);
- sessions affected: sessions completed from that last ok pass until the repair that had no
  profile written before the repair;
- time until every affected person had results: from the last ok pass until the last
  affected session got its profile (the results page works from then on); whether each
  person was told (results sent) is shown only where the portal recorded it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connections

from remediation import display
from remediation.models import Alert, AuditEvent, BackfillRun, CanaryResult, MetricSnapshot

WRITE_PATH_RULE = "write_path"
# Audit actions that record a results notification (none exist before "Close the loop").
NOTIFICATION_PREFIXES = ("results.", "notification")


@dataclass(frozen=True)
class Event:
    at: datetime
    kind: str  # canary, alert, conversion, fix, gate, run, auto-heal, notification
    title: str
    detail: str = ""


@dataclass
class Figures:
    alert: Alert | None = None
    known_good_at: datetime | None = None  # the last ok canary pass before the alert
    detected_at: datetime | None = None
    repaired_at: datetime | None = None
    affected: int | None = None
    affected_without_profile: int | None = None
    all_results_at: datetime | None = None
    notifications: int | None = None  # None: the portal records none
    unknown: list[str] = field(default_factory=list)

    @property
    def time_to_detect(self) -> timedelta | None:
        if self.known_good_at and self.detected_at:
            return self.detected_at - self.known_good_at
        return None

    @property
    def time_to_repair(self) -> timedelta | None:
        if self.detected_at and self.repaired_at:
            return self.repaired_at - self.detected_at
        return None

    @property
    def time_to_results(self) -> timedelta | None:
        start = self.known_good_at or self.detected_at
        if start and self.all_results_at:
            return self.all_results_at - start
        return None


def timeline(start: datetime, end: datetime) -> list[Event]:
    """Every event in [start, end), oldest first (ties keep the order of the sources)."""
    events = [
        *_canary_events(start, end),
        *_alert_events(start, end),
        *_conversion_events(start, end),
        *_audit_events(start, end),
        *_run_events(start, end),
    ]
    return sorted(events, key=lambda e: e.at)


def _canary_events(start: datetime, end: datetime) -> list[Event]:
    """Only the changes: the first failure (or a new cause) and the first recovery."""
    previous = (
        CanaryResult.objects.filter(at__lt=start, outcome__in=["ok", "failed"])
        .order_by("-at", "-pk")
        .first()
    )
    last = (previous.outcome, previous.cause) if previous else ("ok", "")
    out = []
    for r in CanaryResult.objects.filter(
        at__gte=start, at__lt=end, outcome__in=["ok", "failed"]
    ).order_by("at", "pk"):
        now = (r.outcome, r.cause)
        if now != last:
            if r.outcome == "failed":
                out.append(
                    Event(r.at, "canary", f"canary failure: {r.statement} {r.cause}", r.explanation)
                )
            else:
                out.append(
                    Event(r.at, "canary", "canary recovery: the write path accepts new sessions")
                )
        last = now
    return out


def _alert_events(start: datetime, end: datetime) -> list[Event]:
    out = []
    for a in Alert.objects.filter(first_seen__lt=end).exclude(resolved_at__lt=start):
        if a.first_seen >= start:
            out.append(
                Event(
                    a.first_seen,
                    "alert",
                    f"alert opened: {display.words(a.rule)} ({a.severity})",
                    a.message,
                )
            )
        if a.resolved_at and start <= a.resolved_at < end:
            out.append(Event(a.resolved_at, "alert", f"alert resolved: {display.words(a.rule)}"))
    return out


def _conversion_events(start: datetime, end: datetime) -> list[Event]:
    """Health snapshots where the alert window's conversion moved (a tenth of a percent)."""
    out = []
    shown: str | None = None
    for s in (
        MetricSnapshot.objects.filter(taken_at__gte=start, taken_at__lt=end)
        .order_by("taken_at")
        .only("taken_at", "figures")
    ):
        rate = s.figures.get("alert_conversion")
        text = "n/a" if rate is None else f"{rate:.1%}"
        if text != shown:
            out.append(Event(s.taken_at, "conversion", f"conversion {text}", "health snapshot"))
            shown = text
    return out


def _audit_events(start: datetime, end: datetime) -> list[Event]:
    out = []
    for e in AuditEvent.objects.filter(at__gte=start, at__lt=end).order_by("at", "pk"):
        detail = e.detail or {}
        if e.action == "runbook.change":
            kind = "fix" if detail.get("fix") else "gate"
            title = str(detail.get("change") or e.outcome)
            out.append(Event(e.at, kind, title, f"by {e.actor}"))
        elif e.action.startswith("autoheal."):
            what = {
                "on": "switched on",
                "off": "switched off",
                "tripped": "circuit breaker tripped",
            }
            verb = what.get(e.action.split(".", 1)[1], e.action)
            out.append(
                Event(
                    e.at,
                    "auto-heal",
                    f"auto-heal {verb}",
                    str(detail.get("reason") or f"by {e.actor}"),
                )
            )
        elif e.action.startswith(NOTIFICATION_PREFIXES):
            out.append(
                Event(
                    e.at, "notification", f"{e.action}: {e.session_count} sessions", f"by {e.actor}"
                )
            )
    return out


def _run_events(start: datetime, end: datetime) -> list[Event]:
    from remediation.jobs.engine import kind_of

    out = []
    runs = BackfillRun.objects.filter(created_at__lt=end).exclude(finished_at__lt=start)
    for r in runs:
        begun = r.started_at or r.created_at
        who = r.started_by_name or "system"
        if start <= begun < end:
            out.append(
                Event(begun, "run", f"{r} started", f"{r.estimated_total} sessions, by {who}")
            )
        if r.finished_at and start <= r.finished_at < end:
            out.append(
                Event(
                    r.finished_at,
                    "run",
                    f"{r.get_kind_display()} #{r.pk} {r.get_state_display()}",
                    kind_of(r).summary(r),
                )
            )
    return out


def incident_alert(start: datetime, end: datetime, alert_id: int | None = None) -> Alert | None:
    """The write_path alert the figures are about: the chosen one, else the newest opened in
    the range."""
    alerts = Alert.objects.filter(rule=WRITE_PATH_RULE)
    if alert_id is not None:
        return alerts.filter(pk=alert_id).first()
    return alerts.filter(first_seen__gte=start, first_seen__lt=end).order_by("-first_seen").first()


def figures(alert: Alert | None) -> Figures:
    """The incident's figures around one write_path alert (see the module docstring)."""
    f = Figures(alert=alert)
    if alert is None:
        f.unknown.append("no write-path alert in this range: nothing to measure")
        return f
    f.detected_at, f.repaired_at = alert.first_seen, alert.resolved_at
    good = (
        CanaryResult.objects.filter(outcome="ok", at__lt=alert.first_seen).order_by("-at").first()
    )
    f.known_good_at = good.at if good else None
    if good is None:
        f.unknown.append(
            "time to detect: no ok canary pass before the alert is kept (the break's start is unknown)"
        )
    if alert.resolved_at is None:
        f.unknown.append("time to repair: the alert is still open")
    start = f.known_good_at or alert.first_seen
    end = alert.resolved_at
    with connections["pipeline"].cursor() as cur:
        cur.execute(
            "SELECT count(*), count(*) FILTER (WHERE p.session_id IS NULL), max(p.created_at)"
            " FROM assessment_sessions s LEFT JOIN profiles p ON p.session_id = s.id"
            " WHERE s.status = 'completed' AND s.completed_at >= %s"
            " AND (%s::timestamptz IS NULL OR s.completed_at < %s)"
            " AND (p.session_id IS NULL OR %s::timestamptz IS NULL OR p.created_at >= %s)",
            [start, end, end, end, end],
        )
        total, missing, last_profile = cur.fetchone()
    f.affected, f.affected_without_profile = int(total), int(missing)
    if end is None:
        f.unknown.append("sessions affected: still counting (the write path is not repaired)")
    if total and not missing:
        f.all_results_at = last_profile
    elif missing:
        f.unknown.append(
            f"time until every affected person had results: {missing} affected sessions have no"
            " profile yet"
        )
    sent = AuditEvent.objects.filter(at__gte=start).filter(
        action__regex=r"^(results\.|notification)"
    )
    if sent.exists():
        f.notifications = sum(sent.values_list("session_count", flat=True))
    else:
        f.unknown.append(
            "whether each affected person was told: the portal holds no record of results sent"
        )
    return f


def as_markdown(
    events: list[Event], f: Figures, start: datetime, end: datetime, *, when: Any = None
) -> str:
    """The timeline and its figures as a Markdown incident record."""
    fmt = when or display.when
    lines = [
        "# Incident timeline",
        "",
        f"From {fmt(start)} to {fmt(end)}.",
        "",
        "## Figures",
        "",
        "| figure | value |",
        "|---|---|",
        f"| alert | {_md(f.alert.message) if f.alert else 'none'} |",
        f"| last ok canary pass before it | {fmt(f.known_good_at) if f.known_good_at else 'unknown'} |",
        f"| alert opened | {fmt(f.detected_at) if f.detected_at else '–'} |",
        f"| alert resolved | {fmt(f.repaired_at) if f.repaired_at else 'not yet'} |",
        f"| time to detect (at most) | {duration(f.time_to_detect)} |",
        f"| time to repair | {duration(f.time_to_repair)} |",
        f"| sessions affected | {'unknown' if f.affected is None else f.affected} |",
        "| of which still without a profile | "
        + ("unknown" if f.affected_without_profile is None else str(f.affected_without_profile))
        + " |",
        "| time until every affected person had results | "
        + ("no session affected" if f.affected == 0 else duration(f.time_to_results))
        + " |",
        "| results notifications recorded | "
        + ("none recorded" if f.notifications is None else str(f.notifications))
        + " |",
        "",
    ]
    if f.unknown:
        lines += ["Unknown:", "", *[f"- {_md(u)}" for u in f.unknown], ""]
    lines += ["## Events", "", "| time | kind | event | detail |", "|---|---|---|---|"]
    for e in events:
        lines.append(f"| {fmt(e.at)} | {e.kind} | {_md(e.title)} | {_md(e.detail)} |")
    return "\n".join(lines) + "\n"


def duration(value: timedelta | None) -> str:
    return "unknown" if value is None else display.seconds(value.total_seconds())


def _md(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")
