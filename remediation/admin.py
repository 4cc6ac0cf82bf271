"""Admin for the pipeline's tables (read-only) and the orphaned-sessions list."""

from __future__ import annotations

import contextlib
import json
from typing import Any
from uuid import UUID

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from remediation import (
    admin_audit,
    admin_backfill,
    admin_fc,
    admin_health,
    admin_runbook,
    selectors,
)
from remediation.admin_finalize import can_finalize, finalize_action, finalize_view
from remediation.admin_utils import (
    CappedCountPaginator,
    DateRangeFilter,
    ReadOnlyAdmin,
    csv_response,
)
from remediation.models import (
    AssessmentResponse,
    AssessmentSession,
    CalibrationModel,
    FcResponse,
    FcScore,
    FinalizeAttempt,
    OrphanedSession,
    Profile,
    ScoringConfig,
    ScoringKey,
    SessionDiagnosis,
    TypePrototype,
)


def _pretty_json(value: Any) -> SafeString:
    return format_html(
        "<pre style='margin:0'>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False)
    )


class HasProfileFilter(admin.SimpleListFilter):
    title = "profile"
    parameter_name = "has_profile"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "has a profile"), ("no", "no profile")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(selectors.has_profile_expression())
        if self.value() == "no":
            return queryset.filter(~selectors.has_profile_expression())
        return queryset


class FcPresenceFilter(admin.SimpleListFilter):
    title = "forced-choice data"
    parameter_name = "fc"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("responses", "has FC responses"), ("none", "no FC responses")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "responses":
            return queryset.filter(selectors.has_fc_responses_expression())
        if self.value() == "none":
            return queryset.filter(~selectors.has_fc_responses_expression())
        return queryset


AGE_BUCKETS = [("lt1", "under 1 day", 0, 1), ("1to7", "1–7 days", 1, 7), ("7to20", "7–20 days", 7, 20),
               ("gt20", "over 20 days", 20, None)]  # fmt: skip


def age_bucket(completed_at: Any) -> str:
    if completed_at is None:
        return "–"
    days = (timezone.now() - completed_at).total_seconds() / 86400
    for _, label, low, high in AGE_BUCKETS:
        if days >= low and (high is None or days < high):
            return label
    return "–"


class AgeBucketFilter(admin.SimpleListFilter):
    title = "age (since completion)"
    parameter_name = "age"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(key, label) for key, label, _, _ in AGE_BUCKETS]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        from datetime import timedelta

        for key, _, low, high in AGE_BUCKETS:
            if self.value() == key:
                now = timezone.now()
                queryset = queryset.filter(completed_at__lte=now - timedelta(days=low))
                if high is not None:
                    queryset = queryset.filter(completed_at__gt=now - timedelta(days=high))
        return queryset


class SessionSearchMixin:
    """Search by exact session id, share token or email: indexed, instant on a million rows."""

    class Media:
        css = {"all": ["remediation/admin.css"]}

    search_help_text: Any = "Session id, share token or email (exact)."

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = Q(share_token=term) | Q(email=term)
        if term.lower() != term:
            condition |= Q(email=term.lower())
        with contextlib.suppress(ValueError):
            condition |= Q(id=UUID(term))
        return queryset.filter(condition), False


class SessionActionsMixin(admin.ModelAdmin):
    """Finalize and diagnose, on the session list and the orphan list alike."""

    def has_finalize_permission(self, request: HttpRequest) -> bool:
        return can_finalize(request)

    @admin.action(permissions=["finalize"], description="Finalize selected sessions…")
    def finalize_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
        return finalize_action(self, request, queryset)

    @admin.action(permissions=["view"], description="Diagnose selected sessions (why no profile?)")
    def diagnose_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        diagnose_and_report(self, request, queryset)


