"""The live shape of the pipeline's tables: which columns exist, their nullability and defaults.

A real pipeline database differs from our emulation (a database rebuilt from the
pipeline's migrations has no `profiles.share_token`, no `assessment_sessions.finalized_at`
or `share_token_expires_at`, and dozens of columns the portal never uses). The write path
reads the shape once per context and writes only columns that exist; the ORM and the admin
leave out model fields whose column is missing (`missing_fields`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections

from remediation.pipeline.timeouts import PipelineTimeout

TABLES = ("assessment_sessions", "profiles", "fc_scores")
# The columns the portal writes that a pipeline database may lack.
OPTIONAL_COLUMNS = {
    "assessment_sessions": ("finalized_at", "share_token_expires_at", "completed_questions"),
    "profiles": ("share_token", "recomputed_at", "submitted_at", "fc_answered_ct"),
}


@dataclass(frozen=True)
class Column:
    name: str
    nullable: bool
    has_default: bool


@dataclass(frozen=True)
class TableShape:
    name: str
    columns: dict[str, Column] = field(default_factory=dict)

    def has(self, column: str) -> bool:
        return column in self.columns

    def required_without_default(self, column: str) -> bool:
        """NOT NULL and no default: a write must always send it."""
        c = self.columns.get(column)
        return bool(c and not c.nullable and not c.has_default)


def read_shapes(cur: Any, tables: tuple[str, ...] = TABLES) -> dict[str, TableShape]:
    """The columns of `tables` in the pipeline's public schema, from pg_catalog.

    Not information_schema.columns: its column_default calls pg_get_expr(), which opens the
    table and so waits for any lock on it (a `LOCK TABLE profiles` made every context load
    wait the lock timeout). The catalog alone answers at once. Nullable as
    information_schema says it (a NOT NULL domain counts); a default, an identity or a
    generated column all mean a write need not send the column.
    """
    cur.execute(
        "SELECT c.relname, a.attname, NOT (a.attnotnull OR coalesce(t.typnotnull, false)),"
        " a.atthasdef OR a.attidentity <> ''"
        " FROM pg_catalog.pg_attribute a"
        " JOIN pg_catalog.pg_class c ON c.oid = a.attrelid"
        " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " LEFT JOIN pg_catalog.pg_type t ON t.oid = a.atttypid AND t.typtype = 'd'"
        " WHERE n.nspname = 'public' AND c.relname = ANY(%s)"
        " AND a.attnum > 0 AND NOT a.attisdropped ORDER BY c.relname, a.attnum",
        [list(tables)],
    )
    shapes = {t: TableShape(t) for t in tables}
    for table, column, nullable, has_default in cur.fetchall():
        shapes[table].columns[column] = Column(column, nullable, has_default)
    return shapes


_cache: dict[str, tuple[float, dict[str, TableShape]]] = {}


def shapes(using: str = "pipeline") -> dict[str, TableShape]:
    """The tables' shapes, read at most every PIPELINE_SCHEMA_TTL seconds per process."""
    now = time.monotonic()
    cached = _cache.get(using)
    if cached and now - cached[0] < settings.PIPELINE_SCHEMA_TTL:
        return cached[1]
    tables = tuple(sorted({*TABLES, *_model_tables()}))
    with connections[using].cursor() as cur:
        value = read_shapes(cur, tables)
    _cache[using] = (now, value)
    return value


def forget() -> None:
    """Read the shapes again next time (after a schema change, e.g. in tests)."""
    _cache.clear()


def _model_tables() -> set[str]:
    from django.apps import apps

    return {
        m._meta.db_table
        for m in apps.get_app_config("remediation").get_models()
        if getattr(m, "PIPELINE", False)
    }


def missing_fields(model: type[Any], using: str = "pipeline") -> list[str]:
    """The model's concrete fields whose column the live table lacks (empty if unreadable).

    Never during app loading (querysets built at import time, e.g. a form field's choices,
    must not touch the database)."""
    from django.apps import apps

    if not apps.ready:
        return []
    try:
        shape = shapes(using).get(model._meta.db_table)
    except PipelineTimeout:
        raise  # a locked catalog is a timeout for the page, not an absent column
    except DatabaseError:
        return []
    if shape is None or not shape.columns:
        return []
    return [
        f.name
        for f in model._meta.concrete_fields
        if f.column not in shape.columns and not f.primary_key
    ]
