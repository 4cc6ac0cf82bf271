"""Results notifications in the admin: the send confirmation page (from a backfill run, a
session, or a resend of selected messages), the notification list, the suppression list, and
the demo's mail sink.

The confirmation page (GET) only reads: the count, who will be skipped and why, and one
real message rendered as it will go out; sending (or a dry run) is its POST.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from remediation.admin.base import ReadOnlyAdmin, search_feedback, tell_once
from remediation.admin.permissions import SEND_RESULTS, has_perm
from remediation.jobs import RunError
from remediation.models import BackfillRun, ResultsNotification, SuppressedAddress
from remediation.selectors import notifications as sel
from remediation.services import notifications as svc

PREVIEW_LIMIT = 100_000  # sessions one confirmation page evaluates


def can_send(request: HttpRequest) -> bool:
    return has_perm(request, SEND_RESULTS)


def _session_ids(request: HttpRequest) -> tuple[list[str], int | None, str, bool]:
    """The sessions a send page is about: (ids, source run, words, resend)."""
    data = request.POST if request.method == "POST" else request.GET
    resend = data.get("resend") == "1"
    if data.get("run"):
        raw = data["run"]
        if not raw.isdigit() or len(raw) > 12:
            raise Http404("no such run")
        run = BackfillRun.objects.filter(pk=int(raw), kind=BackfillRun.Kind.FINALIZE).first()
        if run is None:
            raise Http404("no such backfill run")
        ids = sel.created_sessions(run)
        return ids, run.pk, f"the people whose profiles backfill #{run.pk} created", resend
    raw_ids = data.getlist("session")
    if not raw_ids or len(raw_ids) > PREVIEW_LIMIT:
        raise Http404("no sessions given")
    try:
        ids = svc._clean_ids(raw_ids)
    except RunError as exc:
        raise Http404(str(exc)) from exc
    words = f"session {ids[0]}" if len(ids) == 1 else f"{len(ids)} selected sessions"
    return ids, None, words, resend


def send_page(request: HttpRequest) -> HttpResponse:
    """GET: what a send would do (count, skips and why, one real message); POST: start it."""
    if not can_send(request):
        raise PermissionDenied
    ids, source, words, resend = _session_ids(request)
    if request.method == "POST":
        dry_run = request.POST.get("mode") == "dry_run"
        try:
            run = svc.results_send_start(
                session_ids=ids,
                actor=request.user,
                source_run_id=source,
                dry_run=dry_run,
                resend=resend,
            )
        except RunError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request,
                f"{run}: {'dry run of ' if dry_run else ''}results for {len(ids)} "
                f"{'person' if len(ids) == 1 else 'people'} ({words}); progress below.",
            )
            return HttpResponseRedirect(
                reverse("admin:remediation_backfillrun_change", args=[run.pk])
            )
    p = sel.preview(ids, resend=resend)
    message = p.message
    html = ""
    if message is not None:
        html = next((str(c) for c, mime in message.alternatives if mime == "text/html"), "")
        body = re.search(r"<body[^>]*>(.*)</body>", html, re.S)  # the page shows the body only
        html = body.group(1) if body else html
    context = {
        **admin.site.each_context(request),
        "title": "Resend results" if resend else "Send results",
        "opts": ResultsNotification._meta,
        "words": words,
        "total": p.total,
        "will_send": len(p.will_send),
        "skipped": [(sel.SKIP_WORDS.get(r, r), r, n) for r, n in sorted(p.skipped.items())],
        "message": message,
        "to": sel.address_for(request.user, message.to[0]) if message else "",
        "html_preview": html,
        "headers": dict(message.extra_headers) if message else {},
        "resend": resend,
        "source": source,
        "ids": [] if source else ids,
        "per_minute": settings.NOTIFY_PER_MINUTE,
    }
    return TemplateResponse(request, "admin/remediation/notify_confirm.html", context)


def sink_page(request: HttpRequest) -> HttpResponse:
    """What the demo's local SMTP sink received (EMAIL_SINK_DIR), newest first."""
    if not has_perm(request, "remediation.view_resultsnotification"):
        raise PermissionDenied
    if not settings.EMAIL_SINK_DIR:
        raise Http404("no mail sink configured (EMAIL_SINK_DIR)")
    received = sel.sink_messages(Path(settings.EMAIL_SINK_DIR))
    for m in received:
        m["to"] = sel.address_for(request.user, m["to"])
    context = {
        **admin.site.each_context(request),
        "title": "Mail sink (what the local SMTP server received)",
        "opts": ResultsNotification._meta,
        "received": received,
        "folder": settings.EMAIL_SINK_DIR,
    }
    return TemplateResponse(request, "admin/remediation/mail_sink.html", context)


