"""Finalize attempts and stored diagnoses (the portal's own records)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from remediation import display
from remediation.admin.base import ReadOnlyAdmin, session_link
from remediation.admin.filters import CodeListFilter, SqlstateListFilter
from remediation.models import FinalizeAttempt, SessionDiagnosis


@admin.register(FinalizeAttempt)
class FinalizeAttemptAdmin(ReadOnlyAdmin):
    list_display = (
        "started_at",
        "session",
        "backend",
        "outcome",
        "reason_words",
        "sqlstate_words",
        "constraint_name",
        "requested_by_name",
        "source",
        "duration",
    )
    list_filter = (
        "outcome",
        "backend",
        ("reason", CodeListFilter),
        ("sqlstate", SqlstateListFilter),
        "source",
    )
    search_fields = ("=session_id", "requested_by_name")
    date_hierarchy = "started_at"
    # The change page: durations and codes as a person reads them, the session and run as links.
    fields = (
        "session",
        "backend",
        "source",
        "requested_by",
        "requested_by_name",
        "rescore",
        "started_at",
        "finished_at",
        "duration",
        "outcome",
        "reason_words",
        "sqlstate_words",
        "constraint_name",
        "table_name",
        "failed_statement",
        "error_message",
        "explanation",
        "http_status",
        "events",
        "profile_id",
        "type_code",
        "results_version",
        "results_url",
        "run",
    )
    readonly_fields = ("session", "run", "duration", "reason_words", "sqlstate_words")

    @admin.display(description="session", ordering="session_id")
    def session(self, obj: FinalizeAttempt) -> SafeString:
        return session_link(obj.session_id)

    @admin.display(description="run")
    def run(self, obj: FinalizeAttempt) -> SafeString | str:
        if obj.run_id is None:
            return display.NONE
        url = reverse("admin:remediation_backfillrun_change", args=[obj.run_id])
        return format_html('<a href="{}">run #{}</a>', url, obj.run_id)

    @admin.display(description="reason", ordering="reason")
    def reason_words(self, obj: FinalizeAttempt) -> str:
        return display.words(obj.reason)

    @admin.display(description="SQLSTATE", ordering="sqlstate")
    def sqlstate_words(self, obj: FinalizeAttempt) -> str:
        return display.sqlstate(obj.sqlstate)

    @admin.display(description="duration", ordering="duration_ms")
    def duration(self, obj: FinalizeAttempt) -> str:
        return display.duration(obj.duration_ms)


@admin.register(SessionDiagnosis)
class SessionDiagnosisAdmin(ReadOnlyAdmin):
    list_display = (
        "checked_at",
        "session",
        "category_words",
        "sqlstate_words",
        "constraint_name",
        "value",
    )
    list_filter = (("category", CodeListFilter), ("sqlstate", SqlstateListFilter))
    search_fields = ("=session_id",)
    fields = (
        "session",
        "checked_at",
        "category_words",
        "sqlstate_words",
        "constraint_name",
        "table_name",
        "value",
        "error_message",
        "explanation",
        "events",
    )
    readonly_fields = ("session", "category_words", "sqlstate_words")

    @admin.display(description="session", ordering="session_id")
    def session(self, obj: SessionDiagnosis) -> SafeString:
        return session_link(obj.session_id)

    @admin.display(description="category", ordering="category")
    def category_words(self, obj: SessionDiagnosis) -> str:
        return display.words(obj.category)

    @admin.display(description="SQLSTATE", ordering="sqlstate")
    def sqlstate_words(self, obj: SessionDiagnosis) -> str:
        return display.sqlstate(obj.sqlstate)