@admin.register(AssessmentSession)
class AssessmentSessionAdmin(SessionActionsMixin, SessionSearchMixin, ReadOnlyAdmin):
    list_display = ("id", "email", "status", "created_at", "completed_at", "has_profile")
    list_filter = (
        "status",
        HasProfileFilter,
        ("completed_at", DateRangeFilter),
        ("created_at", DateRangeFilter),
    )
    search_fields = ("email",)  # shows the box; get_search_results does the matching
    paginator = CappedCountPaginator
    show_full_result_count = False
    list_per_page = 50
    readonly_fields = ("pipeline_state", "why_no_profile", "attempts")
    actions = ("finalize_selected", "diagnose_selected", "recompute_fc", "recompute_fc_refinalize")
    fieldsets = (
        ("Pipeline state", {"fields": ("pipeline_state", "why_no_profile", "attempts")}),
        (
            "Session",
            {
                "fields": (
                    "id", "status", "email", "user_id", "session_type", "started_at",
                    "completed_at", "finalized_at", "total_questions", "completed_questions",
                    "share_token", "share_token_expires_at", "metadata", "created_at",
                    "updated_at",
                )
            },
        ),
    )  # fmt: skip

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return (
            super().get_queryset(request).annotate(has_profile=selectors.has_profile_expression())
        )

    def get_urls(self) -> list[Any]:
        custom = [
            path(
                "<path:object_id>/finalize/",
                self.admin_site.admin_view(
                    lambda request, object_id: finalize_view(self, request, object_id)
                ),
                name="remediation_assessmentsession_finalize",
            )
        ]
        return custom + super().get_urls()

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> Any:
        extra_context = {**(extra_context or {}), "can_finalize": can_finalize(request)}
        return super().change_view(request, object_id, form_url, extra_context)

    def has_manage_fc_permission(self, request: HttpRequest) -> bool:
        return admin_fc.can_manage(request)

    def _recompute(self, request: HttpRequest, queryset: QuerySet[Any], refinalize: bool) -> None:
        from remediation import fc

        ids = [str(pk) for pk in queryset.values_list("pk", flat=True)[:26]]
        if len(ids) > 25:
            self.message_user(
                request, "More than 25 sessions: start a backfill with re-score, which recomputes FC first.",
                messages.ERROR,
            )  # fmt: skip
            return
        results = fc.fc_recompute(ids, refinalize=refinalize, actor=request.user)
        for sid, entry in results.items():
            names = ", ".join(e["name"] for e in entry["events"])
            extra = f"; re-finalize: {entry['finalize']}" if "finalize" in entry else ""
            self.message_user(request, f"{sid}: {names}{extra}")

    @admin.action(permissions=["manage_fc"], description="Recompute FC scores")
    def recompute_fc(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._recompute(request, queryset, refinalize=False)

    @admin.action(permissions=["manage_fc"], description="Recompute FC scores and re-finalize")
    def recompute_fc_refinalize(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._recompute(request, queryset, refinalize=True)

    @admin.display(description="why no profile")
    def why_no_profile(self, obj: AssessmentSession) -> SafeString:
        from remediation.services import session_diagnose

        d = session_diagnose(session_id=str(obj.pk))
        return format_html(
            '<div class="diagnosis diagnosis-{}"><strong>{}</strong>{}: {}</div>',
            d.category, d.category, f" [{d.sqlstate}]" if d.sqlstate else "", d.explanation,
        )  # fmt: skip

    @admin.display(description="finalize attempts")
    def attempts(self, obj: AssessmentSession) -> SafeString:
        rows = FinalizeAttempt.objects.filter(session_id=obj.pk).order_by("-started_at")[:20]
        if not rows:
            return format_html("{}", "none yet")
        return format_html(
            '<table class="attempts"><tr><th>when</th><th>who</th><th>backend</th><th>outcome</th>'
            "<th>SQLSTATE</th><th>detail</th><th>results</th></tr>{}</table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (
                        a.started_at,
                        a.requested_by_name,
                        a.backend,
                        a.get_outcome_display(),
                        a.sqlstate or "–",
                        a.explanation or a.type_code or "–",
                        format_html('<a href="{}">link</a>', a.results_url)
                        if a.results_url
                        else "–",
                    )
                    for a in rows
                ),
            ),
        )

    @admin.display(boolean=True, description="profile", ordering="has_profile")
    def has_profile(self, obj: Any) -> bool:
        return bool(getattr(obj, "has_profile", False))

    @admin.display(description="at a glance")
    def pipeline_state(self, obj: AssessmentSession) -> SafeString:
        state = selectors.session_pipeline_state(obj.pk)
        answers_url = (
            reverse("admin:remediation_assessmentresponse_changelist")
            + f"?session__id__exact={obj.pk}"
        )
        rows: list[tuple[str, Any]] = [
            ("Answers", format_html('<a href="{}">{}</a>', answers_url, state.answers)),
            ("Answers only in answer_numeric", state.answers_only_numeric),
            ("answer_value and answer_numeric disagree", state.answers_disagreeing),
            ("FC responses", state.fc_responses),
            (
                "FC scores",
                ", ".join(
                    f"{s['version']}/{s['fc_kind']} ({s['blocks_answered']} blocks)"
                    for s in state.fc_scores
                )
                or "none",
            ),
        ]
        profile = state.profile
        if profile is None:
            rows.append(
                (
                    "Profile",
                    format_html(
                        "<strong>{}</strong>",
                        "none: orphaned" if obj.status == "completed" else "none",
                    ),
                )
            )
        else:
            url = reverse("admin:remediation_profile_change", args=[profile.pk])
            rows.append(
                (
                    "Profile",
                    format_html(
                        '<a href="{}">{} {}</a>, created {}, submitted {}, recomputed {}',
                        url,
                        profile.type_code or "?",
                        profile.results_version or "?",
                        profile.created_at or "–",
                        profile.submitted_at or "–",
                        profile.recomputed_at or "–",
                    ),
                )
            )
        return format_html(
            '<table class="pipeline-state">{}</table>',
            format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows),
        )


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
            lambda request: admin_backfill.backfill_filter_view(self, request)
        )
        export = self.admin_site.admin_view(self.export_csv_view)
        return [
            path("backfill/", view, name="remediation_orphanedsession_backfill"),
            path("export.csv", export, name="remediation_orphanedsession_export"),
            *super().get_urls(),
        ]

    def export_csv_view(self, request: HttpRequest) -> Any:
        """Every orphan matching the list's current filters and search, as CSV (streamed)."""
        from django.core.exceptions import PermissionDenied

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
                        s.pk, s.email or "", s.completed_at.isoformat() if s.completed_at else "", age,
                        age_bucket(s.completed_at), bool(getattr(s, "has_fc", False)),
                        reason.short if reason else "",
                    ]  # fmt: skip

        return csv_response("orphaned-sessions.csv", header, rows())

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        extra = {
            **(extra_context or {}),
            "can_backfill": admin_backfill.can_run(request),
            "backfill_filter_url": admin_backfill.orphan_filter_url(request),
            "export_url": "export.csv" + ("?" + request.GET.urlencode() if request.GET else ""),
        }
        return super().changelist_view(request, extra)

    def has_run_backfill_permission(self, request: HttpRequest) -> bool:
        return admin_backfill.can_run(request)

    @admin.action(permissions=["run_backfill"], description="Backfill selected sessions…")
    def backfill_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
        return admin_backfill.backfill_selected_action(self, request, queryset)

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


