"""The portal's admin site: Django's, plus pages at URLs that name them (/admin/runbook/,
/admin/health/). `opsportal.apps.OpsAdminConfig` makes it `admin.site`."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.urls import path


class OpsAdminSite(admin.AdminSite):
    site_header = "PRISM ops portal"
    site_title = "PRISM ops portal"
    index_title = "Pipeline operations"

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
