"""Reading a database error: SQLSTATE, constraint, table and message, and the cause in
plain words; the exceptions the write path raises for one session."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import psycopg
from django.db import DatabaseError, connections

from remediation.pipeline.constraints import Violation, violations
from scoring import Event


@dataclass(frozen=True)
class DbErrorInfo:
    """A database error as PostgreSQL reported it, and in plain words."""

    category: str  # rls, grant, check, trigger, other
    sqlstate: str
    message: str
    explanation: str
    constraint: str = ""
    table: str = ""
    column: str = ""
    value: str = ""
    detail: str = ""
    context: str = ""
    statement: str = ""  # the write that failed: profile write, session update, FC score write
    # 23514: every CHECK constraint the attempted row violates (PostgreSQL reports only the
    # first), the reported one first; constraint/column/value above are that first one.
    violations: tuple[Violation, ...] = ()


class FinalizeRefused(Exception):
    """The session cannot be finalized for a reason that is not a database error."""

    def __init__(self, reason: str, explanation: str) -> None:
        super().__init__(explanation)
        self.reason = reason
        self.explanation = explanation


class ProfileWriteFailed(Exception):
    """The database refused the profile (or FC/session) write; carries its diagnostics."""

    def __init__(self, info: DbErrorInfo, events: list[Event]) -> None:
        super().__init__(info.explanation)
        self.info = info
        self.events = events


def classify_error(
    exc: BaseException,
    *,
    using: str = "pipeline",
    attempted_row: dict[str, Any] | None = None,
    statement: str = "",
) -> DbErrorInfo:
    """SQLSTATE, constraint, table and message from the driver, and the cause in plain words."""
    # Long on purpose: one decision table from SQLSTATE to cause, read side by side.
    cause = exc.__cause__ if isinstance(exc.__cause__, psycopg.Error) else exc
    diag = getattr(cause, "diag", None)
    sqlstate = getattr(cause, "sqlstate", None) or (diag.sqlstate if diag else None) or ""
    message = (diag.message_primary if diag else None) or str(exc).splitlines()[0]
    constraint = (diag.constraint_name if diag else None) or ""
    table = (diag.table_name if diag else None) or ""
    column = (diag.column_name if diag else None) or ""
    detail = (diag.message_detail if diag else None) or ""
    context = (diag.context if diag else None) or ""
    if not table:
        found = re.search(r'(?:table|relation) "([^"]+)"', message)
        table = found.group(1) if found else ""
    value = ""
    violations: tuple[Violation, ...] = ()
    low = message.lower()
    if sqlstate == "42501" and "row-level security" in low:
        category = "rls"
        explanation = (
            f"Row-level security refused the row on {table or 'profiles'} (42501): the writing "
            "role does not bypass RLS and no policy allows this write."
        )
    elif sqlstate == "42501":
        category = "grant"
        explanation = f"A grant is missing (42501, permission denied): {message}."
    elif sqlstate in ("42703", "42P01"):
        category = "schema"
        explanation = (
            f"The {statement or 'statement'} names a column or table this database does not"
            f" have ({sqlstate}): {message}."
        )
    elif sqlstate == "55P03":
        category = "busy"
        explanation = (
            "Another finalize or backfill holds this session, or another transaction a table"
            " the write needs (lock timeout, 55P03); nothing was written. Try again when it has"
            " finished."
        )
    elif sqlstate == "57014":
        category = "busy"
        explanation = (
            "The pipeline database did not answer within the statement timeout (57014): a"
            " table may be locked by another transaction; nothing was written. Try again."
        )
    elif sqlstate == "23514":
        category = "check"
        column = column or _constraint_column(constraint, table or "profiles", using)
        if attempted_row and column in attempted_row:
            value = str(attempted_row[column])
        refused = _all_violations(attempted_row, table or "profiles", using)
        reported = [v for v in refused if v.constraint == constraint]
        if constraint and not reported:
            reported = [Violation(constraint, column, value)]
        refused = reported + [v for v in refused if v.constraint != constraint]
        if reported and reported[0].column:
            column, value = reported[0].column, reported[0].value
        names = list(dict.fromkeys(v.constraint for v in refused))
        if len(names) > 1:
            explanation = (
                f"{len(names)} CHECK constraints on {table or 'profiles'} refuse the row (23514;"
                " PostgreSQL reports only the first): "
                + "; ".join(f"{v.constraint} refuses {v.column} = {v.value!r}" for v in refused)
                + "."
            )
        else:
            explanation = (
                f"The CHECK constraint {constraint or '?'} on {table or 'profiles'} refused "
                + (f"{column} = {value!r}" if column else "the row")
                + " (23514)."
            )
        violations = tuple(refused)
    elif sqlstate == "54001" or "trigger" in context.lower() or _trigger_in_context(context, using):
        category = "trigger"
        fn = _function_in_context(context)
        explanation = (
            f"A trigger on profiles failed ({sqlstate}: {message})"
            + (f" in {fn}" if fn else "")
            + (": it fires itself again with no guard." if sqlstate == "54001" else ".")
        )
    else:
        category = "other"
        explanation = f"The database refused the write ({sqlstate or 'no SQLSTATE'}): {message}"
    if statement and statement != "profile write" and category != "schema":
        explanation = f"The {statement} failed: {explanation}"
    return DbErrorInfo(
        category=category,
        sqlstate=sqlstate,
        message=message,
        explanation=explanation,
        constraint=constraint,
        table=table,
        column=column,
        value=value,
        detail=detail,
        context=context[:2000],
        statement=statement,
        violations=violations,
    )


def _all_violations(row: dict[str, Any] | None, table: str, using: str) -> list[Violation]:
    """Every CHECK on the table that the attempted row violates (none without a row)."""
    if not row:
        return []
    try:
        with connections[using].cursor() as cur:
            return violations(cur, row, table=table, using=using)
    except DatabaseError:
        return []


def _constraint_column(constraint: str, table: str, using: str) -> str:
    if not constraint:
        return ""
    try:
        with connections[using].cursor() as cur:
            cur.execute(
                "SELECT a.attname FROM pg_constraint c JOIN pg_attribute a"
                " ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)"
                " WHERE c.conname = %s AND c.conrelid = to_regclass(%s) LIMIT 1",
                [constraint, f"public.{table}"],
            )
            row = cur.fetchone()
    except DatabaseError:
        return ""
    return row[0] if row else ""


def _function_in_context(context: str) -> str:

    found = re.search(r"(?:PL/pgSQL |SQL )?function ([\w.\"]+)\(", context)
    return found.group(1).replace('"', "") + "()" if found else ""


def _trigger_in_context(context: str, using: str) -> bool:
    fn = _function_in_context(context).split("(")[0]
    if not fn:
        return False
    try:
        with connections[using].cursor() as cur:
            cur.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid"
                " WHERE NOT t.tgisinternal AND p.proname = %s)",
                [fn.split(".")[-1]],
            )
            return bool(cur.fetchone()[0])
    except DatabaseError:
        return False
