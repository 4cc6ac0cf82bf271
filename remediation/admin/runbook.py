"""The IR-07 runbook page (/admin/runbook/): checks, probe, verification, fixes, gates, records
and the Markdown export. A page view only reads; every button is a POST, except the fixes
and the gates, which lead to a confirmation page first (Django's delete_selected pattern):
a GET, or a POST without `confirm=yes`, shows the SQL and the objects it touches and
changes nothing; the POST with `confirm=yes` does it."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from remediation import display
from remediation.admin.base import ReadOnlyAdmin
from remediation.admin.permissions import RUN_RUNBOOK, has_perm
from remediation.fixes import executor
from remediation.fixes.forms import DEFAULT_FORM, FORMS
from remediation.models import RunbookRecord
from remediation.pipeline.timeouts import PipelineTimeout
from remediation.selectors.checks import FAIL, STRICT_POLICY_SQL, Check, run_checks
from remediation.selectors.config import configured_results_version, system_status
from remediation.selectors.fix_preview import fix_preview, fix_states, sql_quote
from remediation.selectors.runbook import steps
from remediation.selectors.sessions import newest_orphan_id
from remediation.services import InvalidSessionId, normalize_session_id
from remediation.services.fixes import fix_apply
from remediation.services.gates import (
    RESULTS_VERSION_SQL,
    SYSTEM_STATUS_SQL,
    maintenance_set,
    maintenance_value,
    results_version_set,
)
from remediation.services.probe import probe_write_path
from remediation.services.runbook import runbook_record_save, runbook_verify, test_session_diagnose

VIEW = "remediation.view_runbookrecord"


def can_run_runbook(request: HttpRequest) -> bool:
    return has_perm(request, RUN_RUNBOOK)


def can_view_runbook(request: HttpRequest) -> bool:
    return has_perm(request, VIEW) or can_run_runbook(request)


def _save(
    request: HttpRequest, kind: str, results: dict[str, Any], label: str = ""
) -> RunbookRecord:
    return runbook_record_save(user=request.user, kind=kind, results=results, label=label)


@admin.register(RunbookRecord)
class RunbookRecordAdmin(ReadOnlyAdmin):
    """Saved records are listed on the runbook page; the changelist leads there."""

    list_display = ("id", "kind", "label", "created_at", "created_by_name")

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:runbook"))


def current_state(checks: dict[str, Check]) -> dict[str, Any]:
    """Fix state and gates, from the checks the page has just run."""
    state: dict[str, Any] = {}
    try:
        state["applied"] = executor.applied()
    except PipelineTimeout:
        raise  # one 503 for the page (opsportal.middleware), not a wait per read
    except DatabaseError as exc:
        state["error"] = str(exc).splitlines()[0]
        state["applied"] = set()
    state["fix_a"] = "A" in state["applied"]
    state["fix_a_form"] = None
    if state["fix_a"]:
        try:
            chosen = executor.applied_form()
        except PipelineTimeout:
            raise
        except DatabaseError:
            chosen = None
        state["fix_a_form"] = FORMS.get(chosen or "")
    for key in ("results_version", "system_status"):
        if key in checks:
            state[key] = checks[key].figure
    return state


def runbook_page(request: HttpRequest) -> HttpResponse:
    if not can_view_runbook(request):
        raise PermissionDenied
    latest = {k: RunbookRecord.objects.filter(kind=k).first() for k in RunbookRecord.Kind.values}
    # One run of the checks serves the state line and the steps.
    checks = {c.key: c for c in run_checks()}
    try:
        step_list = steps(checks)
    except PipelineTimeout:
        raise
    except DatabaseError as exc:
        step_list = [
            {
                "key": "error",
                "title": "The pipeline database refused",
                "state": "error",
                "evidence": str(exc),
            }
        ]
    context = {
        **admin.site.each_context(request),
        "title": "IR-07 runbook",
        "opts": RunbookRecord._meta,
        "latest": latest,
        "records": RunbookRecord.objects.all()[:50],
        "check_records": RunbookRecord.objects.filter(kind="checks")[:50],
        "state": current_state(checks),
        "steps": step_list,
        "can_run": can_run_runbook(request),
        "strict_policy": STRICT_POLICY_SQL,
        "fix_a_forms": list(FORMS.values()),
        "fixes": [(name, executor.FIXES[name], executor.TITLES[name]) for name in executor.FIXES],
    }
    return TemplateResponse(request, "admin/remediation/runbook.html", context)


def _diagnose(request: HttpRequest, label: str) -> str:
    result = test_session_diagnose()
    found = f"{result['category']} {result['sqlstate']}".strip()
    return f"Test session {result['session_id']}: {found}."


def _checks(request: HttpRequest, label: str) -> str:
    checks = run_checks()
    _save(request, "checks", {"checks": [c.__dict__ for c in checks]}, label)
    failing = [c.title for c in checks if c.status == FAIL]
    return f"Checks saved: {len(checks)} run, {len(failing)} FAIL."


def _probe(request: HttpRequest, label: str) -> str:
    _save(request, "probe", probe_write_path(), label)
    return "Write-path probe saved."


def _verify(request: HttpRequest, label: str) -> str:
    raw = request.POST.get("session_id", "").strip()
    session_id = normalize_session_id(raw) if raw else None
    result = runbook_verify(session_id=session_id, actor=request.user)
    _save(request, "verification", result, label or f"session {result['session_id']}")
    return f"Verification saved for session {result['session_id']}."


class ActionRefused(Exception):
    """An action that changed nothing; its message (safe HTML) is shown as an error."""

    def __init__(self, html: SafeString) -> None:
        super().__init__(str(html))
        self.html = html


def refusal_html(result: dict[str, Any]) -> SafeString:
    """A refused fix as the page says it: what, why, and each offending row as a link to
    its session (at most the fix's row cap per constraint, then "and N more")."""
    refusal = result["refusal"]
    violations = refusal.get("violations") or []
    if not violations:
        return format_html("{} (nothing was changed)", result["change"])
    html = format_html(
        "Fix {} {} refused; nothing was changed.", result["fix"], result.get("action", "")
    )
    for v in violations:
        links = format_html_join(
            ", ",
            "{}",
            (
                (
                    format_html(
                        '<a href="{}">{}</a>',
                        reverse("admin:remediation_assessmentsession_change", args=[sid]),
                        sid,
                    )
                    if sid
                    else format_html("profile {}", pid),
                )
                for pid, sid in v["rows"]
            ),
        )
        more = v["total"] - len(v["rows"])
        html += format_html(
            " {} ({}): {} profile{} written since would violate it, their sessions: {}{}.",
            v["constraint"],
            v["definition"],
            v["total"],
            "" if v["total"] == 1 else "s",
            links,
            format_html(" and {} more", more) if more > 0 else "",
        )
    return format_html("{} Re-score or correct those rows first, or keep the fix.", html)


def fixes_now(before: dict[str, bool], after: dict[str, bool]) -> str:
    """What happened to each fix, read from the database after the action: every fix is
    named, so a banner never mentions only the one that was asked for."""
    parts = []
    for name in executor.FIXES:
        state = "applied" if after[name] else "not applied"
        if before[name] == after[name]:
            parts.append(f"Fix {name} {state} (unchanged)")
        else:
            parts.append(f"Fix {name} {'applied now' if after[name] else 'rolled back now'}")
    return "Now: " + ", ".join(parts) + "."


def _fix(name: str, *, reverse: bool) -> Any:
    def handler(request: HttpRequest, label: str) -> str:
        form = None
        if name == "A" and not reverse:
            form = request.POST.get("form") or None
            if form is not None and form not in FORMS:
                raise ActionRefused(format_html("Unknown Fix A form {}: plan or strict.", form))
        before = fix_states()
        result = fix_apply(name, reverse=reverse, form=form)
        _save(request, "change", result, label)
        now = fixes_now(before, fix_states())
        if result["outcome"] == "refused":
            raise ActionRefused(format_html("{} {}", refusal_html(result), now))
        after = result["diagnosis_after"]
        session = f"The test session now: {after['category']} {after['sqlstate']}".strip()
        return f"{result['change']}. {session}. {now}"

    return handler


def _version(version: str) -> Any:
    def handler(request: HttpRequest, label: str) -> str:
        results_version_set(version=version)
        _save(
            request, "change", {"change": f"scoring_config.results_version set to {version}"}, label
        )
        return f"results_version is now {version}."

    return handler


def _maintenance(on: bool) -> Any:
    def handler(request: HttpRequest, label: str) -> str:
        maintenance_set(on=on, message=label, actor=request.user.get_username())
        _save(
            request,
            "change",
            {"change": f"maintenance {'on' if on else 'off'} (system_status)"},
            label,
        )
        return f"Maintenance {'on: finalize and backfill are paused' if on else 'off'}."

    return handler


ACTIONS = {
    "diagnose": _diagnose,
    "checks": _checks,
    "probe": _probe,
    "verify": _verify,
    "version_v121": _version("v1.2.1"),
    "version_v120": _version("v1.2.0"),
    "maintenance_on": _maintenance(True),
    "maintenance_off": _maintenance(False),
    **{f"apply_{name.lower()}": _fix(name, reverse=False) for name in executor.FIXES},
    **{f"rollback_{name.lower()}": _fix(name, reverse=True) for name in executor.FIXES},
}


# The actions that change the pipeline database: each asks first (runbook_confirm.html).
CONFIRMED = {
    "verify",
    "version_v121",
    "version_v120",
    "maintenance_on",
    "maintenance_off",
    *(f"{verb}_{name.lower()}" for verb in ("apply", "rollback") for name in executor.FIXES),
}


def confirm_context(request: HttpRequest, action: str) -> dict[str, Any]:
    """The confirmation page's preview of `action`, read from the live database."""
    params = request.POST if request.method == "POST" else request.GET
    label = params.get("label", "").strip()[:200]
    context: dict[str, Any] = {
        "action": action,
        "label": label,
        "fix": None,
        "gate": None,
        "verify": None,
    }
    if action == "verify":
        context.update(verify_preview(params.get("session_id", "").strip()))
        return context
    verb, _, rest = action.partition("_")
    if verb in ("apply", "rollback"):
        name = rest.upper()
        preview = fix_preview(name, reverse=verb == "rollback")
        chosen = params.get("form") or DEFAULT_FORM
        context.update(
            title=f"{'Roll back' if preview.reverse else 'Apply'} Fix {name}?",
            confirm_label=f"Yes, {'roll back' if preview.reverse else 'apply'} Fix {name}",
            fix=preview,
            chosen_form=chosen if chosen in FORMS else DEFAULT_FORM,
            states=fix_states(),
        )
        return context
    if verb == "version":
        version = {"version_v121": "v1.2.1", "version_v120": "v1.2.0"}[action]
        current = configured_results_version()
        gate: dict[str, Any] = {
            "name": "scoring_config.results_version",
            "now": current,
            "new": version,
            "statements": [RESULTS_VERSION_SQL.replace("%s", sql_quote(version))],
            "effect": "new profiles carry this results_version; the runbook's checks compare"
            " against it",
        }
        context.update(
            title=f"Set results_version to {version}?",
            confirm_label=f"Yes, set results_version to {version}",
            gate=gate,
        )
        return context
    on = action == "maintenance_on"
    value = maintenance_value(on=on, message=label, actor=request.user.get_username())
    value["last_updated"] = "(the time you confirm)"
    gate = {
        "name": "scoring_config.system_status",
        "now": system_status(),
        "new": value,
        "statements": [SYSTEM_STATUS_SQL.replace("%s", sql_quote(json.dumps(value)))],
        "effect": "finalize and backfill pause while the status is not ok"
        if on
        else "finalize and backfill run again",
    }
    context.update(
        title=f"Maintenance {'on' if on else 'off'}?",
        confirm_label=f"Yes, maintenance {'on' if on else 'off'}",
        gate=gate,
    )
    return context


def verify_preview(raw: str) -> dict[str, Any]:
    """What "Finalize a test session and verify" writes: which session (the one given, or
    the newest orphan), its state and latest diagnosis, and the rows a finalize writes."""
    from remediation import selectors
    from remediation.models import AssessmentSession, Profile

    session_id = normalize_session_id(raw) if raw else None  # InvalidSessionId: the caller
    chosen = session_id or newest_orphan_id()
    session = AssessmentSession.objects.filter(pk=chosen).first() if chosen else None
    verify: dict[str, Any] = {
        "given": session_id,
        "session": session,
        "missing": bool(chosen) and session is None,
        "profile": Profile.objects.filter(session=session).first() if session else None,
        "diagnosis": selectors.stored_diagnoses([chosen]).get(str(chosen)) if session else None,
        "results_version": configured_results_version(),
        "writes": [
            "public.profiles: INSERT the scored profile (ON CONFLICT (session_id) keeps an"
            " existing one: no re-score, no second profile)",
            "public.assessment_sessions: UPDATE the session's finalize columns that exist"
            " here (finalized_at, share token expiry, completed_questions, updated_at); never"
            " completed_at, never an existing share token",
            "public.fc_scores: INSERT or UPDATE the session's FC score, when it has FC responses",
        ],
    }
    return {
        "title": "Finalize a test session and verify?",
        "confirm_label": "Yes, finalize this session and verify",
        "verify": verify,
        "session_id": session_id or "",
    }


def runbook_confirm(request: HttpRequest, action: str) -> HttpResponse:
    """The confirmation page: reads only, whatever the method."""
    try:
        preview = confirm_context(request, action)
    except InvalidSessionId as exc:
        messages.error(request, str(exc))
        return HttpResponseRedirect(reverse("admin:runbook"))
    except PipelineTimeout:
        raise  # one 503 for the page (opsportal.middleware)
    except DatabaseError as exc:
        messages.error(request, f"The database refused the preview: {str(exc).splitlines()[0]}")
        return HttpResponseRedirect(reverse("admin:runbook"))
    context = {
        **admin.site.each_context(request),
        "opts": RunbookRecord._meta,
        "fix_a_forms": list(FORMS.values()),
        **preview,
    }
    return TemplateResponse(request, "admin/remediation/runbook_confirm.html", context)


def runbook_action(request: HttpRequest, action: str) -> HttpResponse:
    """POST one of ACTIONS; the outcome (or the database's refusal) as a message. A
    CONFIRMED action without `confirm=yes` (or a GET of it) shows its confirmation page."""
    if action in CONFIRMED:
        if not can_run_runbook(request):
            raise PermissionDenied
        if request.method != "POST" or request.POST.get("confirm") != "yes":
            return runbook_confirm(request, action)
    if request.method != "POST":
        return HttpResponse(status=405)
    if not can_run_runbook(request) or action not in ACTIONS:
        raise PermissionDenied
    try:
        messages.success(request, ACTIONS[action](request, request.POST.get("label", "").strip()))
    except InvalidSessionId as exc:
        messages.error(request, str(exc))
    except ActionRefused as exc:
        messages.error(request, exc.html)
    except PipelineTimeout:
        raise  # 503 with the timeout's message (opsportal.middleware.PipelineTimeoutMiddleware)
    except DatabaseError as exc:
        messages.error(request, f"The database refused: {str(exc).splitlines()[0]}")
    return HttpResponseRedirect(reverse("admin:runbook"))


def runbook_compare(request: HttpRequest) -> HttpResponse:
    if not can_view_runbook(request):
        raise PermissionDenied
    ids = [request.GET.get(k, "") for k in ("a", "b")]
    if not all(i.isdigit() for i in ids):
        raise Http404("choose two saved check runs")
    a = get_object_or_404(RunbookRecord, pk=int(ids[0]), kind="checks")
    b = get_object_or_404(RunbookRecord, pk=int(ids[1]), kind="checks")
    left = {c["key"]: c for c in a.results.get("checks", [])}
    right = {c["key"]: c for c in b.results.get("checks", [])}
    rows = [(k, left.get(k), right.get(k)) for k in dict.fromkeys([*left, *right])]
    context = {
        **admin.site.each_context(request),
        "title": f"Checks #{a.pk} vs #{b.pk}",
        "opts": RunbookRecord._meta,
        "a": a,
        "b": b,
        "rows": rows,
    }
    return TemplateResponse(request, "admin/remediation/runbook_compare.html", context)


def runbook_export(request: HttpRequest) -> HttpResponse:
    if not can_view_runbook(request):
        raise PermissionDenied
    ids = [int(x) for x in request.GET.getlist("id") if x.isdigit()]
    records = (
        list(RunbookRecord.objects.filter(pk__in=ids).order_by("created_at"))
        if ids
        else list(RunbookRecord.objects.order_by("created_at"))
    )
    response = HttpResponse(markdown(records), content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="ir07-incident-record.md"'
    return response


def markdown(records: list[Any]) -> str:
    """An incident record of saved runs (checks and verifications), side by side."""
    lines = ["# IR-07 incident record", ""]
    for r in records:
        lines += [
            f"## {r.get_kind_display()} #{r.pk}: {r.label or ''}".rstrip(": "),
            f"{display.when(r.created_at)} by {r.created_by_name or 'system'}",
            "",
        ]
        checks = r.results.get("checks", [])
        if checks:
            lines += ["| check | status | figure | expected |", "|---|---|---|---|"]
            for c in checks:
                lines.append(
                    f"| {c['title']} | {c['status']} | {_md(c['figure'])} | {_md(c['expected'])} |"
                )
            lines.append("")
            for c in checks:
                if c.get("detail"):
                    lines.append(f"- **{c['title']}**: {_md(c['detail'])}")
            lines.append("")
        if r.results.get("cells"):
            lines += ["| role | claim | SELECT | INSERT |", "|---|---|---|---|"]
            for c in r.results["cells"]:
                lines.append(f"| {c['role']} | {c['claim']} | {c['select']} | {c['insert']} |")
            lines += ["", *[f"- {n}" for n in r.results.get("notes", [])], ""]
        if r.results.get("change"):
            lines += [f"- {r.results['change']}", ""]
    return "\n".join(lines)


def _md(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def runbook_orphan_ledger(request: HttpRequest) -> HttpResponse:
    """GET: the orphan ledger's state and the exact SQL creating, refreshing or dropping it
    would run; a POST of an action (create, refresh or drop) without `confirm=yes`: the
    confirmation page of that action (its SQL, what it does); with it: do it, audited,
    back to the runbook."""
    from remediation.services.orphan_ledger import (
        orphan_ledger_create,
        orphan_ledger_drop,
        orphan_ledger_refresh,
    )

    if not can_view_runbook(request):
        raise PermissionDenied
    if request.method == "POST":
        if not can_run_runbook(request):
            raise PermissionDenied
        action = request.POST.get("action", "")
        if action not in LEDGER_ACTIONS:
            return HttpResponse("Unknown action.", status=400)
        if request.POST.get("confirm") != "yes":
            return _ledger_page(request, confirming=action)
        try:
            if action == "create":
                result = orphan_ledger_create(actor=request.user)
                messages.success(
                    request,
                    f"Orphan ledger created: {result['added']:,} orphans in {result['seconds']} s.",
                )
            elif action == "refresh":
                refreshed = orphan_ledger_refresh(actor=request.user)
                if refreshed is None:
                    messages.error(
                        request, "There is no orphan ledger to refresh: create it first."
                    )
                else:
                    messages.success(
                        request,
                        f"Orphan ledger refreshed: {refreshed['added']:,} added,"
                        f" {refreshed['removed']:,} removed in {refreshed['seconds']} s.",
                    )
            else:
                orphan_ledger_drop(actor=request.user)
                messages.success(
                    request, "Orphan ledger dropped: the list reads the plain definition."
                )
        except DatabaseError as exc:
            messages.error(
                request,
                f"The database refused, nothing changed: {str(exc).splitlines()[0]}",
            )
        return HttpResponseRedirect(reverse("admin:runbook"))
    return _ledger_page(request)


LEDGER_ACTIONS = {
    "create": "Create the orphan ledger",
    "refresh": "Refresh the orphan ledger",
    "drop": "Drop the orphan ledger",
}


def _ledger_page(request: HttpRequest, confirming: str = "") -> HttpResponse:
    """The ledger's state and SQL; with `confirming`, the confirmation of that action."""
    from remediation.selectors import orphan_ledger

    try:
        state = orphan_ledger.ledger_state()
        error = ""
    except DatabaseError as exc:
        state, error = orphan_ledger.LedgerState(exists=False), str(exc).splitlines()[0]
    context = {
        **admin.site.each_context(request),
        "title": f"{LEDGER_ACTIONS[confirming]}?" if confirming else "Orphan ledger",
        "confirming": confirming,
        "confirm_label": f"Yes, {LEDGER_ACTIONS[confirming].lower()}" if confirming else "",
        "opts": RunbookRecord._meta,
        "state": state,
        "error": error,
        "can_run": can_run_runbook(request),
        "sql": [
            *([] if state.exists else orphan_ledger.ledger_ddl()),
            *orphan_ledger.refresh_sql(),
        ],
        "baseline_sql": orphan_ledger.BASELINE_SQL,
        "drop_sql": orphan_ledger.drop_sql(),
        "refresh_minutes": settings.ORPHAN_LEDGER_REFRESH_MINUTES,
    }
    return TemplateResponse(request, "admin/remediation/runbook_orphan_ledger.html", context)
