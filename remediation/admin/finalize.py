"""Admin views for finalizing sessions: the button on a session, the action on a selection."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from remediation.admin.permissions import FINALIZE, USE_EDGE, has_perm, log_change
from remediation.models import AssessmentSession, FinalizeAttempt
from remediation.selectors import stored_diagnoses
from remediation.services import InvalidSessionId, normalize_session_id, session_finalize
from remediation.services.edge import completed_at_words

MAX_ACTION_SESSIONS = 25  # more than this is a backfill
BACKENDS = [
    ("local", "Local (Python engine, writes as service_role)"),
    ("edge", "Edge function (finalizeAssessment)"),
]


def can_finalize(request: HttpRequest) -> bool:
    return has_perm(request, FINALIZE)


def can_use_edge(request: HttpRequest) -> bool:
    """The edge backend is offered (and accepted) only to the Engineer role."""
    return has_perm(request, USE_EDGE)


def backends_for(request: HttpRequest) -> list[tuple[str, str]]:
    return BACKENDS if can_use_edge(request) else BACKENDS[:1]


def edge_second_confirmation(request: HttpRequest, session_ids: list[Any]) -> dict[str, Any]:
    """For an edge POST not confirmed a second time: the sessions whose fresh diagnosis
    predicts the write will fail (the page then asks again); {} when none does."""
    from remediation.services.edge import edge_failures_predicted

    if request.POST.get("edge_confirmed") == "yes":
        return {}
    predicted = edge_failures_predicted([str(i) for i in session_ids])
    if not predicted:
        return {}
    from remediation.services.edge import NOT_DIAGNOSED

    return {
        "edge_warning": predicted,
        "edge_checked": len(session_ids),
        "edge_undiagnosed": all(d.category == NOT_DIAGNOSED for d in predicted),
    }


def attempt_message(attempt: FinalizeAttempt) -> tuple[int, Any]:
    """The admin message for one attempt: level and text (with the results link)."""
    if attempt.succeeded:
        return messages.SUCCESS, format_html(
            '{}: {} ({} {}). Results: <a href="{}">{}</a>{}',
            attempt.session_id,
            attempt.get_outcome_display(),
            attempt.type_code,
            attempt.results_version,
            attempt.results_url,
            attempt.results_url,
            f" {completed_at_words(attempt.completed_at_restored)}"
            if attempt.completed_at_restored
            else "",
        )
    level = (
        messages.WARNING if attempt.outcome == FinalizeAttempt.Outcome.UNKNOWN else messages.ERROR
    )
    detail = f" [{attempt.sqlstate}]" if attempt.sqlstate else ""
    return level, format_html(
        "{}: {}{}: {}",
        attempt.session_id,
        attempt.get_outcome_display(),
        detail,
        attempt.explanation,
    )


def _run(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    sessions: list[AssessmentSession],
    backend: str,
    rescore: bool,
) -> None:
    for session in sessions:
        attempt = session_finalize(
            session_id=str(session.pk),
            backend=backend,
            actor=request.user,
            rescore=rescore,
            source="admin",
        )
        level, text = attempt_message(attempt)
        model_admin.message_user(request, text, level)
        log_change(
            request,
            session,
            f"Finalize ({backend}{', re-score' if rescore else ''}): {attempt.outcome}"
            + (f" {attempt.reason}" if attempt.reason else "")
            + (f" [{attempt.sqlstate}]" if attempt.sqlstate else ""),
        )


def _form_choice(request: HttpRequest) -> tuple[str, bool]:
    backend = request.POST.get("backend", "local")
    if backend not in dict(BACKENDS):
        raise PermissionDenied("unknown backend")
    if backend not in dict(backends_for(request)):
        raise PermissionDenied("the edge backend needs the Engineer role")
    return backend, request.POST.get("rescore") == "on"


def finalize_view(
    model_admin: admin.ModelAdmin, request: HttpRequest, object_id: str
) -> HttpResponse:
    """GET: confirmation with the stored diagnosis; POST: finalize and go back to the session."""
    if not can_finalize(request):
        raise PermissionDenied
    try:
        session = get_object_or_404(AssessmentSession, pk=normalize_session_id(object_id))
    except InvalidSessionId as exc:
        raise Http404(str(exc)) from exc
    change_url = reverse("admin:remediation_assessmentsession_change", args=[session.pk])
    warning: dict[str, Any] = {}
    if request.method == "POST":
        backend, rescore = _form_choice(request)
        if backend == "edge":
            warning = edge_second_confirmation(request, [session.pk])
        if not warning:
            _run(model_admin, request, [session], backend, rescore)
            return HttpResponseRedirect(change_url)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Finalize session",
        "opts": model_admin.model._meta,
        "sessions": [session],
        "diagnoses": stored_diagnoses([session.pk]),
        "backends": backends_for(request),
        "cancel_url": change_url,
        "single": True,
        **_asked_again(request, warning),
    }
    return TemplateResponse(request, "admin/remediation/finalize_confirm.html", context)


def _asked_again(request: HttpRequest, warning: dict[str, Any]) -> dict[str, Any]:
    """The page's second-confirmation mode: the warning, and the choices made so far."""
    if not warning:
        return {}
    return {**warning, "rescore_asked": request.POST.get("rescore") == "on"}


def finalize_action(
    model_admin: admin.ModelAdmin, request: HttpRequest, queryset: Any
) -> HttpResponse | None:
    """Admin action: a confirmation page like delete_selected, then finalize each session."""
    if not can_finalize(request):
        raise PermissionDenied
    sessions = list(queryset[: MAX_ACTION_SESSIONS + 1])
    if len(sessions) > MAX_ACTION_SESSIONS:
        model_admin.message_user(
            request,
            f"Select at most {MAX_ACTION_SESSIONS} sessions to finalize here; use a backfill for more.",
            messages.ERROR,
        )
        return None
    warning: dict[str, Any] = {}
    if request.POST.get("confirm") == "yes":
        backend, rescore = _form_choice(request)
        if backend == "edge":
            warning = edge_second_confirmation(request, [s.pk for s in sessions])
        if not warning:
            _run(model_admin, request, sessions, backend, rescore)
            return None
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Finalize sessions",
        "opts": model_admin.model._meta,
        "sessions": sessions,
        "diagnoses": stored_diagnoses([s.pk for s in sessions]),
        "backends": backends_for(request),
        **_asked_again(request, warning),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "action": "finalize_selected",
        "single": False,
    }
    return TemplateResponse(request, "admin/remediation/finalize_confirm.html", context)