def diagnose_and_report(
    model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Any]
) -> None:
    from collections import Counter

    from remediation.pipeline_write import load_context
    from remediation.services import session_diagnose

    sessions = list(queryset[:200])
    ctx = load_context()
    tally: Counter[str] = Counter(
        session_diagnose(session_id=str(s.pk), context=ctx).category for s in sessions
    )
    summary = ", ".join(f"{n} {cat}" for cat, n in tally.most_common())
    model_admin.message_user(request, f"Diagnosed {len(sessions)} sessions: {summary}.")


admin_backfill.register(admin.site)
admin_runbook.register(admin.site)
admin_health.register(admin.site)
admin_fc.register(admin.site)
admin_audit.register(admin.site)


@admin.register(FinalizeAttempt)
class FinalizeAttemptAdmin(ReadOnlyAdmin):
    list_display = ("started_at", "session_id", "backend", "outcome", "reason", "sqlstate",
                    "constraint_name", "requested_by_name", "source", "duration_ms")  # fmt: skip
    list_filter = ("outcome", "backend", "reason", "sqlstate", "source")
    search_fields = ("=session_id", "requested_by_name")
    date_hierarchy = "started_at"


@admin.register(SessionDiagnosis)
class SessionDiagnosisAdmin(ReadOnlyAdmin):
    list_display = ("checked_at", "session_id", "category", "sqlstate", "constraint_name", "value")
    list_filter = ("category", "sqlstate")
    search_fields = ("=session_id",)


