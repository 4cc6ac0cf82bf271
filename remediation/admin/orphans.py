"""The orphaned-sessions list: completed sessions without a profile, with why."""

from __future__ import annotations

import re
from typing import Any, cast

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.core.paginator import InvalidPage, Paginator
from django.db import DatabaseError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.defaultfilters import pluralize
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from remediation import display, jobs, selectors
from remediation.admin import backfills, runs
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

# The reason column's sort key: not a column of any table (ReasonChangeList handles it).
REASON_SORT = "_reason_sort"


def _when(at: Any) -> str:
    return display.when(at) if at else "at an unknown time"


def _stale_words(reason: selectors.Reason) -> str:
    if reason.found_profile:
        return "no longer true: the session has no profile now"
    if reason.changed_after is not None:
        return f"{reason.changed_after.what} at {reason.changed_after.at.isoformat()}"
    return ""


def _filter_words(changelist: ChangeList) -> list[str]:
    """The list's chosen filters and search, in words, for the confirmation page."""
    out = []
    for spec in changelist.filter_specs:
        if isinstance(spec, admin.SimpleListFilter):
            value = spec.value()
            if value:
                out.append(f"{spec.title}: {dict(spec.lookup_choices).get(value, value)}")
        elif isinstance(spec, DateRangeFilter):
            for name, value in spec.values.items():
                out.append(f"completed {'from' if name.endswith('__from') else 'to'} {value}")
    if changelist.query:
        out.append(f"search: {changelist.query}")
    return out


def _diagnosis_run() -> Any:
    """The latest diagnosis run, if it is active or ended in the last ten minutes."""
    from datetime import timedelta

    from remediation.models import BackfillRun

    run = (
        BackfillRun.objects.filter(kind=BackfillRun.Kind.DIAGNOSIS).order_by("-created_at").first()
    )
    if run is None:
        return None
    if run.is_active or (
        run.finished_at and run.finished_at > timezone.now() - timedelta(minutes=10)
    ):
        return run
    return None


def _refused(request: HttpRequest, queryset: QuerySet[Any], text: str) -> QuerySet[Any]:
    """A filter value that means nothing: said so, and no row matches it (the URL stays)."""
    messages.error(request, f"{text} No session matches it.")
    return _among(queryset, [])


def _among(queryset: QuerySet[Any], ids: list[Any]) -> QuerySet[Any]:
    """The rows whose session is one of `ids`. No id: a condition that holds for no row (the
    ledger's pages compile each part's SQL, which an empty IN cannot give)."""
    return queryset.filter(pk__in=ids) if ids else queryset.filter(pk__isnull=True)


