"""The triggers a write to the pipeline's tables fires, read from the live catalog.

What "exact rollback" can and cannot cover depends on them: a BEFORE trigger that sets
`NEW.updated_at = now()` rewrites a restored column, and an AFTER INSERT trigger that writes
another table (dashboard_statistics, ...) leaves rows a rollback does not remove. Each
trigger is read with its function's source and marked with what it writes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, connections

from remediation.pipeline.timeouts import PipelineTimeout

TABLES = ("profiles", "assessment_sessions", "fc_scores")
# The table a statement writes; `ON CONFLICT … DO UPDATE SET` writes the INSERT's table
# (already matched), so an UPDATE after DO is no table of its own.
_WRITES = re.compile(
    r"\b(?:INSERT\s+INTO|(?<!\bDO\s)UPDATE|DELETE\s+FROM)\s+(?:ONLY\s+)?"
    r"(?!SET\b)((?:\"?\w+\"?\.)?\"?\w+\"?)",
    re.IGNORECASE,
)
_REWRITES = re.compile(r"\bNEW\s*\.\s*\"?(\w+)\"?\s*:?=(?!=)", re.IGNORECASE)


@dataclass(frozen=True)
class TriggerInfo:
    table: str
    name: str
    timing: str  # BEFORE, AFTER, INSTEAD OF
    events: tuple[str, ...]  # INSERT, UPDATE, DELETE
    function: str
    enabled: bool
    writes_tables: tuple[str, ...]  # tables its function writes (its own table included)
    rewrites_columns: tuple[str, ...]  # NEW.<column> it assigns (BEFORE triggers)

    @property
    def writes_other_tables(self) -> tuple[str, ...]:
        return tuple(t for t in self.writes_tables if t != self.table)

    @property
    def summary(self) -> str:
        parts = [
            f"{self.timing} {'/'.join(self.events)} on {self.table}: {self.name} ({self.function})"
        ]
        if self.rewrites_columns:
            parts.append(f"rewrites {', '.join(self.rewrites_columns)}")
        if self.writes_other_tables:
            parts.append(f"writes {', '.join(self.writes_other_tables)}")
        if not self.enabled:
            parts.append("disabled")
        return "; ".join(parts)


def _table_name(raw: str) -> str:
    name = raw.replace('"', "")
    return name.split(".", 1)[1] if name.startswith("public.") else name


def write_triggers(tables: tuple[str, ...] = TABLES, using: str = "pipeline") -> list[TriggerInfo]:
    """The user triggers on `tables`, with what each one's function writes."""
    with connections[using].cursor() as cur:
        cur.execute(
            "SELECT c.relname, t.tgname, t.tgtype, p.proname, t.tgenabled <> 'D',"
            " pg_get_functiondef(p.oid)"
            " FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_proc p ON p.oid = t.tgfoid"
            " WHERE n.nspname = 'public' AND c.relname = ANY(%s) AND NOT t.tgisinternal"
            " ORDER BY c.relname, t.tgname",
            [list(tables)],
        )
        rows = cur.fetchall()
    out = []
    for table, name, tgtype, function, enabled, source in rows:
        timing = "BEFORE" if tgtype & 2 else "INSTEAD OF" if tgtype & 64 else "AFTER"
        events = tuple(
            e for bit, e in ((4, "INSERT"), (8, "DELETE"), (16, "UPDATE")) if tgtype & bit
        )
        body = source.split("$", 1)[1] if "$" in source else source  # the body, not the header
        writes = tuple(dict.fromkeys(_table_name(m) for m in _WRITES.findall(body)))
        rewrites = tuple(dict.fromkeys(_REWRITES.findall(body))) if timing == "BEFORE" else ()
        out.append(
            TriggerInfo(table, name, timing, events, function, bool(enabled), writes, rewrites)
        )
    return out


def rewritten_columns(table: str, triggers: list[TriggerInfo] | None = None) -> set[str]:
    """Columns of `table` a BEFORE UPDATE trigger assigns: a restore cannot set them."""
    found: set[str] = set()
    for t in triggers if triggers is not None else write_triggers((table,)):
        if t.table == table and t.timing == "BEFORE" and "UPDATE" in t.events and t.enabled:
            found.update(t.rewrites_columns)
    return found


def trigger_context() -> dict[str, Any]:
    """For a page: the triggers a finalize's writes (and its rollback's) fire, and how many
    of them write other tables or rewrite columns (empty when the catalog is unreadable)."""
    try:
        triggers = write_triggers()
    except PipelineTimeout:
        raise  # the page answers 503 (opsportal.middleware.PipelineTimeoutMiddleware)
    except DatabaseError:
        return {"triggers": [], "trigger_warnings": 0}
    warn = sum(1 for t in triggers if t.writes_other_tables or t.rewrites_columns)
    return {"triggers": triggers, "trigger_warnings": warn}
