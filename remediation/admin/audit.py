"""The audit trail in the admin: viewable, filterable, exportable; never editable or deletable."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from remediation.admin.base import ReadOnlyAdmin, csv_response, session_link
from remediation.models import AuditEvent

RUN_TARGET = re.compile(r"^run #(\d+)$")


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor", "action", "target_link", "session_count", "outcome")
    list_filter = ("action", "outcome", "actor")
    search_fields = ("actor", "action", "target", "outcome")
    date_hierarchy = "at"
    change_list_template = "admin/remediation/auditevent/change_list.html"

    @admin.display(description="target", ordering="target")
    def target_link(self, obj: AuditEvent) -> SafeString | str:
        """A run or a session as a link to its page; any other target as text."""
        run = RUN_TARGET.match(obj.target)
        if run:
            url = reverse("admin:remediation_backfillrun_change", args=[run.group(1)])
            return format_html('<a href="{}">{}</a>', url, obj.target)
        try:
            return session_link(uuid.UUID(obj.target))
        except ValueError:
            return obj.target

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        return {}  # no bulk delete, nothing else

    def get_urls(self) -> list[Any]:
        export = self.admin_site.admin_view(self.export_view)
        return [
            path("export.csv", export, name="remediation_auditevent_export"),
            *super().get_urls(),
        ]

    def export_view(self, request: HttpRequest) -> Any:
        """The records the list shows (its filters and search), as CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        queryset = self.get_changelist_instance(request).get_queryset(request).order_by("at")

        columns = [
            "at",
            "actor",
            "action",
            "target",
            "session_count",
            "sessions",
            "outcome",
            "detail",
        ]
        rows = (
            [
                e.at.isoformat(),
                e.actor,
                e.action,
                e.target,
                e.session_count,
                " ".join(e.sessions),
                e.outcome,
                json.dumps(e.detail),
            ]
            for e in queryset.iterator(chunk_size=2000)
        )
        return csv_response("audit-trail.csv", columns, rows)