class ReasonFilter(admin.SimpleListFilter):
    """The latest reason's category (the words, the code beside them)."""

    title = "why no profile"
    parameter_name = "reason"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        # A fixed vocabulary: building the choices never reads a table.
        return [(selectors.NOT_DIAGNOSED, "not diagnosed (or no longer true)")] + [
            (code, f"{words} ({code})")
            for code, words in selectors.REASON_WORDS.items()
            if code not in selectors.PROFILE_FOUND
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        value = self.value()
        if not value:
            return None
        if value == selectors.NOT_DIAGNOSED:
            return queryset.exclude(pk__in=selectors.sessions_by_reason(holding=True))
        if value not in selectors.REASON_WORDS or value in selectors.PROFILE_FOUND:
            return _refused(
                request, queryset, f"Unknown reason {value!r}: choose one from the filter."
            )
        return _among(queryset, selectors.sessions_by_reason(category=value))


SQLSTATES = {
    "42501": "permission: RLS or a grant",
    "23514": "CHECK constraint",
    "54001": "stack depth (recursive trigger)",
    "42703": "undefined column",
    "42P01": "undefined table",
    "55P03": "lock timeout",
    "57014": "statement timeout",
}


class SqlstateFilter(admin.SimpleListFilter):
    """The latest reason's SQLSTATE (any five-character code in the URL, the usual ones listed)."""

    title = "SQLSTATE"
    parameter_name = "sqlstate"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(code, f"{code} {words}") for code, words in SQLSTATES.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        value = (self.value() or "").strip().upper()
        if not value:
            return None
        if not re.fullmatch(r"[0-9A-Z]{5}", value):
            return _refused(
                request,
                queryset,
                f"{value!r} is not a SQLSTATE (five letters or digits, e.g. 42501).",
            )
        return _among(queryset, selectors.sessions_by_reason(sqlstate=value))


@admin.register(OrphanedSession)
class OrphanedSessionAdmin(SessionActionsMixin, SessionSearchMixin, ReadOnlyAdmin):
    """Completed sessions with no profile, newest completion first."""

    # The reason second, so that it is on screen at 1280 px; completed_at stays the third
    # column (?o=3), as bookmarks and the ledger's tests have it.
    list_display = ("id", "reason", "completed_at", "age", "has_fc", "email", "session_link")
    actions = ("backfill_selected", "finalize_selected", "diagnose_selected")
    list_filter = (
        ("completed_at", DateRangeFilter),
        AgeBucketFilter,
        FcPresenceFilter,
        ReasonFilter,
        SqlstateFilter,
    )
    search_fields = ("email",)
    sortable_by = ("completed_at", "email", "id", "reason")
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
        """Re-diagnose every orphan matching the list's filters, as a background run. A GET (or
        a POST without confirm=yes) shows how many sessions that is and starts nothing; the
        POST with confirm=yes starts it. It only reads: each write is rolled back."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        # The list's filters and search travel in the query string, as for the export.
        query = request.GET.urlencode()
        back = reverse("admin:remediation_orphanedsession_changelist") + (
            f"?{query}" if query else ""
        )
        changelist = self.get_changelist_instance(request)
        queryset = changelist.get_queryset(request)
        if request.method != "POST" or request.POST.get("confirm") != "yes":
            count = queryset.count()
            context = {
                **self.admin_site.each_context(request),
                "title": "Re-diagnose the orphans matching this filter?",
                "opts": self.model._meta,
                "count": count,
                "confirm_label": f"Yes, re-diagnose {display.count(count, 'session')}",
                "filters": _filter_words(changelist),
                "back_url": back,
                "active": _diagnosis_run(),
            }
            return TemplateResponse(
                request, "admin/remediation/orphanedsession/diagnose_confirm.html", context
            )
        ids = [str(pk) for pk in queryset.order_by("-completed_at").values_list("pk", flat=True)]
        try:
            run = jobs.diagnosis_start(
                session_ids=ids, actor=request.user, params=dict(request.GET.items())
            )
        except jobs.RunError as exc:
            self.message_user(request, f"Nothing diagnosed: {exc}", messages.ERROR)
            return HttpResponseRedirect(back)
        log_change(request, run, f"Started bulk diagnosis #{run.pk}: {len(ids)} sessions")
        self.message_user(
            request,
            f"Diagnosis #{run.pk} started: {len(ids)} session{pluralize(len(ids))}; its progress"
            " is shown above the list.",
        )
        return HttpResponseRedirect(back)

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
            "reason_at",
            "reason_stale",
        ]

        def rows() -> Any:
            start = 0
            while chunk := list(queryset[start : start + 2000]):
                start += len(chunk)
                reasons = selectors.orphan_reasons([s.pk for s in chunk])
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
                        reason.at.isoformat() if reason and reason.at else "",
                        _stale_words(reason) if reason else "",
                    ]

        return csv_response("orphaned-sessions.csv", header, rows())

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        run = _diagnosis_run()
        extra = {
            **(extra_context or {}),
            "can_backfill": backfills.can_run(request),
            "backfill_filter_url": backfills.orphan_filter_url(request),
            "export_url": "export.csv" + ("?" + request.GET.urlencode() if request.GET else ""),
            "diagnose_url": "diagnose/" + ("?" + request.GET.urlencode() if request.GET else ""),
            "diagnosis_run": run,
            "diagnosis_text": runs.run_progress(run)["text"] if run else {},
            "can_view_runs": request.user.has_perm("remediation.view_backfillrun"),
        }
        return super().changelist_view(request, extra)

    def has_run_backfill_permission(self, request: HttpRequest) -> bool:
        return backfills.can_run(request)

    @admin.action(permissions=["run_backfill"], description="Backfill selected sessions…")
    def backfill_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
        return backfills.backfill_selected_action(self, request, queryset)

    @admin.display(description="why no profile", ordering=REASON_SORT)
    def reason(self, obj: Any) -> SafeString:
        reason: selectors.Reason | None = getattr(obj, "_reason", None)
        if reason is None:
            return format_html('<span class="reason-none">{}</span>', "not diagnosed yet")
        when = _when(reason.at)
        if reason.found_profile:
            # An orphan has no profile now: what the attempt said then is history.
            return format_html(
                '<span class="reason-stale">stale</span> not diagnosed since {}: the {} then said'
                " “{}”, but the session has no profile now",
                when,
                reason.source,
                reason.words,
            )
        code = (
            format_html(
                ' <code title="{}">{}</code>',
                display.sqlstate_name(reason.sqlstate),
                reason.sqlstate,
            )
            if reason.sqlstate
            else ""
        )
        detail = format_html(": {}", reason.detail) if reason.detail else ""
        html = format_html(
            '<span class="reason-words" data-category="{}">{}</span> ({}){}{}'
            '<br><span class="diagnosed-at">{} {}</span>',
            reason.category,
            reason.words,
            reason.category,
            code,
            detail,
            "diagnosed" if reason.source == "diagnosis" else "attempt",
            when,
        )
        if reason.changed_after is not None:
            html += format_html(
                ' <span class="reason-stale" title="{}">stale</span>'
                ' <span class="diagnosed-at">{} at {}, after it</span>',
                "A fix or gate changed after this reason was found: it may not hold now.",
                reason.changed_after.what,
                _when(reason.changed_after.at),
            )
        return html

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


class ReasonPages:
    """The list's rows sorted by their latest reason: a sequence for a Paginator.

    Reasons live in the portal's database and orphans in the pipeline's, so no one statement
    sorts by both: the reasons are read grouped (selectors.reason_groups, words then
    SQLSTATE), then each group is the list's own queryset (its filters, its order within the
    group) narrowed to the group's sessions, counted live; the sessions with no reason that
    holds come last (first, descending). Every row is an orphan now, as on every path."""

    def __init__(self, live: QuerySet[Any], *, descending: bool) -> None:
        groups = selectors.reason_groups()
        holding = [sid for _, _, ids in groups for sid in ids]
        parts = [live.filter(pk__in=ids) for _, _, ids in groups]
        parts.append(live.exclude(pk__in=holding) if holding else live)
        self.parts = parts[::-1] if descending else parts
        self._counts: list[int] | None = None

    def counts(self) -> list[int]:
        if self._counts is None:
            self._counts = [part.count() for part in self.parts]
        return self._counts

    def __len__(self) -> int:
        return sum(self.counts())

    def count(self) -> int:
        return len(self)

    def __getitem__(self, key: slice) -> list[Any]:
        if not isinstance(key, slice):
            raise TypeError("ReasonPages takes slices")
        start, stop = key.start or 0, key.stop if key.stop is not None else len(self)
        out: list[Any] = []
        offset = 0
        for part, n in zip(self.parts, self.counts(), strict=True):
            if stop <= offset:
                break
            if start < offset + n:
                out.extend(part[max(0, start - offset) : stop - offset])
            offset += n
        return out


class OrphanPaginator(Paginator):
    """Pages of an OrphanPages sequence; `estimated` when its count is the planner's."""

    @property
    def estimated(self) -> bool:
        return bool(getattr(self.object_list, "estimated", False))


