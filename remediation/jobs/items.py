"""Run bookkeeping: item outcomes and counters, written in as few statements as possible
(rows travel as one JSON parameter).

Django's bulk_update builds a CASE per row and column, which cost more than the whole
pipeline write of a batch.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.db import connections

from remediation.models import BackfillItem
from remediation.pipeline import SessionOutcome


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


_RESULT_COLUMNS = {
    "outcome": "text",
    "reason": "text",
    "error": "text",
    "sqlstate": "text",
    "constraint_name": "text",
    "profile_id": "uuid",
    "type_code": "text",
    "results_url": "text",
    "processed_at": "timestamptz",
    "pre_image": "jsonb",
    "post_fingerprint": "jsonb",
    "tries": "smallint",
    "notes": "jsonb",
    "ledger_seq": "bigint",
}


def apply_outcomes(
    items: dict[str, BackfillItem],
    outcomes: list[SessionOutcome],
    now: datetime,
    *,
    busy_rounds: int,
) -> list[SessionOutcome]:
    """Put each outcome on its item (not saved); the outcomes applied. An outcome from the
    run ledger that its item already took (item.ledger_seq) is not applied again."""
    applied = []
    for o in outcomes:
        item = items.get(o.session_id)
        if item is None:
            continue
        if o.ledger_seq is not None and (item.ledger_seq or 0) >= o.ledger_seq:
            continue
        if o.outcome == "pending":
            o.outcome = "failed"
        if o.outcome == "busy" and item.tries + 1 >= busy_rounds:
            o.outcome, o.reason = "failed", "busy"
        item.outcome = o.outcome
        item.reason, item.error = o.reason, o.explanation[:4000]
        item.sqlstate = o.error.sqlstate if o.error else ""
        item.constraint_name = o.error.constraint if o.error else ""
        item.profile_id = o.profile_id
        item.type_code, item.results_url = o.type_code, o.results_url[:500]
        item.processed_at = o.recorded_at or now
        item.tries += 1
        if o.pre_image is not None:
            item.pre_image = o.pre_image
        item.post_fingerprint = o.post_fingerprint
        item.notes = o.notes
        if o.ledger_seq is not None:
            item.ledger_seq = o.ledger_seq
        applied.append(o)
    return applied


def save_items(items: list[BackfillItem]) -> None:
    """The outcome columns of `items`, in one statement (inside the caller's transaction)."""
    set_items(items, _RESULT_COLUMNS)
