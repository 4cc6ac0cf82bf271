"""Applying and rolling back the pipeline fixes, with the test session's diagnosis before
and after as evidence."""

from __future__ import annotations

from typing import Any

from remediation.fixes import executor
from remediation.selectors.sessions import newest_orphan_id
from remediation.services.runbook import test_session_diagnose


def fix_apply(name: str, *, reverse: bool = False) -> dict[str, Any]:
    """Apply (or roll back) one fix through the migration executor; evidence for the record."""
    sid = newest_orphan_id()
    before = test_session_diagnose(sid)
    changed = executor.run(name, reverse=reverse)
    after = test_session_diagnose(sid)
    verb = "rolled back" if reverse else "applied"
    note = (
        ""
        if changed
        else f" (it was already {'not applied' if reverse else 'applied'}: nothing changed)"
    )
    return {
        "fix": name,
        "change": f"Fix {name} {verb} ({executor.FIXES[name]} on the pipeline database){note}",
        "diagnosis_before": before,
        "diagnosis_after": after,
    }


def fix_rollback(name: str) -> dict[str, Any]:
    """Roll back one fix alone (the others stay as they are)."""
    return fix_apply(name, reverse=True)
