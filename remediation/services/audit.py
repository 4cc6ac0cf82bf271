"""The audit trail: one immutable record per action (who, when, what, on which sessions)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from remediation.models import AuditEvent

MAX_SESSIONS = 1000  # ids kept per record; session_count always has the full number


def actor_name(actor: Any) -> str:
    if actor is not None and getattr(actor, "is_authenticated", False):
        return str(actor.get_username())
    return str(actor or "system")[:150]


def audit_record(
    actor: Any,
    action: str,
    *,
    target: str = "",
    sessions: Iterable[Any] = (),
    outcome: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Record an action. Secrets never reach it: the detail is redacted like the logs."""
    from opsportal.security import redact

    ids = [str(s) for s in sessions]
    clean = json.loads(redact(json.dumps(detail or {}, default=str)))
    return AuditEvent.objects.create(
        actor=actor_name(actor),
        action=action[:60],
        target=str(target)[:200],
        sessions=ids[:MAX_SESSIONS],
        session_count=len(ids),
        outcome=str(outcome)[:60],
        detail=clean,
    )
