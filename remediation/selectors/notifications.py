"""Results notifications, read: who can be sent their results (and why not), the message as it
would go out, a run's recipients, the notification rows, and the figures for health.

Reads only: the notify job (remediation/jobs/notify.py) and the confirmation page share
these, so the preview says exactly what the run will do.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import make_msgid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.validators import validate_email
from django.db import connections
from django.db.models import Count, Q
from django.template.loader import render_to_string
from django.utils import timezone

from remediation.models import BackfillRun, ResultsNotification, SuppressedAddress
from remediation.pipeline.outcomes import results_url
from remediation.pipeline.sql import uuid_array

Reason = ResultsNotification.Reason
NState = ResultsNotification.State


@dataclass
class Target:
    """One session as a results message needs it (from the pipeline database, live)."""

    session_id: str
    exists: bool = False
    email: str = ""
    share_token: str = ""
    expires_at: datetime | None = None
    has_profile: bool = False
    type_code: str = ""

    @property
    def results_url(self) -> str:
        """Built as the pipeline builds it, with the session's own token."""
        return results_url(self.session_id, self.share_token) if self.share_token else ""


def targets(session_ids: list[str]) -> dict[str, Target]:
    """The sessions' email, share token (and its expiry where the column exists), profile."""
    from remediation.pipeline.schema import shapes

    has_expiry = shapes()["assessment_sessions"].has("share_token_expires_at")
    expiry = "s.share_token_expires_at" if has_expiry else "NULL::timestamptz"
    found = {sid: Target(sid) for sid in session_ids}
    if not session_ids:
        return found
    with connections["pipeline"].cursor() as cur:
        cur.execute(
            f"SELECT s.id::text, s.email, s.share_token, {expiry}, p.session_id IS NOT NULL,"
            " coalesce(p.type_code, '') FROM assessment_sessions s"
            " LEFT JOIN LATERAL (SELECT p.session_id, p.type_code FROM profiles p"
            "   WHERE p.session_id = s.id LIMIT 1) p ON true"
            " WHERE s.id = ANY(%s::uuid[])",
            [uuid_array(session_ids)],
        )
        for sid, email, token, expires, has_profile, type_code in cur.fetchall():
            found[sid] = Target(
                sid, True, (email or "").strip(), token or "", expires, has_profile, type_code
            )
    return found


def suppressed(addresses: list[str]) -> set[str]:
    """The lower-cased addresses among `addresses` that are on the suppression list."""
    lowered = {a.strip().lower() for a in addresses if a}
    return set(
        SuppressedAddress.objects.filter(address__in=lowered).values_list("address", flat=True)
    )


def maintenance_on() -> bool:
    from remediation.selectors.config import system_status

    return system_status().get("status") != "ok"


def skip_reason(target: Target, *, suppressed: set[str], maintenance: bool, now: datetime) -> str:
    """Why this person is not sent their results now ("" = they are)."""
    if not target.exists:
        return Reason.NO_SESSION
    if not target.email:
        return Reason.NO_EMAIL
    try:
        validate_email(target.email)
    except ValidationError:
        return Reason.INVALID_ADDRESS
    if target.email.lower() in suppressed:
        return Reason.SUPPRESSED
    if not target.has_profile or not target.share_token:
        return Reason.NO_PROFILE
    if target.expires_at is not None and target.expires_at <= now:
        return Reason.TOKEN_EXPIRED
    if maintenance:
        return Reason.MAINTENANCE
    return ""


def message_for(target: Target, *, message_id: str | None = None) -> EmailMultiAlternatives:
    """The results message for one person (subject, plain text, HTML, List-Unsubscribe)."""
    context = {
        "results_url": target.results_url,
        "type_code": target.type_code,
        "unsubscribe_mailto": settings.NOTIFY_UNSUBSCRIBE_MAILTO,
    }
    subject = " ".join(render_to_string("emails/results_subject.txt", context).split())
    unsubscribe = [f"<mailto:{settings.NOTIFY_UNSUBSCRIBE_MAILTO}?subject=unsubscribe>"]
    headers = {"Message-ID": message_id or new_message_id()}
    if settings.NOTIFY_UNSUBSCRIBE_URL:
        unsubscribe.append(f"<{settings.NOTIFY_UNSUBSCRIBE_URL}>")
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    headers["List-Unsubscribe"] = ", ".join(unsubscribe)
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("emails/results.txt", context),
        from_email=settings.NOTIFY_FROM_EMAIL,
        to=[target.email],
        headers=headers,
    )
    message.attach_alternative(render_to_string("emails/results.html", context), "text/html")
    return message


def new_message_id() -> str:
    domain = settings.NOTIFY_FROM_EMAIL.rpartition("@")[2] or "localhost"
    return make_msgid("prism-results", domain=domain)


# --- Rows ------------------------------------------------------------------------------------
def latest_notifications(
    session_ids: list[str], kind: str = ResultsNotification.Kind.RESULTS
) -> dict[str, ResultsNotification]:
    """Each session's latest notification of `kind` (its highest generation)."""
    rows = (
        ResultsNotification.objects.filter(session_id__in=session_ids, kind=kind)
        .order_by("session_id", "-generation")
        .distinct("session_id")
    )
    return {str(n.session_id): n for n in rows}