@admin.register(ResultsNotification)
class ResultsNotificationAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "session_link",
        "recipient_shown",
        "state",
        "reason",
        "generation",
        "attempts",
        "sent_at",
        "smtp_reply",
        "run_link",
        "requested_by_name",
    )
    list_filter = ("state", "reason", "kind")
    search_fields = ("=session_id", "=run__id")
    actions = ("resend_selected",)
    exclude = ("recipient", "results_url")
    readonly_fields = ("recipient_shown",)

    def get_search_results(self, request: HttpRequest, queryset: Any, search_term: str) -> Any:
        term = search_term.strip()
        try:
            import uuid

            return queryset.filter(session_id=uuid.UUID(term)), False
        except ValueError:
            pass
        if term.isdigit() and len(term) < 12:
            return queryset.filter(run_id=int(term)), False
        if not term:
            return queryset, False
        tell_once(request, search_feedback(self.model, self.search_fields, term))
        return queryset.none(), False

    def has_send_results_permission(self, request: HttpRequest) -> bool:
        return can_send(request)

    @admin.action(permissions=["send_results"], description="Resend selected messages…")
    def resend_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse:
        ids = [str(s) for s in queryset.values_list("session_id", flat=True).distinct()[:1000]]
        query = "&".join(f"session={s}" for s in ids)
        return HttpResponseRedirect(
            reverse("admin:remediation_resultsnotification_send") + f"?resend=1&{query}"
        )

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("send/", wrap(send_page), name="remediation_resultsnotification_send"),
            path("sink/", wrap(sink_page), name="remediation_resultsnotification_sink"),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        extra = {**(extra_context or {}), "sink": bool(settings.EMAIL_SINK_DIR)}
        return super().changelist_view(request, extra)

    @admin.display(description="recipient")
    def recipient_shown(self, obj: ResultsNotification) -> str:
        """Replaced per request by _recipient_for; without a request nobody sees it."""
        return sel.address_for(None, obj.recipient) or "–"

    def _recipient_for(self, request: HttpRequest) -> Any:
        """The address column as this user may see it (whole only with session access)."""
        user = request.user

        def recipient(obj: ResultsNotification) -> str:
            return sel.address_for(user, obj.recipient) or "–"

        recipient.short_description = "recipient"  # type: ignore[attr-defined]
        return recipient

    def get_list_display(self, request: HttpRequest) -> Any:
        shown = self._recipient_for(request)
        sees = request.user.has_perm("remediation.view_assessmentsession")

        def reply(obj: ResultsNotification) -> str:
            # A refusal may quote the address: only for those who may see addresses.
            return obj.smtp_reply if sees else ("(hidden)" if obj.smtp_reply else "–")

        reply.short_description = "SMTP reply"  # type: ignore[attr-defined]
        swap = {"recipient_shown": shown, "smtp_reply": reply}
        return [
            swap.get(f, f) if isinstance(f, str) else f for f in super().get_list_display(request)
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        shown = self._recipient_for(request)
        return [
            shown if f == "recipient_shown" else f
            for f in super().get_readonly_fields(request, obj)
        ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).select_related("run")

    @admin.display(description="session")
    def session_link(self, obj: ResultsNotification) -> SafeString:
        url = reverse("admin:remediation_assessmentsession_change", args=[obj.session_id])
        return format_html('<a href="{}">{}</a>', url, obj.session_id)

    @admin.display(description="run")
    def run_link(self, obj: ResultsNotification) -> SafeString:
        if obj.run_id is None:
            return format_html("{}", "–")
        url = reverse("admin:remediation_backfillrun_change", args=[obj.run_id])
        return format_html('<a href="{}">#{}</a>', url, obj.run_id)


class SuppressedAddressForm(forms.ModelForm):
    class Meta:
        model = SuppressedAddress
        fields = ("address", "reason")

    def clean_address(self) -> str:
        address = self.cleaned_data["address"].strip().lower()
        if not address or "@" not in address:
            raise forms.ValidationError("an email address")
        return str(address)


@admin.register(SuppressedAddress)
class SuppressedAddressAdmin(admin.ModelAdmin):
    """The suppression list: addresses never sent results (engineers add and remove)."""

    form = SuppressedAddressForm
    list_display = ("address", "reason", "added_by", "added_at")
    search_fields = ("address",)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not change:
            obj.added_by = request.user.get_username()
        super().save_model(request, obj, form, change)
        from remediation.services.audit import audit_record

        audit_record(request.user, "notify.suppress", target=obj.address, outcome="suppressed")

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        from remediation.services.audit import audit_record

        audit_record(request.user, "notify.unsuppress", target=obj.address, outcome="removed")
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        from remediation.services.audit import audit_record

        for address in queryset.values_list("address", flat=True):
            audit_record(request.user, "notify.unsuppress", target=address, outcome="removed")
        super().delete_queryset(request, queryset)
