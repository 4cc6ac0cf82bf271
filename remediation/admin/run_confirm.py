"""The confirmation pages of a run's rollback, cancel and retry of failed sessions (Django's
delete_selected pattern):
a GET, or a POST without `confirm=yes`, shows what confirming does, read from the run's
items, and changes nothing; runs.py's control view does it on the confirmed POST."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse

from remediation import display
from remediation.admin.base import csv_response
from remediation.models import BackfillRun
from remediation.selectors.run_preview import (
    ROLLBACK_COLUMNS,
    cancel_preview,
    retry_preview,
    rollback_preview,
    rollback_sessions,
)

CONFIRMED = ("rollback", "cancel", "retry")


def needs_confirmation(request: HttpRequest, action: str) -> bool:
    return action in CONFIRMED and (
        request.method != "POST" or request.POST.get("confirm") != "yes"
    )


def confirm_page(model_admin: Any, request: HttpRequest, run: BackfillRun, action: str) -> Any:
    """What rolling back, cancelling or retrying `run` does; reads only."""
    if action == "rollback":
        preview = rollback_preview(run)
        title = f"Roll back run #{run.pk}?"
    elif action == "retry":
        preview = retry_preview(run)
        title = f"Retry the failed sessions of run #{run.pk}?"
    else:
        preview = cancel_preview(run)
        title = f"Cancel run #{run.pk}?"
    sessions = display.count(preview.get("count", 0), "session")
    label = {"rollback": f"Yes, roll back {sessions}", "retry": f"Yes, retry {sessions}"}
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "opts": model_admin.model._meta,
        "run": run,
        "action": action,
        "preview": preview,
        "confirm_label": label.get(action, "Yes, cancel the run"),
    }
    return TemplateResponse(request, "admin/remediation/run_confirm.html", context)


def rollback_csv_view(model_admin: Any, request: HttpRequest, run_id: int) -> HttpResponse:
    """Every session a rollback of the run restores (the confirmation page links here)."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    run = get_object_or_404(BackfillRun, pk=run_id)
    rows = rollback_sessions(run).iterator(chunk_size=2000)
    return csv_response(f"rollback-of-run-{run.pk}-sessions.csv", ROLLBACK_COLUMNS, rows)
