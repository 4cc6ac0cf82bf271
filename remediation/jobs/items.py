"""Bulk writes of run bookkeeping in one statement each (rows travel as one JSON parameter).

Django's bulk_update builds a CASE per row and column, which cost more than the whole
pipeline write of a batch.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import connections

from remediation.models import BackfillItem


def set_items(items: list[BackfillItem], columns: dict[str, str]) -> None:
    """UPDATE many items in one statement; `columns` maps column name to SQL type."""
    if not items:
        return
    names = list(columns)
    rows = [{"id": i.pk, **{n: getattr(i, n) for n in names}} for i in items]
    spec = ", ".join(["id bigint", *(f"{n} {columns[n]}" for n in names)])
    sets = ", ".join(f"{n} = v.{n}" for n in names)
    with connections["default"].cursor() as cur:
        cur.execute(
            f"UPDATE {BackfillItem._meta.db_table} i SET {sets}"
            f" FROM jsonb_to_recordset(%s::jsonb) AS v({spec}) WHERE i.id = v.id",
            [json.dumps(rows, default=str)],
        )


def insert_rows(table: str, columns: dict[str, str], rows: list[dict[str, Any]]) -> None:
    """INSERT many rows in one statement; `columns` maps column name to SQL type."""
    if not rows:
        return
    names = ", ".join(columns)
    spec = ", ".join(f"{n} {t}" for n, t in columns.items())
    with connections["default"].cursor() as cur:
        cur.execute(
            f"INSERT INTO {table} ({names})"
            f" SELECT {names} FROM jsonb_to_recordset(%s::jsonb) AS v({spec})",
            [json.dumps(rows, default=str)],
        )
