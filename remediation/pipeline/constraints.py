"""What the live CHECK constraints on profiles make of the engine's rows.

PostgreSQL reports only the first CHECK a row violates (23514 names one constraint). Here
every CHECK constraint of the table is read from the catalog (`pg_get_expr(conbin)`) and
evaluated against a row in a statement that writes nothing:

    SELECT NOT coalesce((<expression>), true)
      FROM jsonb_populate_record(NULL::public.profiles, <row as json>) AS profiles

(a CHECK passes when its expression is true or NULL, as PostgreSQL decides it). The row
goes through jsonb_populate_record exactly as the write path's upsert sends it, so every
value is cast to the column's type the same way. Columns the row does not carry are NULL
here, where an INSERT would take their default; constraints on such columns only are
therefore not judged ("not written by the engine").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NamedTuple

from django.db import DatabaseError, transaction

from remediation.pipeline.sql import json_default

Q_CHECK_CONSTRAINTS = (
    "SELECT c.conname, pg_get_expr(c.conbin, c.conrelid), pg_get_constraintdef(c.oid),"
    " coalesce((SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a"
    "  WHERE a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)), '{}')"
    " FROM pg_constraint c WHERE c.conrelid = to_regclass(%s) AND c.contype = 'c'"
    " ORDER BY c.conname"
)


@dataclass(frozen=True)
class CheckConstraint:
    """A CHECK constraint as the catalog has it."""

    name: str
    expression: str  # pg_get_expr(conbin, conrelid): the bare expression
    definition: str  # pg_get_constraintdef: CHECK (...) [NOT VALID]
    columns: tuple[str, ...]


class Violation(NamedTuple):
    """A CHECK constraint that refuses a row: which one, on which column, which value."""

    constraint: str
    column: str
    value: str


def check_constraints(cur: Any, table: str = "profiles") -> list[CheckConstraint]:
    """Every CHECK constraint on public.<table>, by name."""
    cur.execute(Q_CHECK_CONSTRAINTS, [f"public.{table}"])
    return [CheckConstraint(n, e, d, tuple(cols)) for n, e, d, cols in cur.fetchall()]


def refuses(
    cur: Any,
    constraint: CheckConstraint,
    row: dict[str, Any],
    *,
    table: str = "profiles",
    using: str = "pipeline",
) -> bool:
    """Whether the constraint refuses the row (evaluated by PostgreSQL, under a savepoint;
    an expression that cannot be evaluated for the row refuses it too, as the INSERT would
    fail)."""
    sql = (
        f"SELECT NOT coalesce(({constraint.expression.replace('%', '%%')}), true)"
        f" FROM jsonb_populate_record(NULL::public.{table}, %s::jsonb) AS {table}"
    )
    try:
        with transaction.atomic(using=using):
            cur.execute(sql, [json.dumps(row, default=json_default)])
            return bool(cur.fetchone()[0])
    except DatabaseError:
        return True


def violations(
    cur: Any,
    row: dict[str, Any],
    constraints: list[CheckConstraint] | None = None,
    *,
    table: str = "profiles",
    using: str = "pipeline",
) -> list[Violation]:
    """Every CHECK constraint on a column the row carries that refuses the row, with the
    row's value of each such column."""
    if constraints is None:
        constraints = check_constraints(cur, table)
    out: list[Violation] = []
    for c in constraints:
        columns = [col for col in c.columns if col in row]
        if not columns or not refuses(cur, c, row, table=table, using=using):
            continue
        out.extend(Violation(c.name, col, text_of(row[col])) for col in columns)
    return out


def text_of(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=json_default)
    return str(value)
