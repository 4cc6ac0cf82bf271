"""The IR-07 runbook's steps in order, with their evidence, from what is stored and live.

Reads only: the test session's diagnosis shown here is the latest stored one (with its
time); diagnosing again is a POST (the runbook's "Diagnose" button, or applying a fix).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

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
    changes = {
        r.results.get("fix"): r
        for r in RunbookRecord.objects.filter(kind="change").exclude(results__fix=None)
    }
    out: list[dict[str, Any]] = []
    last_checks = RunbookRecord.objects.filter(kind="checks").first()
    checks_evidence = (
        f"checks #{last_checks.pk} at {last_checks.created_at:%Y-%m-%d %H:%M}"
        if last_checks
        else ""
    )
    out.append(
        {
            "key": "checks",
            "title": "Run the checks",
            "state": "done" if last_checks else "to do",
            "evidence": checks_evidence,
        }
    )
    bypass = checks["service_role_bypassrls"].figure == "true"
    causes = {
        "A": (
            not bypass and checks["policy_count"].figure == "0",
            f"service_role BYPASSRLS {checks['service_role_bypassrls'].figure}; "
            f"{checks['policy_count'].figure} policies on profiles",
        ),
        "D": (checks["check_constraints"].status == FAIL, checks["check_constraints"].detail),
        "E": (checks["triggers"].status == FAIL, checks["triggers"].detail),
    }
    now_text = f"test session: {diagnosis['category']} {diagnosis['sqlstate']}".strip() + (
        f" (diagnosed {diagnosis['checked_at']:%Y-%m-%d %H:%M:%S %Z})"
        if diagnosis["checked_at"]
        else ""
    )
    applied_fixes = executor.applied()
    for fix in ("A", "D", "E"):
        applied = fix in applied_fixes
        cause, evidence = causes[fix]
        state = "applied" if applied else "needed" if cause else "not needed"
        record = changes.get(fix)
        before_after = ""
        if record is not None:
            before_after = (
                f"diagnosis before: {record.results.get('diagnosis_before', {}).get('category', '?')}, "
                f"after: {record.results.get('diagnosis_after', {}).get('category', '?')}"
            )
        out.append(
            {
                "key": f"fix_{fix.lower()}",
                "fix": fix,
                "title": executor.TITLES[fix],
                "state": state,
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
    orphans = orphaned_sessions().count()
    out.append(
        {
            "key": "backfill",
            "title": "Backfill the orphans",
            "state": "done"
            if orphans == 0
            else "ready"
            if diagnosis["category"] == "would_succeed"
            else "blocked",
            "evidence": f"{orphans} orphaned sessions; the test session: {diagnosis['category']}",
        }
    )
    now = timezone.now()
    completed, converted = conversion(now - timedelta(days=7), now)
    rate = converted / completed if completed else None
    figure = (
        f"{converted}/{completed} = {rate:.1%}" if rate is not None else "no completed sessions"
    )
    out.append(
        {
            "key": "success",
            "title": "Success criteria: conversion above 90 % (7 days)",
            "state": "met" if rate is not None and rate > CONVERSION_TARGET else "not met",
            "evidence": figure,
        }
    )
    return out
