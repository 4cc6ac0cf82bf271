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
from remediation.admin.finalize import can_use_edge, edge_second_confirmation
from remediation.admin.permissions import (
    RUN_BACKFILL,
    RUN_LARGE_BACKFILL,
    has_perm,
    log_change,
)
from remediation.jobs.selection import MAX_LISTED, SelectionError, reversed_range
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

    def __init__(
        self, *args: Any, can_rescore: bool = True, can_edge: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.can_rescore = can_rescore
        self.can_edge = can_edge
        if not can_rescore:
            self.fields["rescore"].disabled = True
            self.fields["rescore"].help_text = "Re-score runs need the Engineer role"
        if not can_edge:
            # Not offered; a hand-crafted "edge" still reaches clean_backend and is refused.
            self.fields["backend"].widget.choices = [("local", "local")]
            self.fields["backend"].help_text = "The edge backend needs the Engineer role"

    def clean_rescore(self) -> bool:
        # A disabled field ignores the POST; a hand-crafted one is refused all the same.
        asked = bool(self.data.get(self.add_prefix("rescore"))) if self.is_bound else False
        if asked and not self.can_rescore:
            raise forms.ValidationError("Re-score runs need the Engineer role.")
        return bool(self.cleaned_data.get("rescore"))

    def clean_backend(self) -> str:
        backend = str(self.cleaned_data.get("backend") or "local")
        if backend == "edge" and not self.can_edge:
            raise forms.ValidationError("The edge backend needs the Engineer role.")
        return backend


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
                ids = jobs.parse_id_list(data["ids"], check_known=True)
                data["selection"], data["session_ids"] = "ids", ids
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
                ids = jobs.parse_id_list(text, check_known=True)
                data["selection"], data["session_ids"] = "csv", ids
            else:
                first, last = data.get("completed_from"), data.get("completed_to")
                if first and last and first > last:
                    raise forms.ValidationError(reversed_range(first, last))
                data["selection"], data["session_ids"] = "window", None
        except SelectionError as exc:
            raise forms.ValidationError(id_errors(exc)) from exc
        return data


def id_errors(exc: SelectionError) -> list[str]:
    """A selection error for a form: with bad or unknown ids, a heading and one line each."""
    if not exc.problems:
        return [str(exc)]
    more = len(exc.problems) - MAX_LISTED
    return [
        f"{len(exc.problems)} of the ids cannot be used; nothing was started. Fix or remove them:",
        *exc.problems[:MAX_LISTED],
        *([f"… and {more} more"] if more > 0 else []),
    ]


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


def params_form(request: HttpRequest, data: Any = None, **kwargs: Any) -> BackfillParamsForm:
    """The run's parameters, with what this person may choose (re-score, the edge backend)."""
    return BackfillParamsForm(
        data, can_rescore=can_rescore(request), can_edge=can_use_edge(request), **kwargs
    )


def edge_check(
    request: HttpRequest, form: BackfillParamsForm, sample: list[Any], total: int
) -> Any:
    """An edge backfill's second confirmation: when the fresh local diagnosis of the sample
    predicts the write will fail, what the page says before asking again ({} otherwise)."""
    data = form.cleaned_data
    if data.get("backend") != "edge" or data.get("dry_run"):
        return {}
    warning = edge_second_confirmation(request, [s.pk for s in sample])
    return {**warning, "edge_checked_of": total} if warning else {}


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
    warning: dict[str, Any] | None = None,
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
        "edge_offered": form.can_edge,
        **(warning or {}),
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
    confirmed = request.POST.get("confirm") == "yes"
    form = params_form(request, request.POST if confirmed else None)
    sessions = queryset.order_by("completed_at")
    warning: dict[str, Any] = {}
    if confirmed and form.is_valid():
        warning = edge_check(request, form, list(sessions[:SAMPLE_SIZE]), len(ids))
        if not warning:
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
        sessions=sessions,
        total=len(ids),
        hidden=hidden,
        title="Backfill selected sessions",
        form=form,
        action_url="",
        selection_text=f"{len(ids)} selected sessions",
        session_ids=ids,
        warning=warning,
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
    form = params_form(request, request.POST if request.method == "POST" else None)
    warning: dict[str, Any] = {}
    total = qs.count()
    if request.method == "POST" and form.is_valid():
        warning = edge_check(request, form, list(qs[:SAMPLE_SIZE]), total)
        response = (
            None
            if warning
            else start(request, selection="filter", params=params, **params_from(form.cleaned_data))
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
        total=len(ids) if ids else total,
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
        warning=warning,
    )


# --- Backfill runs → Add: the selection, then the same confirmation page ----------------------
PENDING = "backfill_pending"  # the session key of selections waiting for their confirmation
PENDING_KEPT = 5


def add_view(model_admin: admin.ModelAdmin[Any], request: HttpRequest) -> HttpResponse:
    """The Add form: a window, pasted ids or a CSV, checked (every bad or unknown id listed);
    then the confirmation page of the orphan list's backfill (count, sample, parameters).
    The chosen ids wait in the person's session (a CSV cannot be posted again)."""
    if not can_run(request):
        raise PermissionDenied
    if request.method == "POST" and request.POST.get("confirm") == "yes":
        return _confirm_added(model_admin, request)
    form = NewBackfillForm(
        request.POST or None,
        request.FILES or None,
        can_rescore=can_rescore(request),
        can_edge=can_use_edge(request),
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        chosen = {
            "selection": data["selection"],
            "ids": data["session_ids"],
            "params": {
                "completed_from": str(data.get("completed_from") or ""),
                "completed_to": str(data.get("completed_to") or ""),
            },
            "rescore": bool(data.get("rescore")),
        }
        token = _remember(request, chosen)
        initial = {k: v for k, v in params_from(data).items() if v is not None}
        return _added_page(
            model_admin, request, chosen, token, params_form(request, initial=initial)
        )
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "New backfill",
        "opts": model_admin.model._meta,
        "form": form,
    }
    return TemplateResponse(request, "admin/remediation/backfill_new.html", context)


def _confirm_added(model_admin: admin.ModelAdmin[Any], request: HttpRequest) -> HttpResponse:
    token = request.POST.get("pending", "")
    chosen = request.session.get(PENDING, {}).get(token)
    if chosen is None:
        messages.error(
            request, "This confirmation has expired or was used already: choose the sessions again."
        )
        return HttpResponseRedirect(reverse("admin:remediation_backfillrun_add"))
    form = params_form(request, request.POST)
    warning: dict[str, Any] = {}
    if form.is_valid() and bool(form.cleaned_data.get("rescore")) != chosen["rescore"]:
        # Re-score changes which sessions a window selects: count and show them again.
        chosen = {**chosen, "rescore": bool(form.cleaned_data.get("rescore"))}
        pending = request.session.get(PENDING, {})
        request.session[PENDING] = {**pending, token: chosen}
        messages.warning(
            request,
            "Re-score changed, so the selection was counted again: check it and confirm.",
        )
        return _added_page(model_admin, request, chosen, token, form)
    if form.is_valid():
        sessions, total = _added_sessions(chosen)
        warning = edge_check(request, form, list(sessions[:SAMPLE_SIZE]), total)
        if not warning:
            response = start(
                request,
                selection=chosen["selection"],
                ids=chosen["ids"],
                params=chosen["params"],
                **params_from(form.cleaned_data),
            )
            if response is not None:
                pending = request.session.get(PENDING, {})
                pending.pop(token, None)
                request.session[PENDING] = pending
                return response
    return _added_page(model_admin, request, chosen, token, form, warning)


def _remember(request: HttpRequest, chosen: dict[str, Any]) -> str:
    import secrets

    token = secrets.token_urlsafe(16)
    kept = list(request.session.get(PENDING, {}).items())[-(PENDING_KEPT - 1) :]
    request.session[PENDING] = {**dict(kept), token: chosen}
    return token


def _added_sessions(chosen: dict[str, Any]) -> tuple[Any, int]:
    """The sessions of an Add selection (in order) and how many there are."""
    from remediation import selectors

    if chosen["ids"] is not None:
        ids = chosen["ids"]
        wanted = ids[:SAMPLE_SIZE]
        found = {str(s.pk): s for s in selectors.sessions_with_flags().filter(pk__in=wanted)}
        return [found[i] for i in wanted if i in found], len(ids)
    qs = jobs.selection_queryset("window", chosen["params"], chosen["rescore"])
    return qs, qs.count()


def _added_page(
    model_admin: admin.ModelAdmin[Any],
    request: HttpRequest,
    chosen: dict[str, Any],
    token: str,
    form: BackfillParamsForm,
    warning: dict[str, Any] | None = None,
) -> TemplateResponse:
    sessions, total = _added_sessions(chosen)
    if chosen["selection"] == "window":
        first, last = chosen["params"]["completed_from"], chosen["params"]["completed_to"]
        window = (
            f"from {first} to {last}"
            if first and last
            else (f"from {first} on" if first else f"up to {last}")
        )
        whom = "session" if chosen["rescore"] else "orphaned session"
        text = f"every {whom} completed {window}"
    else:
        source = "the uploaded CSV" if chosen["selection"] == "csv" else "the pasted list"
        text = f"{total} session id{'s' if total != 1 else ''} from {source}"
    from remediation.jobs.selection import writing_runs_active

    # The overlap with active runs: the ids, or the window's when some run could hold them.
    if chosen["ids"] is not None:
        session_ids = list(chosen["ids"])
    elif writing_runs_active():
        session_ids = [str(pk) for pk in sessions.values_list("pk", flat=True)]
    else:
        session_ids = []
    return confirm_page(
        model_admin,
        request,
        sessions=sessions,
        total=total,
        hidden=[("pending", token), ("confirm", "yes")],
        title="Start this backfill?",
        form=form,
        action_url=request.path,
        selection_text=text,
        session_ids=session_ids,
        warning=warning,
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
