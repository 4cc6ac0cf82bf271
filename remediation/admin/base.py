"""Admin building blocks: read-only admins, a capped-count paginator, a date-range filter."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import MultipleObjectsReturned
from django.core.paginator import Paginator
from django.db import connections
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from remediation.pipeline.schema import missing_fields


class FastCheckboxAdmin(admin.ModelAdmin):
    """The action checkbox of each list row as plain HTML: the same markup as Django's,
    without a form widget's template render per row (a third of a 100-row orphan page)."""

    def action_checkbox(self, obj: Any) -> SafeString:
        label = format_html(_("Select this object for an action - {}"), str(obj))
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            ACTION_CHECKBOX_NAME,
            str(obj.pk),
            label,
        )


class LiveColumnsAdmin(FastCheckboxAdmin):
    """Leaves out of lists, pages, filters and search the fields whose column the live
    pipeline table lacks, so every page works on a database that differs from the emulation."""

    def missing(self) -> set[str]:
        return set(missing_fields(self.model))

    def _keep(self, names: Any) -> list[Any]:
        missing = self.missing()
        return [n for n in names if not (isinstance(n, str) and n.lstrip("=^@") in missing)]

    def get_list_display(self, request: Any) -> Any:
        return self._keep(super().get_list_display(request))

    def get_list_filter(self, request: Any) -> Any:
        missing = self.missing()
        return [
            f
            for f in super().get_list_filter(request)
            if not (isinstance(f, tuple) and f[0] in missing) and f not in missing
        ]

    def get_search_fields(self, request: Any) -> Any:
        return self._keep(super().get_search_fields(request))

    def get_search_results(self, request: Any, queryset: Any, search_term: str) -> Any:
        """Django's search; one that finds nothing says why (a malformed id, not a number)."""
        found, duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term and not found.exists():
            tell_once(request, search_feedback(self.model, self.get_search_fields(request), term))
        return found, duplicates

    def get_readonly_fields(self, request: Any, obj: Any = None) -> Any:
        return self._keep(super().get_readonly_fields(request, obj))

    def get_fields(self, request: Any, obj: Any = None) -> Any:
        return self._keep(super().get_fields(request, obj))

    def get_fieldsets(self, request: Any, obj: Any = None) -> Any:
        return [
            (name, {**options, "fields": self._keep(options.get("fields", ()))})
            for name, options in super().get_fieldsets(request, obj)
        ]


def search_feedback(model: Any, fields: Any, term: str) -> str:
    """Why a search for `term` over `fields` found nothing, in words: the exact-match fields
    the term cannot be a value of (not a UUID, not a number), and what else was searched."""
    from django.core.exceptions import FieldDoesNotExist
    from django.db import models

    shown = term if len(term) <= 80 else term[:80] + "…"
    wrong, searched = [], []
    for name in fields:
        path = name.lstrip("=^@")
        label = path.replace("__", " ").replace("_", " ")
        try:
            field = model._meta.get_field(path.split("__")[0])
            if "__" in path and field.is_relation:
                field = field.related_model._meta.get_field(path.split("__")[1])
        except FieldDoesNotExist:
            searched.append(label)
            continue
        if isinstance(field, models.UUIDField) and not _is_uuid(term):
            wrong.append(f"not a UUID ({label})")
            continue
        if isinstance(field, (models.IntegerField, models.AutoField)) and not term.isdigit():
            wrong.append(f"not a number ({label})")
            continue
        searched.append(f"{label} ({'exact' if name.startswith('=') else 'contains'})")
    text = f"Nothing matches {shown!r}"
    if wrong:
        text += ": it is " + ", ".join(wrong)
    if searched:
        text += ("; " if wrong else ": ") + "no row has it in " + ", ".join(searched)
    return text + "."


def _is_uuid(text: str) -> bool:
    from uuid import UUID

    try:
        UUID(text)
    except ValueError:
        return False
    return True


def tell_once(request: Any, text: str, level: int = 30) -> None:
    """A warning on the list page this request renders, once (a changelist may build its
    queryset more than once; exports and background starts build it too and say nothing)."""
    from django.contrib import messages

    if not str(getattr(request.resolver_match, "url_name", "")).endswith("_changelist"):
        return
    told: set[str] = request.__dict__.setdefault("_remediation_told", set())
    if text not in told:
        told.add(text)
        messages.add_message(request, level, text)


class ReadOnlyAdmin(LiveColumnsAdmin):
    """The pipeline's tables are viewed, never edited, through the admin."""

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def get_object(self, request: Any, object_id: str, from_field: str | None = None) -> Any:
        """None (the admin's "does not exist") where the key is not unique: the composite-key
        tables (type_prototypes, fc_responses, fc_scores) expose one key column as pk."""
        try:
            return super().get_object(request, object_id, from_field)
        except MultipleObjectsReturned:
            return None


