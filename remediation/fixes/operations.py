"""Helpers for the migrations that change the pipeline database (Fix A, D, E).

They run only where the router sends `hints={"target_db": "pipeline"}`, inside the
migration's transaction, with a lock timeout so a busy `profiles` makes them fail fast
instead of queueing behind readers (and blocking every reader behind them).
Django's recorder keeps them in `<PIPELINE_PORTAL_SCHEMA>.django_migrations` of the
pipeline database: the pipeline connection's search_path starts with the portal's own
schema, so nothing of the portal lands in `public`, which Supabase exposes through its
REST API.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import migrations

PIPELINE_HINTS = {"target_db": "pipeline"}


@dataclass
class FixContext:
    """What the executor passes to a fix's migration (the chosen form) and what the
    migration reports back (notes: what it did, or that it left something alone)."""

    form: str | None = None
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.notes.append(text)


_CURRENT: ContextVar[FixContext | None] = ContextVar("pipeline_fix_context", default=None)


@contextmanager
def fix_context_set(context: FixContext) -> Iterator[FixContext]:
    token = _CURRENT.set(context)
    try:
        yield context
    finally:
        _CURRENT.reset(token)


def fix_context() -> FixContext:
    """The running fix's context (a throwaway one outside the executor)."""
    return _CURRENT.get() or FixContext()


def run_sql(sql: str, reverse_sql: str) -> migrations.RunPython:
    """A reversible SQL step for the pipeline database, with the lock timeout set first."""

    def forward(apps: Any, schema_editor: Any) -> None:
        _execute(schema_editor, sql)

    def backward(apps: Any, schema_editor: Any) -> None:
        _execute(schema_editor, reverse_sql)

    return migrations.RunPython(forward, backward, hints=PIPELINE_HINTS)


def _execute(schema_editor: Any, sql: str) -> None:
    execute_with_lock_timeout(schema_editor, [sql])


def execute_with_lock_timeout(schema_editor: Any, statements: list[str]) -> None:
    """Run statements in the migration's transaction after setting the lock timeout."""
    with schema_editor.connection.cursor() as cur:
        cur.execute("SELECT set_config('lock_timeout', %s, true)", [settings.PIPELINE_LOCK_TIMEOUT])
        for sql in statements:
            cur.execute(sql)


def portal_schema() -> str:
    """The portal's schema in the pipeline database (validated: it is put into SQL text)."""
    name = settings.PIPELINE_PORTAL_SCHEMA
    if not name.isidentifier() or name.lower() != name:
        raise ValueError(f"PIPELINE_PORTAL_SCHEMA must be a lower-case identifier, got {name!r}")
    return name


def preimages_table_sql() -> str:
    """The table where each fix stores what it found and what it created."""
    return (
        f"CREATE TABLE IF NOT EXISTS {portal_schema()}.fix_preimages (fix text NOT NULL,"
        " object text NOT NULL, definition text NOT NULL,"
        " stored_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (fix, object))"
    )


def ensure_portal_schema(connection: Any) -> None:
    """The schema holding django_migrations and the fixes' pre-images in the pipeline database."""
    with connection.cursor() as cur:
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {portal_schema()}")
