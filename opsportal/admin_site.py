"""The portal's admin site: Django's, plus pages at URLs that name them (/admin/runbook/,
/admin/health/). `opsportal.apps.OpsAdminConfig` makes it `admin.site`."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.urls import path, reverse


class OpsAdminSite(admin.AdminSite):
    site_header = "PRISM ops portal"
    site_title = "PRISM ops portal"
    index_title = "Pipeline operations"

    def index(self, request: Any, extra_context: dict[str, Any] | None = None) -> Any:
        """Django's index plus the Operations box: only the pages the user may open."""
        return super().index(
            request, {"operations": self.operations(request), **(extra_context or {})}
        )

    def operations(self, request: Any) -> list[dict[str, str]]:
        """The Operations pages (url, title, what it is for) the user has the permission of."""
        from remediation.admin import runbook, timeline
        from remediation.admin.permissions import has_perm
        from remediation.models import BackfillRun, OrphanedSession

        def changelist(model: Any) -> bool:
            model_admin = self._registry.get(model)
            return bool(model_admin and model_admin.has_view_or_change_permission(request))

        pages = [
            (
                "admin:remediation_orphanedsession_changelist",
                "Orphaned sessions",
                "completed, no profile, and why",
                changelist(OrphanedSession),
            ),
            (
                "admin:health",
                "Pipeline health",
                "conversion, FC fallback, write errors, alerts",
                has_perm(request, "remediation.view_alert"),
            ),
            (
                "admin:incident_timeline",
                "Incident timeline",
                "write-path canary, alerts, fixes, runs in time order; auto-heal",
                has_perm(request, timeline.VIEW),
            ),
            (
                "admin:runbook",
                "IR-07 runbook",
                "checks, probe, fixes, verification, rollback",
                runbook.can_view_runbook(request),
            ),
            (
                "admin:remediation_backfillrun_changelist",
                "Backfill runs",
                "bulk finalize as background jobs",
                changelist(BackfillRun),
            ),
        ]
        return [
            {"url": reverse(name), "title": title, "about": about}
            for name, title, about, allowed in pages
            if allowed
        ]

    def get_urls(self) -> list[Any]:
        from remediation.admin import health, runbook, timeline

        wrap = self.admin_view
        pages = [
            path("runbook/", wrap(runbook.runbook_page), name="runbook"),
            path("runbook/do/<str:action>/", wrap(runbook.runbook_action), name="runbook_action"),
            path("runbook/compare/", wrap(runbook.runbook_compare), name="runbook_compare"),
            path("runbook/export.md", wrap(runbook.runbook_export), name="runbook_export"),
            path(
                "runbook/orphan-ledger/",
                wrap(runbook.runbook_orphan_ledger),
                name="runbook_orphan_ledger",
            ),
            path("health/", wrap(health.health_page), name="health"),
            path("incident/", wrap(timeline.timeline_page), name="incident_timeline"),
            path(
                "incident/export.md",
                wrap(timeline.timeline_export),
                name="incident_timeline_export",
            ),
            path("incident/autoheal/", wrap(timeline.autoheal_switch), name="autoheal_switch"),
        ]
        return pages + super().get_urls()
