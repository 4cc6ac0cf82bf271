"""The orphan ledger: an indexed walk for the orphan list that never passes sessions with profiles.

Why: the orphan definition (selectors.sessions, ORPHAN_SQL) cannot be a partial index (its
predicate reads another table), so a first page sorted oldest first walks every completed
session in completion order and probes `profiles` for each: at a million sessions it passes
~276,000 sessions with profiles to find 100 orphans. A ledger kept by the portal in its own
schema of the pipeline database (PIPELINE_PORTAL_SCHEMA, never `public`) lists the sessions
that were orphans at its last refresh with their sort keys, indexed by each sort order.

Truthful, not a cache: a page is the union of
- the ledger's rows whose session is, live, still an orphan (ORPHAN_SQL) with the same
  completed_at and email as the ledger recorded (so the ledger's order is the live order), and
- the tail: live orphans completed since the refresh's horizon (its start, or the start of the
  oldest transaction open then, less ORPHAN_LEDGER_TAIL_MARGIN_MINUTES), read from
  `assessment_sessions` through its completed_at index, minus those of the first part;
both filtered by the list's own filters, merged in the list's order, in one statement.
A session is shown only if it is an orphan now. What the union can miss is an orphan made
after the refresh with an old completed_at: a deleted profile (the guard below sees those and
the list falls back to the plain definition), or a session set completed with a back-dated
completed_at (or none) or an edited email; those appear at the next refresh (a scheduled task, every
ORPHAN_LEDGER_REFRESH_MINUTES). The export, "diagnose all" and "backfill all" keep reading
the plain definition.

The guard: the refresh records `profiles`' deleted-row counter (pg_stat_user_tables.n_tup_del)
and its file node (a TRUNCATE changes it); if either differs now, the ledger is not intact
and the list reads the plain definition until the next refresh. The counter is PostgreSQL's
activity statistics, flushed within about a second of a deleting transaction's end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL

from remediation.selectors.sessions import ORPHAN_SQL

LEDGER = "orphan_ledger"
STATE = "orphan_ledger_state"
# An exact count up to this many rows, then the planner's estimate (labelled as such).
COUNT_CAP = 500
# The list's sort keys and the ledger columns that carry them.
SORT_COLUMNS = {"completed_at": "completed_at", "email": "email", "id": "id", "pk": "id"}


def _schema() -> str:
    from remediation.fixes.operations import portal_schema

    return portal_schema()


def ledger_ddl() -> list[str]:
    """The statements that create the ledger (idempotent), as the runbook's confirm page shows."""
    ps = _schema()
    return [
        f"CREATE SCHEMA IF NOT EXISTS {ps}",
        f"CREATE TABLE IF NOT EXISTS {ps}.{LEDGER} (session_id uuid PRIMARY KEY,"
        " completed_at timestamptz NULL, email text NULL)",
        f"CREATE INDEX IF NOT EXISTS {LEDGER}_completed_idx ON {ps}.{LEDGER}"
        " (completed_at, session_id)",
        f"CREATE INDEX IF NOT EXISTS {LEDGER}_email_idx ON {ps}.{LEDGER} (email, session_id)",
        f"CREATE TABLE IF NOT EXISTS {ps}.{STATE} (singleton boolean PRIMARY KEY DEFAULT true"
        " CHECK (singleton), refreshed_at timestamptz NOT NULL, horizon timestamptz NOT NULL,"
        " profiles_deleted bigint NOT NULL, profiles_filenode oid NULL, rows bigint NOT NULL,"
        " seconds double precision NOT NULL)",
    ]


# Read before the orphans, so that whatever happens after it is in the tail or trips the guard.
BASELINE_SQL = (
    "SELECT now(), LEAST(now(), (SELECT min(xact_start) FROM pg_stat_activity"
    " WHERE datname = current_database() AND xact_start IS NOT NULL AND pid <> pg_backend_pid()))"
    " - make_interval(mins => %s),"
    " coalesce((SELECT n_tup_del FROM pg_stat_user_tables WHERE relid = 'public.profiles'::regclass), 0),"
    " pg_relation_filenode('public.profiles')"
)


