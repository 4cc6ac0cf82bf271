"""Admin for runs of every job kind: confirmation pages, the run page (live progress), controls,
CSV export. Starting a backfill and rolling one back are runs too."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.models import ADDITION
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from remediation import jobs
from remediation.admin.base import ReadOnlyAdmin, csv_response
from remediation.admin.permissions import (
    ROLLBACK_BACKFILL,
    RUN_BACKFILL,
    RUN_LARGE_BACKFILL,
    has_perm,
    log_change,
)
from remediation.models import BackfillRun
from remediation.services import runs as run_services

SAMPLE_SIZE = 10


def can_run(request: HttpRequest) -> bool:
    return has_perm(request, RUN_BACKFILL)


class BackfillParamsForm(forms.Form):
    backend = forms.ChoiceField(
        choices=[("local", "local"), ("edge", "edge function")], initial="local"
    )
    batch_size = forms.IntegerField(min_value=1, max_value=5000, initial=200)
    throttle_per_minute = forms.IntegerField(
        min_value=1,
        required=False,
        label="Throttle (sessions per minute)",
        help_text="Empty: as fast as possible",
    )
    dry_run = forms.BooleanField(
        required=False, help_text="Score and try every write, then roll it all back"
    )
    rescore = forms.BooleanField(
        required=False, help_text="Re-score sessions that already have a profile"
    )


class NewBackfillForm(BackfillParamsForm):
    """Start a backfill from a completion-date window, pasted ids or an uploaded CSV of ids."""

    completed_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    completed_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    ids = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 4}), label="Session ids"
    )
    csv_file = forms.FileField(required=False, label="CSV of session ids")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        given = [
            bool(data.get("ids")),
            bool(data.get("csv_file")),
            bool(data.get("completed_from") or data.get("completed_to")),
        ]
        if sum(given) != 1:
            raise forms.ValidationError(
                "Choose exactly one selection: a date window, session ids, or a CSV file."
            )
        try:
            if data.get("ids"):
                data["selection"], data["session_ids"] = "ids", jobs.parse_id_list(data["ids"])
            elif data.get("csv_file"):
                raw = data["csv_file"].read(5_000_000)
                try:
                    text = raw.decode("utf-8-sig")
                except UnicodeDecodeError:
                    raise forms.ValidationError("The CSV file is not UTF-8 text.") from None
                data["selection"], data["session_ids"] = "csv", jobs.parse_id_list(text)
            else:
                data["selection"], data["session_ids"] = "window", None
        except jobs.RunError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return data


def _params_from(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "backend": data["backend"],
        "batch_size": data["batch_size"],
        "throttle_per_minute": data.get("throttle_per_minute"),
        "dry_run": bool(data.get("dry_run")),
        "rescore": bool(data.get("rescore")),
    }


def _start(request: HttpRequest, **kwargs: Any) -> HttpResponse | None:
    from django.conf import settings

    # Support staff start backfills up to SUPPORT_MAX_BACKFILL sessions; engineers more.
    limit = None if request.user.has_perm(RUN_LARGE_BACKFILL) else settings.SUPPORT_MAX_BACKFILL
    try:
        run = jobs.backfill_start(actor=request.user, limit=limit, **kwargs)
    except jobs.RunError as exc:
        messages.error(request, f"Backfill not started: {exc}")
        return None
    log_change(
        request,
        run,
        f"Started backfill #{run.pk}: {run.estimated_total} sessions, {run.backend}"
        + (" (dry run)" if run.dry_run else ""),
        ADDITION,
    )
    messages.success(request, f"Backfill #{run.pk} enqueued: {run.estimated_total} sessions.")
    return HttpResponseRedirect(reverse("admin:remediation_backfillrun_change", args=[run.pk]))


def confirm_page(
    model_admin: admin.ModelAdmin[Any],
    request: HttpRequest,
    *,
    sessions: QuerySet[Any] | list[Any],
    total: int,
    hidden: list[tuple[str, str]],
    title: str,
    form: BackfillParamsForm,
    action_url: str,
    selection_text: str,
) -> TemplateResponse:
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "opts": model_admin.model._meta,
        "total": total,
        "sample": list(sessions[:SAMPLE_SIZE]),
        "hidden": hidden,
        "form": form,
        "action_url": action_url,
        "selection_text": selection_text,
    }
    return TemplateResponse(request, "admin/remediation/backfill_confirm.html", context)


def backfill_selected_action(
    model_admin: admin.ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Any]
) -> Any:
    """Admin action on the orphan list: confirm, then start a run over the selected sessions."""
    if not can_run(request):
        raise PermissionDenied
    ids = [str(pk) for pk in queryset.values_list("pk", flat=True)]
    form = BackfillParamsForm(request.POST if request.POST.get("confirm") == "yes" else None)
    if request.POST.get("confirm") == "yes" and form.is_valid():
        return _start(request, selection="ids", ids=ids, **_params_from(form.cleaned_data))
    from django.contrib.admin import helpers

    hidden = [(helpers.ACTION_CHECKBOX_NAME, sid) for sid in ids]
    hidden += [("action", "backfill_selected"), ("confirm", "yes")]
    if request.POST.get("select_across"):
        hidden.append(("select_across", request.POST["select_across"]))
    return confirm_page(
        model_admin,
        request,
        sessions=queryset.order_by("completed_at"),
        total=len(ids),
        hidden=hidden,
        title="Backfill selected sessions",
        form=form,
        action_url="",
        selection_text=f"{len(ids)} selected sessions",
    )


def backfill_filter_view(model_admin: admin.ModelAdmin[Any], request: HttpRequest) -> HttpResponse:
    """ "Backfill all matching this filter": the orphan list's filters become the selection."""
    if not can_run(request):
        raise PermissionDenied
    source = request.POST if request.method == "POST" else request.GET
    params = {
        "completed_from": source.get("completed_at__from", ""),
        "completed_to": source.get("completed_at__to", ""),
        "fc": source.get("fc", ""),
    }
    try:
        qs = jobs.selection_queryset("filter", params)
    except jobs.RunError as exc:
        messages.error(request, str(exc))
        return HttpResponseRedirect(reverse("admin:remediation_orphanedsession_changelist"))
    form = BackfillParamsForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        response = _start(
            request, selection="filter", params=params, **_params_from(form.cleaned_data)
        )
        if response is not None:
            return response
    described = (
        ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in params.items() if v) or "no filter"
    )
    return confirm_page(
        model_admin,
        request,
        sessions=qs,
        total=qs.count(),
        hidden=[
            (k, v)
            for k, v in (
                ("completed_at__from", params["completed_from"]),
                ("completed_at__to", params["completed_to"]),
                ("fc", params["fc"]),
            )
            if v
        ],
        title="Backfill all orphans matching this filter",
        form=form,
        action_url=request.path,
        selection_text=f"every orphaned session matching: {described}",
    )


