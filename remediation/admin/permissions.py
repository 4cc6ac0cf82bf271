"""One permission helper and one LogEntry helper for every admin module."""

from __future__ import annotations

from typing import Any

from django.contrib.admin.models import CHANGE, LogEntry
from django.http import HttpRequest

# The portal's own permissions, by what they let a person do.
FINALIZE = "remediation.finalize_session"
RUN_BACKFILL = "remediation.run_backfill"
RUN_LARGE_BACKFILL = "remediation.run_large_backfill"
USE_EDGE = "remediation.use_edge_backend"  # the Engineer role: the edge backend
ROLLBACK_BACKFILL = "remediation.rollback_backfill"
RUN_RUNBOOK = "remediation.run_runbook"
MANAGE_FC = "remediation.manage_fc"
SEND_RESULTS = "remediation.send_results"


def has_perm(request: HttpRequest, permission: str) -> bool:
    """An active staff member holding `permission` (superusers hold every one)."""
    user = request.user
    return bool(user.is_active and user.is_staff and user.has_perm(permission))


def log_change(request: HttpRequest, obj: Any, message: str, flag: int = CHANGE) -> None:
    """An entry in Django's admin log (the object's history) for what the user did."""
    LogEntry.objects.log_actions(
        user_id=request.user.pk or 0,
        queryset=[obj],
        action_flag=flag,
        change_message=message[:200],
        single_object=True,
    )
