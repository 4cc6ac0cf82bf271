"""Applying and rolling back the pipeline fixes, with the test session's diagnosis before
and after as evidence. A refusal is a result too (outcome "refused"), recorded like any
other run by the caller."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from remediation.fixes import executor
from remediation.fixes.forms import FORMS
from remediation.fixes.refusal import FixRefused
from remediation.selectors.sessions import newest_orphan_id
from remediation.services.runbook import test_session_diagnose


def fix_apply(name: str, *, reverse: bool = False, form: str | None = None) -> dict[str, Any]:
    """Apply (or roll back) one fix through the migration executor; evidence for the record.

    `form` chooses Fix A's form ("plan", the default, or "strict"). The result's `outcome`
    is "applied", "rolled back", "unchanged" (already in that state) or "refused"; a refusal
    carries the fix's reasons and rows under `refusal`, and nothing was changed.
    """
    executor.migration(name)  # validates the name before anything is diagnosed
    sid = newest_orphan_id()
    before = test_session_diagnose(sid)
    verb = "rolled back" if reverse else "applied"
    base = {"fix": name, "action": "rollback" if reverse else "apply"}
    try:
        done = executor.execute(name, reverse=reverse, form=form)
        changed_at = timezone.now()  # before the test session's new diagnosis
    except FixRefused as refusal:
        after = test_session_diagnose(sid)
        return {
            **base,
            "outcome": "refused",
            "change": f"Fix {name} {'rollback' if reverse else 'apply'} refused: {refusal.message}",
            "refusal": refusal.as_dict(),
            "diagnosis_before": before,
            "diagnosis_after": after,
        }
    after = test_session_diagnose(sid)
    where = f"{executor.FIXES[name]} on the pipeline database"
    if done.form:
        where += f", {FORMS[done.form].label}"
    if not done.ran:
        state = "not applied" if reverse else "applied"
        note = f" (it was already {state}: nothing changed)"
    else:
        note = "".join(f". {n}" for n in done.notes)
    return {
        **base,
        "outcome": verb if done.ran else "unchanged",
        "form": done.form,
        "notes": done.notes,
        "change": f"Fix {name} {verb} ({where}){note}",
        "changed_at": changed_at.isoformat(),
        "diagnosis_before": before,
        "diagnosis_after": after,
    }


def fix_rollback(name: str) -> dict[str, Any]:
    """Roll back one fix alone (the others stay as they are)."""
    return fix_apply(name, reverse=True)
