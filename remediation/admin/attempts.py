"""Finalize attempts and stored diagnoses (the portal's own records)."""

from __future__ import annotations

from django.contrib import admin

from remediation.admin.base import ReadOnlyAdmin
from remediation.models import FinalizeAttempt, SessionDiagnosis


@admin.register(FinalizeAttempt)
class FinalizeAttemptAdmin(ReadOnlyAdmin):
    list_display = (
        "started_at",
        "session_id",
        "backend",
        "outcome",
        "reason",
        "sqlstate",
        "constraint_name",
        "requested_by_name",
        "source",
        "duration_ms",
    )
    list_filter = ("outcome", "backend", "reason", "sqlstate", "source")
    search_fields = ("=session_id", "requested_by_name")
    date_hierarchy = "started_at"


@admin.register(SessionDiagnosis)
class SessionDiagnosisAdmin(ReadOnlyAdmin):
    list_display = ("checked_at", "session_id", "category", "sqlstate", "constraint_name", "value")
    list_filter = ("category", "sqlstate")
    search_fields = ("=session_id",)
