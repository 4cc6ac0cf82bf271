"""Runbook writes: saving a record (with its audit entry), verification, the test session's
diagnosis."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Any

from django.contrib.admin.models import ADDITION, LogEntry
from django.utils import timezone

from remediation.models import FinalizeAttempt, RunbookRecord
from remediation.selectors.checks import FAIL, INFO, PASS, Q_FC_BLOCKS, Check, _one
from remediation.selectors.sessions import newest_orphan_id
from remediation.services.audit import audit_record
from remediation.services.sessions import session_diagnose, session_finalize

_AUDITED = ("change", "diagnosis_before", "diagnosis_after", "fix", "form", "refusal")


def runbook_record_save(
    *, user: Any, kind: str, results: dict[str, Any], label: str = ""
) -> RunbookRecord:
    """Every run of the runbook is kept (who, when, what, evidence), audited and logged."""
    authenticated = user is not None and getattr(user, "is_authenticated", False)
    audit_record(
        user if user is not None else "cli",
        f"runbook.{kind}",
        target=label or kind,
        sessions=[results["session_id"]] if results.get("session_id") else [],
        # A refused change is audited as "refused" (the reasons are in the detail).
        outcome="refused"
        if results.get("outcome") == "refused"
        else str(results.get("change", "saved"))[:60],
        detail={k: v for k, v in results.items() if k in _AUDITED},
    )
    record = RunbookRecord.objects.create(
        kind=kind,
        label=label[:200],
        results=results,
        created_by=user if authenticated else None,
        created_by_name=user.get_username() if authenticated else "cli",
    )
    if authenticated:
        LogEntry.objects.log_actions(
            user_id=user.pk,
            queryset=[record],
            action_flag=ADDITION,
            change_message=f"IR-07 {kind}: {label}"[:200],
            single_object=True,
        )
    return record


def test_session_diagnose(session_id: str | None = None, *, save: bool = True) -> dict[str, Any]:
    """Why the test session (default: the newest orphan) has no profile, by a rolled-back
    write; stored as the session's diagnosis so pages can show it without writing."""
    sid = session_id or newest_orphan_id()
    if sid is None:
        return {
            "session_id": None,
            "category": "no_orphans",
            "sqlstate": "",
            "explanation": "No orphaned session left.",
        }
    d = session_diagnose(session_id=sid, save=save)
    return {
        "session_id": sid,
        "category": d.category,
        "sqlstate": d.sqlstate,
        "explanation": d.explanation,
    }


def runbook_verify(*, session_id: str | None = None, actor: Any = None) -> dict[str, Any]:
    """Finalize a test session (default: the newest orphan) and check the success criteria."""
    # Long on purpose: the plan's three success criteria, each a Check, in the plan's order.
    if session_id is None:
        newest = newest_orphan_id()
        if newest is None:
            return {
                "session_id": None,
                "checks": [
                    asdict(
                        Check(
                            "test_session",
                            "A test session to finalize",
                            FAIL,
                            "none",
                            "an orphaned session",
                            "",
                            "There is no orphaned session left to verify with; pass one explicitly.",
                        )
                    )
                ],
            }
        session_id = str(newest)
    attempt = session_finalize(session_id=session_id, actor=actor, source="runbook")
    version = _one("SELECT results_version FROM profiles WHERE session_id = %s", [session_id])
    fc_blocks = _one(Q_FC_BLOCKS)
    names = [e.get("name") for e in attempt.events]
    since = timezone.now() - timedelta(hours=1)
    rls_hour = (
        FinalizeAttempt.objects.filter(reason="rls", started_at__gte=since)
        .exclude(pk=attempt.pk)
        .count()
    )
    checks = [
        Check(
            "profile_v121",
            "Test session has a profile with results_version v1.2.1",
            PASS if version == "v1.2.1" else FAIL,
            str(version),
            "v1.2.1",
            "SELECT results_version FROM profiles WHERE session_id = '<id>'",
            f"finalize: {attempt.outcome} {attempt.reason} {attempt.sqlstate} {attempt.explanation}".strip(),
        ),
        Check(
            "no_rls_violation",
            "No RLS violation",
            PASS if attempt.reason != "rls" else FAIL,
            f"this finalize: {attempt.reason or attempt.outcome}; RLS failures in the last hour: {rls_hour}",
            "no 42501 row-level security",
            "finalize attempt + FinalizeAttempt(reason='rls', last hour)",
        ),
        Check(
            "fc_fallback_logged",
            "fc_fallback_legacy recorded while FC is empty",
            (PASS if "fc_fallback_legacy" in names else FAIL) if fc_blocks == 0 else INFO,
            ", ".join(n for n in names if n) or "no events",
            "fc_fallback_legacy when fc_blocks v1.2 = 0",
            Q_FC_BLOCKS,
            "" if fc_blocks == 0 else f"FC v1.2 has {fc_blocks} blocks: not applicable",
        ),
    ]
    return {
        "session_id": session_id,
        "attempt_id": attempt.pk,
        "results_url": attempt.results_url,
        "checks": [asdict(c) for c in checks],
    }