def refresh_sql() -> list[str]:
    """The refresh, in one transaction: drop the rows that are no longer orphans with the keys
    recorded, add the orphans not listed (ORPHAN_SQL, the one definition), record the state."""
    ps = _schema()
    return [
        f"DELETE FROM {ps}.{LEDGER} l WHERE NOT EXISTS (SELECT 1 FROM public.assessment_sessions s"
        " WHERE s.id = l.session_id AND s.completed_at IS NOT DISTINCT FROM l.completed_at"
        f" AND s.email IS NOT DISTINCT FROM l.email AND {ORPHAN_SQL})",
        f"INSERT INTO {ps}.{LEDGER} (session_id, completed_at, email)"
        " SELECT s.id, s.completed_at, s.email FROM public.assessment_sessions s"
        f" WHERE {ORPHAN_SQL}"
        f" AND NOT EXISTS (SELECT 1 FROM {ps}.{LEDGER} l WHERE l.session_id = s.id)"
        " ON CONFLICT (session_id) DO UPDATE SET completed_at = EXCLUDED.completed_at,"
        " email = EXCLUDED.email",
        f"INSERT INTO {ps}.{STATE} (singleton, refreshed_at, horizon, profiles_deleted,"
        " profiles_filenode, rows, seconds) VALUES (true, %s, %s, %s, %s,"
        f" (SELECT count(*) FROM {ps}.{LEDGER}), %s) ON CONFLICT (singleton) DO UPDATE SET"
        " refreshed_at = EXCLUDED.refreshed_at, horizon = EXCLUDED.horizon,"
        " profiles_deleted = EXCLUDED.profiles_deleted,"
        " profiles_filenode = EXCLUDED.profiles_filenode, rows = EXCLUDED.rows,"
        " seconds = EXCLUDED.seconds",
    ]


def drop_sql() -> list[str]:
    ps = _schema()
    return [f"DROP TABLE IF EXISTS {ps}.{STATE}", f"DROP TABLE IF EXISTS {ps}.{LEDGER}"]


@dataclass(frozen=True)
class LedgerState:
    """The ledger as the database shows it now."""

    exists: bool
    refreshed_at: datetime | None = None
    horizon: datetime | None = None
    rows: int = 0
    seconds: float = 0.0
    intact: bool = False  # no profile deleted (and profiles not truncated) since the refresh
    tail_index: bool = False  # assessment_sessions has an index led by completed_at

    @property
    def usable(self) -> bool:
        return self.exists and self.refreshed_at is not None and self.intact

    def age_seconds(self, now: datetime) -> float | None:
        return (now - self.refreshed_at).total_seconds() if self.refreshed_at else None

    def current(self, now: datetime) -> bool:
        """Intact and refreshed within twice the scheduled interval."""
        age = self.age_seconds(now)
        limit = 2 * 60 * settings.ORPHAN_LEDGER_REFRESH_MINUTES
        return self.usable and age is not None and age <= limit


Q_LEDGER_EXISTS = "SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL"
Q_TAIL_INDEX = (
    "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
    " AND a.attnum = i.indkey[0] WHERE i.indrelid = 'public.assessment_sessions'::regclass"
    " AND a.attname = 'completed_at' AND i.indisvalid"
    " AND (i.indpred IS NULL OR pg_get_expr(i.indpred, i.indrelid) = '(status = ''completed''::text)'))"
)


def q_state() -> str:
    ps = _schema()
    return (
        f"SELECT st.refreshed_at, st.horizon, st.rows, st.seconds,"
        " st.profiles_deleted = coalesce((SELECT n_tup_del FROM pg_stat_user_tables"
        " WHERE relid = 'public.profiles'::regclass), 0)"
        " AND st.profiles_filenode IS NOT DISTINCT FROM pg_relation_filenode('public.profiles')"
        f" FROM {ps}.{STATE} st"
    )


def ledger_state(using: str = "pipeline", *, tail_index: bool = True) -> LedgerState:
    """Whether the ledger exists, when it was refreshed, and whether it is still intact (and,
    unless tail_index=False, whether the completed_at index the live tail reads exists)."""
    ps = _schema()
    with connections[using].cursor() as cur:
        cur.execute(Q_LEDGER_EXISTS, [f"{ps}.{LEDGER}", f"{ps}.{STATE}"])
        exists = bool(cur.fetchone()[0])
        if tail_index:
            cur.execute(Q_TAIL_INDEX)
            tail_index = bool(cur.fetchone()[0])
        if not exists:
            return LedgerState(exists=False, tail_index=tail_index)
        cur.execute(q_state())
        row = cur.fetchone()
    if row is None:
        return LedgerState(exists=True, tail_index=tail_index)
    refreshed_at, horizon, rows, seconds, intact = row
    return LedgerState(
        True, refreshed_at, horizon, int(rows), float(seconds), bool(intact), tail_index
    )


# A ledger row is shown only if its session is an orphan now, with the keys the ledger recorded.
VERIFIED_SQL = (
    f'EXISTS (SELECT 1 FROM public.assessment_sessions s WHERE s.id = "{LEDGER}".session_id'
    f' AND s.completed_at IS NOT DISTINCT FROM "{LEDGER}".completed_at'
    f' AND s.email IS NOT DISTINCT FROM "{LEDGER}".email AND {ORPHAN_SQL})'
)
# The tail leaves out the sessions the ledger part shows.
NOT_LISTED_SQL = (
    f"NOT EXISTS (SELECT 1 FROM {LEDGER} l WHERE l.session_id = assessment_sessions.id"
    " AND l.completed_at IS NOT DISTINCT FROM assessment_sessions.completed_at"
    " AND l.email IS NOT DISTINCT FROM assessment_sessions.email)"
)


