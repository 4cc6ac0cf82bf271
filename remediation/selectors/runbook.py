"""The IR-07 runbook's steps in order, with their evidence, from what is stored and live.

Reads only: the test session's diagnosis shown here is the latest stored one (with its
time); diagnosing again is a POST (the runbook's "Diagnose" button, or applying a fix).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from remediation import display
from remediation.fixes import executor
from remediation.models import RunbookRecord, SessionDiagnosis
from remediation.selectors.checks import FAIL, Check, run_checks
from remediation.selectors.health import CONVERSION_TARGET, conversion
from remediation.selectors.sessions import newest_orphan_id, orphaned_sessions


def stored_test_session_diagnosis() -> dict[str, Any]:
    """The newest orphan and its latest stored diagnosis (never a new one)."""
    sid = newest_orphan_id()
    if sid is None:
        return {
            "session_id": None,
            "category": "no_orphans",
            "sqlstate": "",
            "explanation": "No orphaned session left.",
            "checked_at": None,
        }
    d = SessionDiagnosis.objects.filter(session_id=sid).first()
    if d is None:
        return {
            "session_id": sid,
            "category": "not diagnosed yet",
            "sqlstate": "",
            "explanation": "Press Diagnose to try the write (rolled back).",
            "checked_at": None,
        }
    return {
        "session_id": sid,
        "category": d.category,
        "sqlstate": d.sqlstate,
        "explanation": d.explanation,
        "checked_at": d.checked_at,
    }


def steps(checks: dict[str, Check] | None = None) -> list[dict[str, Any]]:
    """checks → Fix A → verify → Fix D → verify → Fix E → verify → backfill → success criteria."""
    checks = checks if checks is not None else {c.key: c for c in run_checks()}
    diagnosis = stored_test_session_diagnosis()
    return [
        _checks_step(),
        *_fix_steps(checks, diagnosis),
        _backfill_step(diagnosis),
        _success_step(),
    ]


def _checks_step() -> dict[str, Any]:
    last = RunbookRecord.objects.filter(kind="checks").first()
    return {
        "key": "checks",
        "title": "Run the checks",
        "state": "done" if last else "to do",
        "evidence": f"checks #{last.pk} at {display.when(last.created_at)}" if last else "",
    }


def _causes(checks: dict[str, Check]) -> dict[str, tuple[bool, str]]:
    """Whether each fix's cause is present in this database, with the evidence."""
    bypass = checks["service_role_bypassrls"].figure
    policies = checks["policy_count"].figure
    return {
        "A": (
            bypass != "true" and policies == "0",
            f"service_role BYPASSRLS {bypass}; {policies} policies on profiles",
        ),
        "D": (checks["check_constraints"].status == FAIL, checks["check_constraints"].detail),
        "E": (checks["triggers"].status == FAIL, checks["triggers"].detail),
    }


def _fix_steps(checks: dict[str, Check], diagnosis: dict[str, Any]) -> list[dict[str, Any]]:
    changes = {
        r.results.get("fix"): r
        # Oldest first, so each fix keeps its newest record.
        for r in RunbookRecord.objects.filter(kind="change")
        .exclude(results__fix=None)
        .order_by("created_at", "pk")
    }
    when = diagnosis["checked_at"]
    reason = display.reason(diagnosis["category"], diagnosis["sqlstate"])
    now_text = f"test session: {reason}" + (f" (diagnosed {display.when(when)})" if when else "")
    causes = _causes(checks)
    applied_fixes = executor.applied()
    out = []
    for fix in ("A", "D", "E"):
        applied = fix in applied_fixes
        cause, evidence = causes[fix]
        record = changes.get(fix)
        before_after = ""
        if record is not None:
            before = record.results.get("diagnosis_before", {}).get("category", "?")
            after = record.results.get("diagnosis_after", {}).get("category", "?")
            before_after = (
                f"diagnosis before: {display.words(before)}, after: {display.words(after)}"
            )
            if record.results.get("outcome") == "refused":
                action = record.results.get("action", "run")
                before_after = f"the last {action} was refused; nothing changed ({before_after})"
        out.append(
            {
                "key": f"fix_{fix.lower()}",
                "fix": fix,
                "title": executor.TITLES[fix],
                "state": "applied" if applied else "needed" if cause else "not needed",
                "evidence": evidence,
                "before_after": before_after,
                "applied": applied,
            }
        )
        out.append(
            {
                "key": f"verify_{fix.lower()}",
                "title": f"Verify after Fix {fix}",
                "state": "live",
                "evidence": now_text,
            }
        )
    return out


def _backfill_step(diagnosis: dict[str, Any]) -> dict[str, Any]:
    orphans = orphaned_sessions().count()
    ready = "ready" if diagnosis["category"] == "would_succeed" else "blocked"
    state = "done" if orphans == 0 else ready
    return {
        "key": "backfill",
        "title": "Backfill the orphans",
        "state": state,
        "evidence": f"{display.count(orphans, 'orphaned session')}; the test session:"
        f" {display.words(diagnosis['category'])}",
    }


def _success_step() -> dict[str, Any]:
    now = timezone.now()
    completed, converted = conversion(now - timedelta(days=7), now)
    rate = converted / completed if completed else None
    figure = (
        f"{converted}/{completed} = {rate:.1%}" if rate is not None else "no completed sessions"
    )
    return {
        "key": "success",
        "title": "Success criteria: conversion above 90 % (7 days)",
        "state": "met" if rate is not None and rate > CONVERSION_TARGET else "not met",
        "evidence": figure,
    }