# --- The runs -------------------------------------------------------------------------------
def run_figures(run: BackfillRun) -> dict[str, Any]:
    """Percent, rate and ETA for the run page."""
    total = max(run.estimated_total, 1)
    percent = min(100.0, 100.0 * run.processed / total)
    elapsed = (
        ((run.finished_at or timezone.now()) - run.started_at).total_seconds()
        if run.started_at
        else 0
    )
    rate = run.processed / elapsed if elapsed > 0 else 0.0
    remaining = max(0, run.estimated_total - run.processed)
    eta = remaining / rate if rate > 0 and run.is_active else None
    return {"percent": percent, "rate_per_min": rate * 60, "eta_seconds": eta, "elapsed": elapsed}


@admin.register(BackfillRun)
class BackfillRunAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "kind",
        "state",
        "selection",
        "backend",
        "dry_run",
        "estimated_total",
        "processed",
        "created",
        "existing",
        "failed",
        "started_by_name",
        "created_at",
        "rolled_back_at",
    )
    list_filter = ("kind", "state", "backend", "dry_run")
    search_fields = ("=id", "started_by_name")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_run(request)

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path(
                "<int:run_id>/control/<str:action>/",
                wrap(self.control_view),
                name="remediation_backfillrun_control",
            ),
            path(
                "<int:run_id>/items.csv",
                wrap(self.items_csv_view),
                name="remediation_backfillrun_items_csv",
            ),
            *super().get_urls(),
        ]

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        if not can_run(request):
            raise PermissionDenied
        form = NewBackfillForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            response = _start(
                request,
                selection=data["selection"],
                ids=data["session_ids"],
                params={
                    "completed_from": str(data.get("completed_from") or ""),
                    "completed_to": str(data.get("completed_to") or ""),
                },
                **_params_from(data),
            )
            if response is not None:
                return response
        context = {
            **self.admin_site.each_context(request),
            "title": "New backfill",
            "opts": self.model._meta,
            "form": form,
        }
        return TemplateResponse(request, "admin/remediation/backfill_new.html", context)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        if not str(object_id).isdigit():
            raise Http404("no such backfill run")
        run = get_object_or_404(BackfillRun, pk=int(object_id))
        failing = run.items.filter(outcome="failed").order_by("ordinal")[:100]
        context = {
            **self.admin_site.each_context(request),
            "title": str(run).rsplit(" (", 1)[0],
            "follow_ups": list(run.follow_up_runs.order_by("-created_at")),
            "opts": self.model._meta,
            "run": run,
            "figures": run_figures(run),
            "failing": failing,
            "can_run": can_run(request),
            "can_rollback": has_perm(request, ROLLBACK_BACKFILL) and run.kind == "finalize",
            "controls": _controls(run),
            "refresh": run.is_active,
            "conflicts": (run.rollback_report or {}).get("conflicts", []),
        }
        return TemplateResponse(request, "admin/remediation/backfill_run.html", context)

    def control_view(self, request: HttpRequest, run_id: int, action: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponse(status=405)
        needed = ROLLBACK_BACKFILL if action == "rollback" else RUN_BACKFILL
        if not has_perm(request, needed):
            raise PermissionDenied
        run = get_object_or_404(BackfillRun, pk=run_id)
        handlers = {
            "pause": run_services.run_pause,
            "resume": run_services.run_resume,
            "cancel": run_services.run_cancel,
            "retry": run_services.run_retry_failed,
        }
        target = run.pk
        try:
            if action == "rollback":
                rollback = jobs.run_rollback(run.pk, actor=request.user)
                messages.success(
                    request,
                    f"Rollback #{rollback.pk} started: {rollback.estimated_total} sessions to restore"
                    f" from run #{run.pk}'s pre-images; its progress is below.",
                )
                target = rollback.pk
            elif action in handlers:
                handlers[action](run.pk, actor=request.user)
                messages.success(request, f"{run}: {action} requested.")
            else:
                raise PermissionDenied
        except jobs.RunError as exc:
            messages.error(request, str(exc))
        else:
            log_change(request, run, f"Run #{run.pk}: {action}")
        return HttpResponseRedirect(reverse("admin:remediation_backfillrun_change", args=[target]))

    def items_csv_view(self, request: HttpRequest, run_id: int) -> Any:
        if not self.has_view_permission(request):
            raise PermissionDenied
        run = get_object_or_404(BackfillRun, pk=run_id)

        columns = [
            "ordinal",
            "session_id",
            "outcome",
            "reason",
            "sqlstate",
            "constraint_name",
            "error",
            "profile_id",
            "type_code",
            "results_url",
            "processed_at",
            "rolled_back",
        ]
        rows = run.items.order_by("ordinal").values_list(*columns).iterator(chunk_size=2000)
        return csv_response(f"{run.kind}-{run.pk}-items.csv", columns, rows)


def _controls(run: BackfillRun) -> list[tuple[str, str]]:
    """The buttons that make sense in the run's state: (action, label)."""
    s = BackfillRun.State
    out = []
    if run.state in (s.ENQUEUED, s.RUNNING):
        out.append(("pause", "Pause"))
    if run.state in (s.PAUSED, s.INTERRUPTED):
        out.append(("resume", "Resume"))
    if run.state in (s.ENQUEUED, s.RUNNING, s.PAUSING, s.PAUSED, s.INTERRUPTED, s.ERRORED):
        out.append(("cancel", "Cancel"))
    if (
        run.kind != "rollback"
        and run.state in (s.SUCCEEDED, s.CANCELLED, s.ERRORED)
        and (run.failed or run.items.filter(outcome="busy").exists())
    ):
        out.append(("retry", "Retry failed"))
    return out


def orphan_filter_url(request: HttpRequest) -> str:
    """The "Backfill all matching this filter" link, carrying the list's current filters."""
    keep = {
        k: v
        for k, v in request.GET.items()
        if k in ("completed_at__from", "completed_at__to", "fc")
    }
    return reverse("admin:remediation_orphanedsession_backfill") + (
        "?" + urlencode(keep) if keep else ""
    )