# Query parameters the ledger can serve (sort, page, the list's filters).
LEDGER_PARAMS = {
    "o",
    "p",
    "completed_at__from",
    "completed_at__to",
    "age",
    "fc",
    "reason",
    "sqlstate",
}


class ReasonChangeList(ChangeList):
    """Reads the page through the orphan ledger when it can (remediation/selectors/orphan_ledger.py:
    an indexed walk that never passes sessions with profiles, every row checked live), else
    the plain definition; then attaches each listed session's latest known reason."""

    source = "plain"
    source_reason = ""
    ledger: orphan_ledger.LedgerState | None = None
    reason_order = ""  # "asc" or "desc" when the list is sorted by reason
    stale_count = 0
    undiagnosed_count = 0

    def get_ordering(self, request: HttpRequest, queryset: QuerySet[Any]) -> list[Any]:
        """The admin's ordering without the reason (no column of the queryset: ReasonPages
        sorts by it); within one reason, the list's other keys, else newest first."""
        ordering = super().get_ordering(request, queryset)
        rest = [o for o in ordering if not (isinstance(o, str) and o.lstrip("-") == REASON_SORT)]
        if len(rest) != len(ordering):
            first = next(o for o in ordering if isinstance(o, str) and o.lstrip("-") == REASON_SORT)
            self.reason_order = "desc" if first.startswith("-") else "asc"
            if rest in (["-pk"], ["pk"]):
                rest = ["-completed_at", *rest]
        return rest

    def get_results(self, request: HttpRequest) -> None:
        if self.reason_order:
            self.source_reason = "sorted by reason: the reasons are read grouped, each group live"
            self._paginate(
                request,
                cast(Any, ReasonPages(self.queryset, descending=self.reason_order == "desc")),
            )
            self._attach_reasons()
            return
        pages = self._ledger_pages(request)
        if pages is None:
            super().get_results(request)
        else:
            self._paginate(request, pages)
        self._attach_reasons()

    def _attach_reasons(self) -> None:
        reasons = selectors.orphan_reasons([obj.pk for obj in self.result_list])
        for obj in self.result_list:
            obj._reason = reasons.get(str(obj.pk))
        # The page's stale and missing reasons, for the note offering a re-diagnosis.
        shown = [obj._reason for obj in self.result_list]
        self.stale_count = sum(1 for r in shown if r is not None and r.stale)
        self.undiagnosed_count = sum(1 for r in shown if r is None)

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

    def _paginate(self, request: HttpRequest, pages: Any) -> None:
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
