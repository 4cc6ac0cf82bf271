"""Reads for the write-path canary, fresh orphans and auto-heal (no writes)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connections

from remediation import display
from remediation.models import AutoHeal, BackfillRun, CanaryResult, SessionDiagnosis
from remediation.selectors.sessions import ORPHAN_SQL

HEAL_ACTOR = "auto-heal"  # the actor of every heal run and of the breaker's records


@dataclass(frozen=True)
class FreshOrphan:
    session_id: str
    completed_at: datetime
    diagnosis: str  # "category: explanation", or that it is not diagnosed yet


def fresh_window(now: datetime) -> tuple[datetime, datetime]:
    """[start, end): completed within the last ORPHAN_ALERT_HOURS and at least
    ORPHAN_ALERT_MINUTES ago."""
    end = now - timedelta(minutes=settings.ORPHAN_ALERT_MINUTES)
    return now - timedelta(hours=settings.ORPHAN_ALERT_HOURS), end


def fresh_orphan_count(now: datetime) -> int:
    start, end = fresh_window(now)
    with connections["pipeline"].cursor() as cur:
        cur.execute(
            f"SELECT count(*) FROM assessment_sessions s WHERE {ORPHAN_SQL}"
            " AND s.completed_at >= %s AND s.completed_at < %s",
            [start, end],
        )
        return int(cur.fetchone()[0])


def fresh_orphan_ids(now: datetime, limit: int) -> list[str]:
    """The fresh orphans, oldest completion first, at most `limit`."""
    start, end = fresh_window(now)
    with connections["pipeline"].cursor() as cur:
        cur.execute(
            f"SELECT s.id::text FROM assessment_sessions s WHERE {ORPHAN_SQL}"
            " AND s.completed_at >= %s AND s.completed_at < %s ORDER BY s.completed_at, s.id"
            " LIMIT %s",
            [start, end, limit],
        )
        return [r[0] for r in cur.fetchall()]


def fresh_orphan_sample(now: datetime, size: int = 5) -> list[FreshOrphan]:
    """The newest fresh orphans with their stored diagnosis."""
    start, end = fresh_window(now)
    with connections["pipeline"].cursor() as cur:
        cur.execute(
            f"SELECT s.id::text, s.completed_at FROM assessment_sessions s WHERE {ORPHAN_SQL}"
            " AND s.completed_at >= %s AND s.completed_at < %s"
            " ORDER BY s.completed_at DESC, s.id LIMIT %s",
            [start, end, size],
        )
        rows = cur.fetchall()
    found = {
        str(d.session_id): d
        for d in SessionDiagnosis.objects.filter(session_id__in=[r[0] for r in rows])
    }
    out = []
    for sid, completed in rows:
        d = found.get(sid)
        text = f"{display.words(d.category)}: {d.explanation}" if d else "not diagnosed yet"
        out.append(FreshOrphan(sid, completed, text))
    return out


def undiagnosed_since(session_ids: list[str], since: datetime) -> list[str]:
    """Of `session_ids`, those without a diagnosis made at or after `since`."""
    fresh = {
        str(s)
        for s in SessionDiagnosis.objects.filter(
            session_id__in=session_ids, checked_at__gte=since
        ).values_list("session_id", flat=True)
    }
    return [s for s in session_ids if s not in fresh]


def autoheal_state() -> AutoHeal:
    """The switch (an unsaved "off" one before anyone touched it)."""
    return AutoHeal.objects.filter(pk=1).first() or AutoHeal(pk=1, enabled=False)


def autoheal_on(state: AutoHeal | None = None) -> bool:
    """Auto-heal acts only when the setting allows it and the admin switch is on."""
    return bool(settings.AUTO_HEAL_ENABLED and (state or autoheal_state()).enabled)


def heal_runs() -> list[BackfillRun]:
    return list(
        BackfillRun.objects.filter(
            kind=BackfillRun.Kind.FINALIZE, started_by_name=HEAL_ACTOR
        ).order_by("-created_at")
    )


def latest_canary() -> CanaryResult | None:
    return CanaryResult.objects.order_by("-at", "-pk").first()