@admin.register(AssessmentResponse)
class AssessmentResponseAdmin(ReadOnlyAdmin):
    list_display = (
        "session",
        "question_id",
        "answer_value",
        "answer_numeric",
        "question_type",
        "created_at",
    )
    list_filter = ("question_type",)
    search_fields = ("=session__id",)
    search_help_text = "Session id (exact)."
    paginator = CappedCountPaginator
    show_full_result_count = False
    list_select_related = False
    raw_id_fields = ("session",)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        try:
            return queryset.filter(session_id=UUID(search_term.strip())), False
        except ValueError:
            return (queryset.none() if search_term.strip() else queryset), False


@admin.register(Profile)
class ProfileAdmin(ReadOnlyAdmin):
    list_display = (
        "session_id",
        "type_code",
        "results_version",
        "confidence",
        "fc_coverage_bucket",
        "created_at",
    )
    list_filter = ("results_version", "type_code", "confidence")
    search_fields = ("=share_token",)
    search_help_text = "Session id or share token (exact)."
    paginator = CappedCountPaginator
    show_full_result_count = False
    raw_id_fields = ("session",)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = Q(share_token=term)
        with contextlib.suppress(ValueError):
            condition |= Q(session_id=UUID(term)) | Q(id=UUID(term))
        return queryset.filter(condition), False


@admin.register(ScoringKey)
class ScoringKeyAdmin(ReadOnlyAdmin):
    list_display = (
        "question_id",
        "tag",
        "scale_type",
        "reverse_scored",
        "fc_map",
        "weight",
        "section",
    )
    list_filter = ("scale_type", "reverse_scored")
    search_fields = ("tag", "=question_id")


@admin.register(ScoringConfig)
class ScoringConfigAdmin(ReadOnlyAdmin):
    list_display = ("key", "short_value", "updated_at")
    search_fields = ("key",)
    readonly_fields = ("value_pretty",)
    fields = ("key", "value_pretty", "updated_at")

    @admin.display(description="value")
    def short_value(self, obj: ScoringConfig) -> str:
        text = json.dumps(obj.value, ensure_ascii=False)
        return text if len(text) <= 80 else text[:77] + "…"

    @admin.display(description="value")
    def value_pretty(self, obj: ScoringConfig) -> SafeString:
        return _pretty_json(obj.value)


@admin.register(TypePrototype)
class TypePrototypeAdmin(ReadOnlyAdmin):
    list_display = ("type_code", "func", "block")
    list_filter = ("block", "func")
    search_fields = ("type_code",)
    list_display_links = None


@admin.register(CalibrationModel)
class CalibrationModelAdmin(ReadOnlyAdmin):
    list_display = ("id", "version", "method", "stratum", "trained_at")
    list_filter = ("version",)


@admin.register(FcResponse)
class FcResponseAdmin(ReadOnlyAdmin):
    list_display = ("session_id", "block_id", "option_id", "answered_at")
    search_fields = ("=session_id",)
    list_display_links = None
    paginator = CappedCountPaginator
    show_full_result_count = False


@admin.register(FcScore)
class FcScoreAdmin(ReadOnlyAdmin):
    list_display = (
        "session_id",
        "version",
        "fc_kind",
        "blocks_answered",
        "scores_json",
        "created_at",
    )
    list_filter = ("version", "fc_kind")
    search_fields = ("=session_id",)
    list_display_links = None
    paginator = CappedCountPaginator
    show_full_result_count = False
