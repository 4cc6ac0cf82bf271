"""The latest change to what decides a profile write: a fix applied or rolled back, a gate set.

A reason found before such a change may no longer hold (after Fix A, an "rls" diagnosis is
history), so the orphan list marks it stale. Two sources, the later wins:
- the runbook's change records (RunbookRecord kind "change", saved with their audit event for
  every fix apply and rollback and every results_version and maintenance gate set, from the
  runbook page and `manage.py fix`); refused and unchanged fix runs changed nothing. The
  records are in time order, but a fix's time of change is its `changed_at`;
- the pipeline database's own record of applied fixes
  (`<PIPELINE_PORTAL_SCHEMA>.django_migrations`), which also sees a fix applied outside the
  portal. A rollback outside the portal leaves no trace there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connections
from django.utils.dateparse import parse_datetime

from remediation.models import RunbookRecord

NO_CHANGE = ("refused", "unchanged")


@dataclass(frozen=True)
class Change:
    """One change to a fix or a gate: when, and what in words."""

    at: datetime
    what: str


def _recorded_change() -> Change | None:
    records = RunbookRecord.objects.filter(kind=RunbookRecord.Kind.CHANGE).order_by("-created_at")
    for record in records.only("created_at", "results").iterator(chunk_size=50):
        results: dict[str, Any] = record.results or {}
        if results.get("outcome") in NO_CHANGE:
            continue
        if results.get("fix"):
            what = (
                f"Fix {results['fix']} {results.get('outcome') or results.get('action', 'changed')}"
            )
        else:
            what = str(results.get("change") or "a runbook change")[:120]
        # A fix's run says when it changed the database (before the test session's new
        # diagnosis); a gate's record is saved right after its change.
        at = parse_datetime(str(results.get("changed_at") or "")) or record.created_at
        return Change(at, what)
    return None


def _applied_fix() -> Change | None:
    from remediation.fixes import executor
    from remediation.fixes.operations import portal_schema

    names = {migration: fix for fix, migration in executor.FIXES.items()}
    table = f"{portal_schema()}.django_migrations"
    with connections["pipeline"].cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", [table])
        if cur.fetchone()[0] is None:
            return None
        cur.execute(
            f"SELECT name, applied FROM {table} WHERE app = %s ORDER BY applied DESC LIMIT 1",
            [executor.APP_LABEL],
        )
        row = cur.fetchone()
    if row is None:
        return None
    return Change(row[1], f"Fix {names.get(row[0], row[0])} applied")


def last_write_path_change() -> Change | None:
    """The latest fix or gate change the databases show, or None."""
    found = [c for c in (_recorded_change(), _applied_fix()) if c is not None]
    return max(found, key=lambda c: c.at) if found else None