def session_link(session_id: object) -> SafeString:
    """A session id as a link to its page (sessions are never deleted from the pipeline)."""
    url = reverse("admin:remediation_assessmentsession_change", args=[session_id])
    return format_html('<a href="{}">{}</a>', url, session_id)


class CappedCountPaginator(Paginator):
    """Counts exactly up to CAP rows, then uses the planner's estimate.

    A full count(*) over a million sessions on every page load is what makes admin
    lists slow; an exact figure past ten thousand rows helps nobody.
    """

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        qs: Any = self.object_list
        exact = qs[: self.CAP + 1].count()
        if exact <= self.CAP:
            return exact
        self.estimated = True
        sql, params = qs.query.sql_with_params()
        with connections[qs.db].cursor() as cursor:
            cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
            plan = cursor.fetchone()[0]
        if isinstance(plan, str):
            import json

            plan = json.loads(plan)
        return max(self.CAP + 1, int(plan[0]["Plan"]["Plan Rows"]))

    estimated = False


class DateRangeFilter(admin.FieldListFilter):
    """From/to date inputs on a datetime column (inclusive days, portal time zone)."""

    template = "admin/remediation/date_range_filter.html"

    def __init__(
        self, field: Any, request: Any, params: Any, model: Any, model_admin: Any, field_path: str
    ) -> None:
        self.lookup_from = f"{field_path}__from"
        self.lookup_to = f"{field_path}__to"
        self.field_path = field_path
        super().__init__(field, request, params, model, model_admin, field_path)
        # FieldListFilter.__init__ moved our parameters into used_parameters.
        self.values: dict[str, str] = {}
        for name in (self.lookup_from, self.lookup_to):
            raw = self.used_parameters.get(name)
            if raw:
                self.values[name] = str(raw[-1] if isinstance(raw, list) else raw)
        self.errors = [v for v in self.values.values() if v and _parse_date(v) is None]
        start = _parse_date(self.values.get(self.lookup_from, ""))
        end = _parse_date(self.values.get(self.lookup_to, ""))
        self.reversed = ""
        if start and end and start > end:
            from remediation.jobs.selection import reversed_range

            self.reversed = reversed_range(start, end)
            tell_once(request, f"{str(self.title).capitalize()}: {self.reversed}.")

    def expected_parameters(self) -> list[str | None]:
        return [self.lookup_from, self.lookup_to]

    def has_output(self) -> bool:
        return True

    def queryset(self, request: Any, queryset: Any) -> Any:
        start = _parse_date(self.values.get(self.lookup_from, ""))
        end = _parse_date(self.values.get(self.lookup_to, ""))
        tz = timezone.get_current_timezone()
        if start:
            queryset = queryset.filter(
                **{f"{self.field_path}__gte": datetime.combine(start, time.min, tzinfo=tz)}
            )
        if end:
            queryset = queryset.filter(
                **{
                    f"{self.field_path}__lt": datetime.combine(
                        end + timedelta(days=1), time.min, tzinfo=tz
                    )
                }
            )
        return queryset

    def choices(self, changelist: Any) -> Any:
        others = [
            (k, v)
            for k, v in changelist.get_filters_params().items()
            if k not in (self.lookup_from, self.lookup_to)
        ]
        hidden = []
        for k, v in others:
            for item in v if isinstance(v, list) else [v]:
                hidden.append((k, item))
        for key in ("q", "o"):
            if key in changelist.params:
                hidden.append((key, changelist.params[key]))
        yield {
            "from_name": self.lookup_from,
            "to_name": self.lookup_to,
            "from_value": self.values.get(self.lookup_from, ""),
            "to_value": self.values.get(self.lookup_to, ""),
            "hidden": hidden,
            "errors": self.errors,
            "reversed": self.reversed,
            "clear_url": changelist.get_query_string(remove=[self.lookup_from, self.lookup_to]),
        }


def _parse_date(value: str) -> date | None:
    try:
        return date.fromisoformat(value.strip())
    except (ValueError, AttributeError):
        return None


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection); OWASP's
# remedy is a leading single quote, which the spreadsheet shows as text and never evaluates.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A text cell that a spreadsheet would evaluate, prefixed with a single quote; other
    values (numbers, dates, ids) unchanged: a number's minus sign is not a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_response(filename: str, header: list[str], rows: Any) -> Any:
    """A streamed CSV download: the header, then each row of the iterable as it comes.

    Every export goes through here, so every text cell is neutralised (csv_cell)."""
    import csv

    from django.http import StreamingHttpResponse

    class Echo:
        def write(self, value: str) -> str:
            return value

    writer = csv.writer(Echo())

    def lines() -> Any:
        yield writer.writerow([csv_cell(c) for c in header])
        for row in rows:
            yield writer.writerow([csv_cell(c) for c in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
