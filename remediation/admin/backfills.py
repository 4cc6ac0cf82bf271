"""Starting a backfill from the admin: the forms, the confirmation pages (selected sessions,
all orphans matching a filter, the Add form), the Support limit."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.models import ADDITION
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from remediation import jobs
from remediation.admin.permissions import (
    RUN_BACKFILL,
    RUN_LARGE_BACKFILL,
    has_perm,
    log_change,
)
from remediation.selectors.triggers import trigger_context
from remediation.services import runs as run_services

SAMPLE_SIZE = 10
MAX_CSV_BYTES = 5_000_000  # an uploaded CSV of ids: about 130,000 session ids


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

    def __init__(self, *args: Any, can_rescore: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.can_rescore = can_rescore
        if not can_rescore:
            self.fields["rescore"].disabled = True
            self.fields["rescore"].help_text = "Re-score runs need the Engineer role"

    def clean_rescore(self) -> bool:
        # A disabled field ignores the POST; a hand-crafted one is refused all the same.
        asked = bool(self.data.get(self.add_prefix("rescore"))) if self.is_bound else False
        if asked and not self.can_rescore:
            raise forms.ValidationError("Re-score runs need the Engineer role.")
        return bool(self.cleaned_data.get("rescore"))


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
                raw = data["csv_file"].read(MAX_CSV_BYTES + 1)
                if len(raw) > MAX_CSV_BYTES:
                    raise forms.ValidationError(
                        f"The CSV file is larger than {MAX_CSV_BYTES:,} bytes; split it into"
                        " several runs."
                    )
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


def params_from(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "backend": data["backend"],
        "batch_size": data["batch_size"],
        "throttle_per_minute": data.get("throttle_per_minute"),
        "dry_run": bool(data.get("dry_run")),
        "rescore": bool(data.get("rescore")),
    }


def can_rescore(request: HttpRequest) -> bool:
    return has_perm(request, RUN_LARGE_BACKFILL)


def overlap_html(overlap: run_services.Overlap) -> SafeString:
    """The runs holding some of the selection, as links."""
    return format_html_join(
        ", ",
        '{} held by <a href="{}" class="overlap-run">run #{}</a> ({})',
        (
            (
                n,
                reverse("admin:remediation_backfillrun_change", args=[r.pk]),
                r.pk,
                r.get_state_display(),
            )
            for r, n in overlap.runs()
        ),
    )


def start(request: HttpRequest, **kwargs: Any) -> HttpResponse | None:
    # Support staff: SUPPORT_MAX_BACKFILL sessions per person within
    # SUPPORT_BACKFILL_WINDOW_MINUTES, no re-score (backfill_start checks both for users
    # without run_large_backfill); engineers up to BACKFILL_MAX_SESSIONS per run.
    # Sessions other active runs hold: refused unless the confirmation chose to exclude them.
    overlap = "exclude" if request.POST.get("overlap") == "exclude" else "refuse"
    try:
        run = run_services.backfill_start_exclusive(actor=request.user, overlap=overlap, **kwargs)
    except run_services.RunOverlap as exc:
        messages.error(
            request,
            format_html(
                "Backfill not started: {} of the selected sessions are held by another active"
                " run ({}). Exclude them on the confirmation page, or wait until that run has"
                " stopped.",
                exc.overlap.total,
                overlap_html(exc.overlap),
            ),
        )
        return None
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
    excluded = sum((run.selection_params.get("excluded_held_by") or {}).values())
    note = (
        f" ({excluded} session{'' if excluded == 1 else 's'} held by other runs left out)"
        if excluded
        else ""
    )
    messages.success(request, f"Backfill #{run.pk} enqueued: {run.estimated_total} sessions{note}.")
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
    session_ids: list[str],
) -> TemplateResponse:
    overlap = run_services.run_overlap(session_ids)
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
        "overlap": overlap,
        "overlap_runs": overlap.runs(),
        "overlap_choice": request.POST.get("overlap", ""),
        "kept": total - overlap.total,
        **trigger_context(),
    }
    return TemplateResponse(request, "admin/remediation/backfill_confirm.html", context)


def backfill_selected_action(
    model_admin: admin.ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Any]
) -> Any:
    """Admin action on the orphan list: confirm, then start a run over the selected sessions."""
    if not can_run(request):
        raise PermissionDenied
    ids = [str(pk) for pk in queryset.values_list("pk", flat=True)]
    form = BackfillParamsForm(
        request.POST if request.POST.get("confirm") == "yes" else None,
        can_rescore=can_rescore(request),
    )
    if request.POST.get("confirm") == "yes" and form.is_valid():
        response = start(request, selection="ids", ids=ids, **params_from(form.cleaned_data))
        if response is not None:
            return response  # started; else the page again, with the refusal above it
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
        session_ids=ids,
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
    form = BackfillParamsForm(
        request.POST if request.method == "POST" else None, can_rescore=can_rescore(request)
    )
    if request.method == "POST" and form.is_valid():
        response = start(
            request, selection="filter", params=params, **params_from(form.cleaned_data)
        )
        if response is not None:
            return response
    described = (
        ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in params.items() if v) or "no filter"
    )
    # The ids only when some run could hold them (a filter may select 100,000s of orphans).
    from remediation.jobs.selection import writing_runs_active

    ids = [str(pk) for pk in qs.values_list("pk", flat=True)] if writing_runs_active() else []
    return confirm_page(
        model_admin,
        request,
        sessions=qs,
        total=len(ids) if ids else qs.count(),
        session_ids=ids,
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