# A session whose latest message is in one of these states is not sent another by an
# ordinary send: only an explicit resend does that.
NOT_AGAIN: dict[str, str] = {
    NState.SENT: "already_sent",
    NState.SENDING: "sending",
    NState.UNKNOWN: "unknown",
}


def created_sessions(run: BackfillRun) -> list[str]:
    """The sessions whose profile this (finalize) run created, in the run's order."""
    return [
        str(s)
        for s in run.items.filter(outcome="created")
        .order_by("ordinal")
        .values_list("session_id", flat=True)
    ]


@dataclass
class Preview:
    """What a send would do, read now: the count, the skips and why, one real message."""

    total: int
    will_send: list[str]
    skipped: dict[str, int]  # reason -> sessions
    message: EmailMultiAlternatives | None
    message_target: Target | None


def preview(session_ids: list[str], *, resend: bool = False) -> Preview:
    """Evaluate every session as the notify job will (no claim, no write)."""
    now = timezone.now()
    found = targets(session_ids)
    blocked = suppressed([t.email for t in found.values()])
    maintenance = maintenance_on()
    latest = {} if resend else latest_notifications(session_ids)
    will, skipped = [], Counter[str]()
    for sid in session_ids:
        n = latest.get(sid)
        if n is not None and n.state in NOT_AGAIN:
            skipped[NOT_AGAIN[n.state]] += 1
            continue
        if n is not None and n.state == NState.FAILED and n.reason == Reason.PERMANENT:
            skipped["permanent"] += 1
            continue
        reason = skip_reason(found[sid], suppressed=blocked, maintenance=maintenance, now=now)
        if reason:
            skipped[reason] += 1
        else:
            will.append(sid)
    target = found[will[0]] if will else None
    message = message_for(target) if target else None
    return Preview(len(session_ids), will, dict(skipped), message, target)


SKIP_WORDS = {
    **{value: str(label) for value, label in Reason.choices if value},
    "already_sent": "already sent (an ordinary send never sends twice; resend explicitly)",
    "sending": "being sent by another run right now",
    "unknown": "unknown: a worker stopped mid-send (check, then resend explicitly)",
    "permanent": "a permanent SMTP failure earlier (resend explicitly once fixed)",
    "would_send": "would be sent (dry run)",
}


# --- Health ------------------------------------------------------------------------------------
def figures(start: datetime, end: datetime) -> dict[str, Any]:
    """Messages settled in [start, end): sent, failed, skipped, unknown, and the failure rate
    (failed ÷ sent + failed)."""
    agg = ResultsNotification.objects.filter(settled_at__gte=start, settled_at__lt=end).aggregate(
        sent=Count("id", filter=Q(state=NState.SENT)),
        failed=Count("id", filter=Q(state=NState.FAILED)),
        skipped=Count("id", filter=Q(state=NState.SKIPPED)),
        unknown=Count("id", filter=Q(state=NState.UNKNOWN)),
    )
    tried = agg["sent"] + agg["failed"]
    return {
        "notify_sent": agg["sent"],
        "notify_failed": agg["failed"],
        "notify_skipped": agg["skipped"],
        "notify_unknown": agg["unknown"],
        "notify_failure_rate": agg["failed"] / tried if tried else None,
    }


def alert_figures(now: datetime) -> dict[str, Any]:
    """The figures over the alert window (NOTIFY_ALERT_WINDOW_MINUTES) ending now."""
    return figures(now - timedelta(minutes=settings.NOTIFY_ALERT_WINDOW_MINUTES), now)


def address_for(user: Any, address: str) -> str:
    """The address as `user` may see it: whole for those who may view sessions, else hidden."""
    if not address:
        return ""
    if user is not None and user.has_perm("remediation.view_assessmentsession"):
        return address
    return "(hidden)"


def sink_messages(folder: Path, limit: int = 200) -> list[dict[str, Any]]:
    """The messages the demo's local SMTP sink kept in `folder` (<n>.eml), newest first."""
    import email
    import email.policy

    if not folder.is_dir():
        return []
    files = sorted(folder.glob("*.eml"), key=lambda f: f.name, reverse=True)[:limit]
    out = []
    for f in files:
        try:
            msg = email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
            body = msg.get_body(preferencelist=("plain",))
            text = body.get_content() if body is not None else ""
        except Exception:  # a file that is not a message is shown as such, never a 500
            out.append({"file": f.name, "subject": "(unreadable)", "to": "", "text": ""})
            continue
        link = re.search(r"https?://\S+/results/\S+", text)
        out.append(
            {
                "file": f.name,
                "date": str(msg.get("Date", "")),
                "to": str(msg.get("To", "")),
                "subject": str(msg.get("Subject", "")),
                "message_id": str(msg.get("Message-ID", "")),
                "link": link.group(0) if link else "",
                "text": text,
            }
        )
    return out