def _sql_condition(sql: str) -> RawSQL:
    """A fixed SQL condition (no user input: the texts above) as a filter expression."""
    return RawSQL(sql, [], output_field=BooleanField())  # noqa: S611


def total_ordering(ordering: list[Any]) -> list[str] | None:
    """The list's ordering, made total as the admin makes it (a trailing -pk), or None if an
    item is not one of the ledger's sort keys."""
    out: list[str] = []
    for item in ordering:
        if not isinstance(item, str) or item.lstrip("-") not in SORT_COLUMNS:
            return None
        out.append(item)
    if not out:
        return None
    if not any(item.lstrip("-") in ("id", "pk") for item in out):
        out.append("-pk")
    return out


def order_sql(ordering: list[str]) -> str:
    """ORDER BY over the union's columns."""
    return ", ".join(
        f"o.{SORT_COLUMNS[item.lstrip('-')]} {'DESC' if item.startswith('-') else 'ASC'}"
        for item in ordering
    )


class OrphanPages:
    """The orphans matching the list's filters, in its order: a sequence for a Paginator.

    `ledger_rows` is the ledger with the list's filters applied, `live` the plain definition
    with the same filters (the ChangeList's queryset). Each part is ordered and limited on its
    own (so each walks its index and stops), then the two are merged: `[a:b]` is one statement."""

    ordered = True

    def __init__(
        self,
        *,
        ledger_rows: QuerySet[Any],
        live: QuerySet[Any],
        ordering: list[Any],
        state: LedgerState,
    ) -> None:
        total = total_ordering(ordering)
        if total is None or state.horizon is None:
            raise ValueError("this ordering is read from the plain definition")
        self.order = order_sql(total)
        self.live_order = [i.replace("id", "pk") if i.lstrip("-") == "id" else i for i in total]
        self.live = live
        self.estimated = False
        self.listed = (
            ledger_rows.order_by()
            .filter(_sql_condition(VERIFIED_SQL))
            .values_list("session_id", "completed_at", "email")
        )
        self.tail = (
            live.order_by()
            .filter(completed_at__gte=state.horizon)
            .filter(_sql_condition(NOT_LISTED_SQL))
            .values_list("id", "completed_at", "email")
        )
        self.db = live.db

    def union(self, *, limit: int | None, ordered: bool) -> tuple[str, list[Any]]:
        parts: list[str] = []
        params: list[Any] = []
        for part in (self.listed, self.tail):
            if ordered:
                part = part.order_by(*self.live_order)
            if limit is not None:
                part = part[:limit]
            sql, part_params = part.query.sql_with_params()
            parts.append(f"({sql})")
            params.extend(part_params)
        return f"({' UNION ALL '.join(parts)}) AS o(id, completed_at, email)", params

    def page_sql(self, offset: int, limit: int) -> tuple[str, list[Any]]:
        union, params = self.union(limit=offset + limit, ordered=True)
        return (
            f"SELECT o.id FROM {union} ORDER BY {self.order} LIMIT %s OFFSET %s",
            [*params, limit, offset],
        )

    def ids(self, offset: int, limit: int) -> list[Any]:
        sql, params = self.page_sql(offset, limit)
        with connections[self.db].cursor() as cur:
            cur.execute(sql, params)
            return [r[0] for r in cur.fetchall()]

    def count(self) -> int:
        """Exact up to COUNT_CAP, then the planner's estimate (self.estimated is then True)."""
        union, params = self.union(limit=COUNT_CAP + 1, ordered=False)
        with connections[self.db].cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {union}", params)
            exact = int(cur.fetchone()[0])
            if exact <= COUNT_CAP:
                return exact
            union, params = self.union(limit=None, ordered=False)
            cur.execute(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {union}", params)
            plan = cur.fetchone()[0]
        if isinstance(plan, str):
            import json

            plan = json.loads(plan)
        self.estimated = True
        return max(COUNT_CAP + 1, int(plan[0]["Plan"]["Plan Rows"]))

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, key: slice) -> list[Any]:
        if not isinstance(key, slice):
            raise TypeError("OrphanPages takes slices")
        start = key.start or 0
        stop = key.stop if key.stop is not None else start + COUNT_CAP
        ids = self.ids(start, max(0, stop - start))
        if not ids:
            return []
        found = {obj.pk: obj for obj in self.live.filter(pk__in=ids)}
        # A session that got its profile between the two statements is no longer shown.
        return [found[i] for i in ids if i in found]
