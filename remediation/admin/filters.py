"""List filters and search shared by the session and orphan lists."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from remediation import display, selectors
from remediation.admin.base import tell_once
from remediation.jobs.selection import ID_SEPARATORS


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
    """Search by exact session id, share token or email: indexed, instant on a million rows.
    Several session ids pasted at once (separated by newlines, commas, semicolons, spaces or
    tabs) find each of them. A search that finds nothing says why instead of a bare zero."""

    search_help_text: Any = (
        "Session id, share token or email (exact); several session ids separated by commas,"
        " spaces or semicolons."
    )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        tokens = [t for t in ID_SEPARATORS.split(term) if t]
        parsed = [_uuid(t) for t in tokens]
        ids = [i for i in dict.fromkeys(parsed) if i is not None]
        if len(tokens) > 1 and None not in parsed:
            found = queryset.filter(id__in=ids)
            present = set(found.values_list("id", flat=True))
            missing = [i for i in ids if i not in present]
            if missing:
                tell_once(
                    request,
                    f"{len(missing)} of the {len(ids)} session ids searched for "
                    f"{'is' if len(missing) == 1 else 'are'} not in this list: "
                    + ", ".join(str(m) for m in missing[:50])
                    + (f" (and {len(missing) - 50} more)" if len(missing) > 50 else "")
                    + self._elsewhere(missing),
                )
            return found, False
        condition = Q(share_token=term) | Q(email=term)
        if term.lower() != term:
            condition |= Q(email=term.lower())
        sid = _uuid(term)
        if sid:
            condition |= Q(id=sid)
        found = queryset.filter(condition)
        if not found.exists():
            tell_once(request, self._nothing_found(term, sid, tokens))
        return found, False

    def _nothing_found(self, term: str, sid: UUID | None, tokens: list[str]) -> str:
        shown = term if len(term) <= 80 else term[:80] + "…"
        if sid:
            return f"No session in this list has the id {sid}." + self._elsewhere([sid])
        if len(tokens) > 1:
            bad = [t for t in tokens if not _uuid(t)]
            return (
                f"Nothing matches {shown!r}: to search for several sessions, give only session ids"
                f" (not a session id: {', '.join(repr(t[:40]) for t in bad[:10])})."
            )
        what = (
            f"{shown!r} is not a session id (a UUID: 32 hexadecimal digits, e.g."
            " 0e3b1c7a-1d2e-4b8f-9a0b-123456789abc)"
        )
        return (
            f"Nothing matches: {what}, and no session has it as its share token or email (exact)."
        )

    def _elsewhere(self, ids: list[UUID]) -> str:
        """For the orphan list: the sessions that exist but are not orphans, said so."""
        from remediation.models import AssessmentSession

        if getattr(self, "model", AssessmentSession) is AssessmentSession:
            return ""
        exist = list(AssessmentSession.objects.filter(id__in=ids).values_list("id", flat=True))
        if not exist:
            return " No session has that id in the pipeline database." if len(ids) == 1 else ""
        return (
            f" {len(exist)} of them exist{'s' if len(exist) == 1 else ''} but "
            f"{'is' if len(exist) == 1 else 'are'} not orphaned (see Assessment sessions): "
            + ", ".join(str(e) for e in exist[:10])
            if len(ids) > 1
            else " The session exists but is not orphaned (see Assessment sessions)."
        )


def _uuid(text: str) -> UUID | None:
    try:
        return UUID(text.strip("\"'"))
    except ValueError:
        return None


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
