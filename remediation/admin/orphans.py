"""The orphaned-sessions list: completed sessions without a profile, with why."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from remediation import jobs, selectors
from remediation.admin import backfills
from remediation.admin.base import (
    CappedCountPaginator,
    DateRangeFilter,
    ReadOnlyAdmin,
    csv_response,
)
from remediation.admin.filters import (
    AgeBucketFilter,
    FcPresenceFilter,
    SessionSearchMixin,
    age_bucket,
)
from remediation.admin.permissions import log_change
from remediation.admin.sessions import SessionActionsMixin
from remediation.models import AssessmentSession, OrphanedSession


@admin.register(OrphanedSession)
class OrphanedSessionAdmin(SessionActionsMixin, SessionSearchMixin, ReadOnlyAdmin):
    """Completed sessions with no profile, newest completion first."""

    list_display = ("id", "email", "completed_at", "age", "has_fc", "reason", "session_link")
    actions = ("backfill_selected", "finalize_selected", "diagnose_selected")
    list_filter = (("completed_at", DateRangeFilter), AgeBucketFilter, FcPresenceFilter)
    search_fields = ("email",)
    sortable_by = ("completed_at", "email", "id")
    ordering = ("-completed_at",)
    paginator = CappedCountPaginator
    show_full_result_count = False
    list_per_page = 100
    list_display_links = None

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return selectors.orphaned_sessions().annotate(
            has_fc=selectors.has_fc_responses_expression()
        )

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return ReasonChangeList

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view(
            lambda request: backfills.backfill_filter_view(self, request)
        )
        export = self.admin_site.admin_view(self.export_csv_view)
        diagnose = self.admin_site.admin_view(self.diagnose_all_view)
        return [
            path("backfill/", view, name="remediation_orphanedsession_backfill"),
            path("export.csv", export, name="remediation_orphanedsession_export"),
            path("diagnose/", diagnose, name="remediation_orphanedsession_diagnose"),
            *super().get_urls(),
        ]

    def diagnose_all_view(self, request: HttpRequest) -> HttpResponse:
        """POST: diagnose every orphan matching the list's filters, as a background run."""
        if request.method != "POST":
            return HttpResponse(status=405)
        if not self.has_view_permission(request):
            raise PermissionDenied
        # The list's filters and search travel in the query string, as for the export.
        queryset = self.get_changelist_instance(request).get_queryset(request)
        ids = [str(pk) for pk in queryset.order_by("-completed_at").values_list("pk", flat=True)]
        try:
            run = jobs.diagnosis_start(
                session_ids=ids, actor=request.user, params=dict(request.GET.items())
            )
        except jobs.RunError as exc:
            self.message_user(request, f"Nothing diagnosed: {exc}", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:remediation_orphanedsession_changelist"))
        log_change(request, run, f"Started bulk diagnosis #{run.pk}: {len(ids)} sessions")
        self.message_user(request, f"Diagnosis #{run.pk} started: {len(ids)} sessions.")
        return HttpResponseRedirect(reverse("admin:remediation_backfillrun_change", args=[run.pk]))

    def export_csv_view(self, request: HttpRequest) -> Any:
        """Every orphan matching the list's current filters and search, as CSV (streamed)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        queryset = (
            self.get_changelist_instance(request).get_queryset(request).order_by("-completed_at")
        )
        header = [
            "session_id",
            "email",
            "completed_at",
            "age_days",
            "age_bucket",
            "has_fc_responses",
            "reason",
        ]

        def rows() -> Any:
            start = 0
            while chunk := list(queryset[start : start + 2000]):
                start += len(chunk)
                reasons = selectors.latest_reasons([s.pk for s in chunk])
                for s in chunk:
                    reason = reasons.get(str(s.pk))
                    age = (timezone.now() - s.completed_at).days if s.completed_at else ""
                    yield [
                        s.pk,
                        s.email or "",
                        s.completed_at.isoformat() if s.completed_at else "",
                        age,
                        age_bucket(s.completed_at),
                        bool(getattr(s, "has_fc", False)),
                        reason.short if reason else "",
                    ]

        return csv_response("orphaned-sessions.csv", header, rows())

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        extra = {
            **(extra_context or {}),
            "can_backfill": backfills.can_run(request),
            "backfill_filter_url": backfills.orphan_filter_url(request),
            "export_url": "export.csv" + ("?" + request.GET.urlencode() if request.GET else ""),
            "diagnose_url": "diagnose/" + ("?" + request.GET.urlencode() if request.GET else ""),
        }
        return super().changelist_view(request, extra)

    def has_run_backfill_permission(self, request: HttpRequest) -> bool:
        return backfills.can_run(request)

    @admin.action(permissions=["run_backfill"], description="Backfill selected sessions…")
    def backfill_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
        return backfills.backfill_selected_action(self, request, queryset)

    @admin.display(description="why no profile (latest attempt or diagnosis)")
    def reason(self, obj: Any) -> str:
        reason = getattr(obj, "_reason", None)
        return reason.short if reason else "not diagnosed yet"

    @admin.display(description="age")
    def age(self, obj: AssessmentSession) -> str:
        if obj.completed_at is None:
            return "–"
        days = (timezone.now() - obj.completed_at).days
        return f"{days} d ({age_bucket(obj.completed_at)})"

    @admin.display(boolean=True, description="FC responses")
    def has_fc(self, obj: Any) -> bool:
        return bool(getattr(obj, "has_fc", False))

    @admin.display(description="session")
    def session_link(self, obj: AssessmentSession) -> SafeString:
        url = reverse("admin:remediation_assessmentsession_change", args=[obj.pk])
        return format_html('<a href="{}">open</a>', url)


class ReasonChangeList(ChangeList):
    """Attaches each listed session's latest known reason (two queries per page)."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        reasons = selectors.latest_reasons([obj.pk for obj in self.result_list])
        for obj in self.result_list:
            obj._reason = reasons.get(str(obj.pk))
