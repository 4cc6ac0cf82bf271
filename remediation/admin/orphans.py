"""The orphaned-sessions list: completed sessions without a profile, with why."""

from __future__ import annotations

from typing import Any, cast

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.core.paginator import InvalidPage, Paginator
from django.db import DatabaseError
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
from remediation.models import AssessmentSession, OrphanedSession, OrphanLedgerRow
from remediation.selectors import orphan_ledger


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


class OrphanPaginator(Paginator):
    """Pages of an OrphanPages sequence; `estimated` when its count is the planner's."""

    @property
    def estimated(self) -> bool:
        return bool(getattr(self.object_list, "estimated", False))


# Query parameters the ledger can serve (sort, page, the list's three filters).
LEDGER_PARAMS = {"o", "p", "completed_at__from", "completed_at__to", "age", "fc"}


class ReasonChangeList(ChangeList):
    """Reads the page through the orphan ledger when it can (remediation/selectors/orphan_ledger.py:
    an indexed walk that never passes sessions with profiles, every row checked live), else
    the plain definition; then attaches each listed session's latest known reason."""

    source = "plain"
    source_reason = ""
    ledger: orphan_ledger.LedgerState | None = None

    def get_results(self, request: HttpRequest) -> None:
        pages = self._ledger_pages(request)
        if pages is None:
            super().get_results(request)
        else:
            self._paginate(request, pages)
        reasons = selectors.latest_reasons([obj.pk for obj in self.result_list])
        for obj in self.result_list:
            obj._reason = reasons.get(str(obj.pk))

    def _ledger_pages(self, request: HttpRequest) -> orphan_ledger.OrphanPages | None:
        if self.query or set(request.GET) - LEDGER_PARAMS:
            self.source_reason = (
                "a search or an unusual parameter is read from the plain definition"
            )
            return None
        try:
            state = orphan_ledger.ledger_state(self.queryset.db, tail_index=False)
        except DatabaseError:
            state = orphan_ledger.LedgerState(exists=False)
        self.ledger = state
        if not state.exists:
            self.source_reason = "no orphan ledger (see the runbook's check)"
            return None
        if not state.usable:
            self.source_reason = (
                "profiles were deleted since the ledger's refresh: plain definition until the next"
                if state.refreshed_at
                else "the ledger was never refreshed"
            )
            return None
        rows: QuerySet[Any] = OrphanLedgerRow.objects.all()
        for spec in self.filter_specs:
            narrowed = spec.queryset(request, rows)
            if narrowed is not None:
                rows = narrowed
        try:
            pages = orphan_ledger.OrphanPages(
                ledger_rows=rows,
                live=self.queryset,
                ordering=self.get_ordering(request, self.queryset),
                state=state,
            )
        except ValueError as exc:
            self.source_reason = str(exc)
            return None
        self.source = "ledger"
        return pages

    def _paginate(self, request: HttpRequest, pages: orphan_ledger.OrphanPages) -> None:
        """ChangeList.get_results over the ledger's pages (never a "show all" of the whole list)."""
        paginator = OrphanPaginator(cast(Any, pages), self.list_per_page)
        result_count = paginator.count
        multi_page = result_count > self.list_per_page
        result_list: Any
        if not multi_page:  # as Django does: one page whatever ?p= says
            result_list = pages[0 : self.list_per_page]
        else:
            try:
                result_list = paginator.page(self.page_num).object_list
            except InvalidPage:
                raise IncorrectLookupParameters from None
        self.result_count = result_count
        self.show_full_result_count = False
        self.show_admin_actions = True
        self.full_result_count = None
        self.result_list = result_list
        self.can_show_all = False
        self.multi_page = multi_page
        self.paginator = paginator
