"""Applying and rolling back one fix on the pipeline database, through Django's executor.

Each fix is a migration module in remediation/fixes/migrations with no dependency on the
others: applying or rolling back one never touches another. The pipeline database's
`<PIPELINE_PORTAL_SCHEMA>.django_migrations` records exactly these migrations, nothing of
the portal's own.
"""

from __future__ import annotations

from importlib import import_module

from django.db import connections
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.migration import Migration
from django.db.migrations.recorder import MigrationRecorder
from django.db.migrations.state import ProjectState

from remediation.fixes.operations import ensure_portal_schema

APP_LABEL = "pipeline_fixes"
PIPELINE = "pipeline"
FIXES = {
    "A": "0001_fix_a_service_role_policy",
    "D": "0002_fix_d_check_vocabulary",
    "E": "0003_fix_e_trigger_guard",
}
TITLES = {
    "A": "Fix A: the plan's policy on profiles",
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


def run(name: str, *, reverse: bool = False, using: str = PIPELINE) -> bool:
    """Apply (or roll back) fix `name` alone; False when it was already in that state."""
    step = migration(name)
    if is_applied(name, using) != reverse:
        return False
    connection = connections[using]
    ensure_portal_schema(connection)
    executor = MigrationExecutor(connection)
    executor.recorder.ensure_schema()
    if reverse:
        executor.unapply_migration(ProjectState(), step)
    else:
        executor.apply_migration(ProjectState(), step)
    return True
