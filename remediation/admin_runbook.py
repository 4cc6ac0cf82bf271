"""The IR-07 runbook page: checks, probe, verification, fixes, gates, records and exports."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.models import ADDITION, LogEntry
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from remediation import runbook
from remediation.admin_utils import ReadOnlyAdmin
from remediation.models import RunbookRecord
from remediation.services import InvalidSessionId, normalize_session_id

RUNBOOK_PERMISSION = "remediation.run_runbook"


def can_run_runbook(request: HttpRequest) -> bool:
    return bool(
        request.user.is_active
        and request.user.is_staff
        and request.user.has_perm(RUNBOOK_PERMISSION)
    )


def save_record(
    request: HttpRequest | None, kind: str, results: dict[str, Any], label: str = ""
) -> RunbookRecord:
    """Every run of the runbook is kept (who, when, what, evidence) and logged."""
    from remediation.audit import audit

    user = getattr(request, "user", None) if request else None
    audit(
        user if user is not None else "cli", f"runbook.{kind}", target=label or kind,
        sessions=[results["session_id"]] if results.get("session_id") else [],
        outcome=str(results.get("change", "saved"))[:60],
        detail={k: v for k, v in results.items() if k in ("change", "diagnosis_before", "diagnosis_after", "fix")},
    )  # fmt: skip
    record = RunbookRecord.objects.create(
        kind=kind,
        label=label[:200],
        results=results,
        created_by=user if user and user.is_authenticated else None,
        created_by_name=user.get_username() if user and user.is_authenticated else "cli",
    )
    if user and user.is_authenticated:
        LogEntry.objects.log_actions(
            user_id=user.pk, queryset=[record], action_flag=ADDITION,
            change_message=f"IR-07 {kind}: {label}"[:200], single_object=True,
        )  # fmt: skip
    return record


def current_state(checks: dict[str, runbook.Check]) -> dict[str, Any]:
    """Fix state and gates, from the checks the page has just run."""
    state: dict[str, Any] = {}
    try:
        state["fix_a"] = runbook.fix_state("A")
    except DatabaseError as exc:
        state["error"] = str(exc).splitlines()[0]
    for key in ("results_version", "system_status"):
        if key in checks:
            state[key] = checks[key].figure
    return state


class RunbookRecordAdmin(ReadOnlyAdmin):
    """The changelist is the runbook page; saved records are its history."""

    list_display = ("id", "kind", "label", "created_at", "created_by_name")

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("do/<str:action>/", wrap(self.action_view), name="remediation_runbook_action"),
            path("compare/", wrap(self.compare_view), name="remediation_runbook_compare"),
            path("export.md", wrap(self.export_view), name="remediation_runbook_export"),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        latest = {
            k: RunbookRecord.objects.filter(kind=k).first() for k in RunbookRecord.Kind.values
        }
        # One run of the checks serves the state line and the steps.
        checks = {c.key: c for c in runbook.run_checks()}
        try:
            steps = runbook.steps(checks)
        except DatabaseError as exc:
            steps = [
                {
                    "key": "error",
                    "title": "The pipeline database refused",
                    "state": "error",
                    "evidence": str(exc),
                }
            ]
        context = {
            **self.admin_site.each_context(request),
            "title": "IR-07 runbook",
            "opts": self.model._meta,
            "latest": latest,
            "records": RunbookRecord.objects.all()[:50],
            "check_records": RunbookRecord.objects.filter(kind="checks")[:50],
            "state": current_state(checks),
            "steps": steps,
            "can_run": can_run_runbook(request),
            "strict_policy": runbook.STRICT_POLICY_SQL,
        }
        return TemplateResponse(request, "admin/remediation/runbook.html", context)

    def action_view(self, request: HttpRequest, action: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponse(status=405)
        if not can_run_runbook(request):
            raise PermissionDenied
        back = HttpResponseRedirect(reverse("admin:remediation_runbookrecord_changelist"))
        label = request.POST.get("label", "").strip()
        try:
            if action == "checks":
                checks = runbook.run_checks()
                save_record(request, "checks", {"checks": [c.__dict__ for c in checks]}, label)
                failing = [c.title for c in checks if c.status == runbook.FAIL]
                messages.success(request, f"Checks saved: {len(checks)} run, {len(failing)} FAIL.")
            elif action == "probe":
                save_record(request, "probe", runbook.probe_write_path(), label)
                messages.success(request, "Write-path probe saved.")
            elif action == "verify":
                raw = request.POST.get("session_id", "").strip()
                session_id = normalize_session_id(raw) if raw else None
                result = runbook.verify(session_id=session_id, actor=request.user)
                save_record(
                    request, "verification", result, label or f"session {result['session_id']}"
                )
                messages.success(request, f"Verification saved for session {result['session_id']}.")
            elif (
                action.split("_")[0] in ("apply", "rollback")
                and action.split("_")[-1].upper() in runbook.FIXES
            ):
                fix = action.split("_")[-1].upper()
                result = runbook.apply_fix_with_evidence(fix, reverse=action.startswith("rollback"))
                save_record(request, "change", result, label)
                after = result["diagnosis_after"]
                messages.success(
                    request,
                    f"{result['change']}. The test session now: {after['category']} {after['sqlstate']}".strip(),
                )
            elif action in ("version_v121", "version_v120"):
                version = "v1.2.1" if action == "version_v121" else "v1.2.0"
                runbook.set_results_version(version)
                save_record(
                    request,
                    "change",
                    {"change": f"scoring_config.results_version set to {version}"},
                    label,
                )
                messages.success(request, f"results_version is now {version}.")
            elif action in ("maintenance_on", "maintenance_off"):
                on = action == "maintenance_on"
                runbook.set_maintenance(on, message=label, actor=request.user.get_username())
                save_record(
                    request,
                    "change",
                    {"change": f"maintenance {'on' if on else 'off'} (system_status)"},
                    label,
                )
                messages.success(
                    request,
                    f"Maintenance {'on: finalize and backfill are paused' if on else 'off'}.",
                )
            else:
                raise PermissionDenied
        except InvalidSessionId as exc:
            messages.error(request, str(exc))
        except DatabaseError as exc:
            messages.error(request, f"The database refused: {str(exc).splitlines()[0]}")
        return back

    def compare_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        ids = [request.GET.get(k, "") for k in ("a", "b")]
        if not all(i.isdigit() for i in ids):
            raise Http404("choose two saved check runs")
        a = get_object_or_404(RunbookRecord, pk=int(ids[0]), kind="checks")
        b = get_object_or_404(RunbookRecord, pk=int(ids[1]), kind="checks")
        left = {c["key"]: c for c in a.results.get("checks", [])}
        right = {c["key"]: c for c in b.results.get("checks", [])}
        rows = [(k, left.get(k), right.get(k)) for k in dict.fromkeys([*left, *right])]
        context = {**self.admin_site.each_context(request), "title": f"Checks #{a.pk} vs #{b.pk}",
                   "opts": self.model._meta, "a": a, "b": b, "rows": rows}  # fmt: skip
        return TemplateResponse(request, "admin/remediation/runbook_compare.html", context)

    def export_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        ids = [int(x) for x in request.GET.getlist("id") if x.isdigit()]
        records = (
            list(RunbookRecord.objects.filter(pk__in=ids).order_by("created_at"))
            if ids
            else list(RunbookRecord.objects.order_by("created_at"))
        )
        response = HttpResponse(
            runbook.markdown(records), content_type="text/markdown; charset=utf-8"
        )
        response["Content-Disposition"] = 'attachment; filename="ir07-incident-record.md"'
        return response


def register(site: admin.AdminSite) -> None:
    site.register(RunbookRecord, RunbookRecordAdmin)
