"""Applying and rolling back one fix on the pipeline database, through Django's executor.

Each fix is a migration module in remediation/fixes/migrations with no dependency on the
others: applying or rolling back one never touches another. The pipeline database's
`<PIPELINE_PORTAL_SCHEMA>.django_migrations` records exactly these migrations, nothing of
the portal's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module

from django.conf import settings
from django.db import DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.migration import Migration
from django.db.migrations.recorder import MigrationRecorder
from django.db.migrations.state import ProjectState

from remediation.fixes import forms
from remediation.fixes.operations import (
    FixContext,
    ensure_portal_schema,
    fix_context_set,
    portal_schema,
)
from remediation.fixes.refusal import FixRefused

APP_LABEL = "pipeline_fixes"
PIPELINE = "pipeline"
FIXES = {
    "A": "0001_fix_a_service_role_policy",
    "D": "0002_fix_d_check_vocabulary",
    "E": "0003_fix_e_trigger_guard",
}
TITLES = {
    "A": "Fix A: a service-role policy on profiles (the plan's form or the strict one)",
    "D": "Fix D: CHECK constraints accept the v1.2.1 vocabulary",
    "E": "Fix E: guard the recursive trigger on profiles",
}


class UnknownFix(ValueError):
    """A fix name other than A, D or E."""


def migration(name: str) -> Migration:
    """The migration that applies fix `name`."""
    if name not in FIXES:
        raise UnknownFix(f"unknown fix {name!r} (A, D or E)")
    module = import_module(f"remediation.fixes.migrations.{FIXES[name]}")
    return module.Migration(FIXES[name], APP_LABEL)


def applied(using: str = PIPELINE) -> set[str]:
    """The fixes recorded as applied in the pipeline database."""
    recorder = MigrationRecorder(connections[using])
    if not recorder.has_table():
        return set()
    names = {name for app, name in recorder.applied_migrations() if app == APP_LABEL}
    return {fix for fix, name in FIXES.items() if name in names}


def is_applied(name: str, using: str = PIPELINE) -> bool:
    migration(name)  # validates the name
    return name in applied(using)


@dataclass
class FixResult:
    """What one run of a fix did: `ran` is False when it was already in that state;
    `notes` are the migration's own words (what it created, dropped or left alone)."""

    fix: str
    reverse: bool
    ran: bool
    form: str | None = None
    notes: list[str] = field(default_factory=list)


def run(name: str, *, reverse: bool = False, using: str = PIPELINE) -> bool:
    """Apply (or roll back) fix `name` alone; False when it was already in that state."""
    return execute(name, reverse=reverse, using=using).ran


def execute(
    name: str, *, reverse: bool = False, form: str | None = None, using: str = PIPELINE
) -> FixResult:
    """Apply (or roll back) fix `name` alone, all or nothing, and say what it did.

    `form` chooses Fix A's form ("plan" or "strict"; only when applying Fix A). A refusal
    (FixRefused from the migration, or a lock timeout on a busy table) leaves the database
    and the recorded fixes exactly as they were: the migration's transaction is rolled back
    and it is not recorded.
    """
    step = migration(name)
    if form is not None and (name != "A" or reverse):
        raise ValueError("a form is chosen only when applying Fix A")
    chosen = forms.form(form).key if name == "A" and not reverse else None
    if is_applied(name, using) != reverse:
        current = applied_form(using) if name == "A" else None
        return FixResult(name, reverse, False, current)
    connection = connections[using]
    ensure_portal_schema(connection)
    executor = MigrationExecutor(connection)
    executor.recorder.ensure_schema()
    if name == "A" and reverse:
        chosen = applied_form(using)
    context = FixContext(form=chosen)
    try:
        with fix_context_set(context):
            if reverse:
                executor.unapply_migration(ProjectState(), step)
            else:
                executor.apply_migration(ProjectState(), step)
    except DatabaseError as exc:
        if getattr(exc.__cause__, "sqlstate", None) == "55P03":
            verb = "rolled back" if reverse else "applied"
            raise FixRefused(
                name,
                f"Fix {name} could not be {verb}: public.profiles is busy (lock timeout after"
                f" {settings.PIPELINE_LOCK_TIMEOUT}, 55P03); nothing was changed. Try again"
                " when the table is quieter.",
                reason="lock_timeout",
            ) from exc
        raise
    return FixResult(name, reverse, True, chosen, context.notes)


def applied_form(using: str = PIPELINE) -> str | None:
    """The form of Fix A as it was applied (from fix_preimages), or None."""
    with connections[using].cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", [f"{portal_schema()}.fix_preimages"])
        if cur.fetchone()[0] is None:
            return None
        cur.execute(
            f"SELECT definition FROM {portal_schema()}.fix_preimages"
            " WHERE fix = 'A' AND object = 'form'"
        )
        row = cur.fetchone()
    return row[0] if row else None
