"""The pipeline's own tables, read-only: answers, profiles, key, config, prototypes, FC rows."""

from __future__ import annotations

import contextlib
import json
from typing import Any
from uuid import UUID

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from remediation.admin.base import CappedCountPaginator, ReadOnlyAdmin
from remediation.models import (
    AssessmentResponse,
    CalibrationModel,
    FcResponse,
    FcScore,
    Profile,
    ScoringConfig,
    ScoringKey,
    TypePrototype,
)


def _pretty_json(value: Any) -> SafeString:
    return format_html(
        '<pre class="json-value">{}</pre>', json.dumps(value, indent=2, ensure_ascii=False)
    )


@admin.register(AssessmentResponse)
class AssessmentResponseAdmin(ReadOnlyAdmin):
    list_display = (
        "session_id",
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
        # A profile's own share token where the table has one (a rebuilt database has none).
        condition = Q(pk__in=[]) if "share_token" in self.missing() else Q(share_token=term)
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
