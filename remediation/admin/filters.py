"""List filters and search shared by the session and orphan lists."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any
from uuid import UUID

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from remediation import display, selectors


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


AGE_BUCKETS = [
    ("lt1", "under 1 day", 0, 1),
    ("1to7", "1–7 days", 1, 7),
    ("7to20", "7–20 days", 7, 20),
    ("gt20", "over 20 days", 20, None),
]


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
        for key, _, low, high in AGE_BUCKETS:
            if self.value() == key:
                now = timezone.now()
                queryset = queryset.filter(completed_at__lte=now - timedelta(days=low))
                if high is not None:
                    queryset = queryset.filter(completed_at__gt=now - timedelta(days=high))
        return queryset


class SessionSearchMixin:
    """Search by exact session id, share token or email: indexed, instant on a million rows."""

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


class CodeListFilter(admin.AllValuesFieldListFilter):
    """A code column's values in words (`would succeed`); the filter still matches the code."""

    @staticmethod
    def shown(value: str) -> str:
        return display.words(value)

    def choices(self, changelist: Any) -> Any:
        choices = list(super().choices(changelist))
        values = [str(v) for v in self.lookup_choices if v is not None]
        # Django's choices: "All", then one per value in lookup_choices' order (with a
        # " (count)" when facets are shown), then the empty one.
        for choice, value in zip(choices[1 : 1 + len(values)], values, strict=True):
            choice["display"] = self.shown(value) + str(choice["display"])[len(value) :]
        return choices


class SqlstateListFilter(CodeListFilter):
    """SQLSTATEs with their names: `insufficient privilege (42501)`."""

    @staticmethod
    def shown(value: str) -> str:
        return display.sqlstate(value)
