"""The write-path canary's write: what the pipeline does for a new session, always rolled back.

In one pipeline transaction: insert a synthetic completed session, write the engine's
profile row for it as service_role with PostgREST's claims (`upsert_profiles`, the write
path's own upsert), update the session as the write path does (`update_sessions`); then
roll everything back. The rows are the engine's own (`samples.engine_sample_rows`: one per
branch that sets a categorical column under this database's config), so a CHECK that
refuses any value the engine can write here, a trigger that fails, RLS or a missing grant
are met exactly as a real finalize meets them.

Locks: the transaction waits at most the lock timeout for any lock (lock_timeout), each
statement runs at most that long (statement_timeout), and the server ends the session if
it sits idle inside the transaction longer than that (idle_in_transaction_session_timeout;
transaction_timeout as well on PostgreSQL 17+). The rows it locks are its own, new ones, so a
concurrent finalize never waits on them; what it shares (e.g. a per-day counter row a
trigger upserts) is held for the few milliseconds the transaction lasts.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections, transaction

from remediation.pipeline.context import PipelineContext
from remediation.pipeline.errors import DbErrorInfo, _function_in_context, classify_error
from remediation.pipeline.profiles import Unit, update_sessions, upsert_profiles
from remediation.pipeline.samples import engine_sample_rows
from remediation.pipeline.transaction import pipeline_transaction

# Not a verdict on the write path: a lock not granted in time, a statement or the transaction
# cut short by the timeouts, a deadlock, the session ended by the server.
INCONCLUSIVE_SQLSTATES = ("55P03", "57014", "40P01", "25P03", "25P04", "57P01")
TOKEN_PREFIX = "canary-"  # noqa: S105 (a share-token prefix of the synthetic sessions, never committed)


@dataclass
class CanaryWrite:
    """What one canary write found."""

    ok: bool
    duration_ms: float
    rows_written: int = 0
    statement: str = ""  # the step the database refused: session insert, profile write, …
    case: str = ""  # how the refused engine row was answered
    error: DbErrorInfo | None = None
    trigger: str = ""  # the trigger(s) whose function failed, when a trigger failed

    @property
    def inconclusive(self) -> bool:
        """Neither ok nor broken: the pass could not finish within the lock timeout."""
        if self.error is None:
            return False
        return self.error.sqlstate in INCONCLUSIVE_SQLSTATES or self.statement == "transaction"


class _Refused(Exception):
    def __init__(self, statement: str, error: DatabaseError, row: dict[str, Any] | None = None):
        super().__init__(statement)
        self.statement, self.error, self.row = statement, error, row


def canary_write(
    ctx: PipelineContext,
    now: datetime,
    *,
    using: str = "pipeline",
    pause: Callable[[], None] | None = None,
) -> CanaryWrite:
    """Insert, write and update like the pipeline for new sessions, then roll back.

    `pause` (tests) is called inside the transaction after the writes, before the rollback.
    Raises ValueError when the engine has nothing to score here (no scoring key).
    """
    samples = engine_sample_rows(ctx, now)  # scored before the transaction: no lock held
    if not samples:
        raise ValueError("the engine has nothing to score here (no Likert item in the scoring key)")
    started = time.monotonic()
    timeout = settings.PIPELINE_ROW_LOCK_TIMEOUT
    written = 0
    label = ""
    try:
        with pipeline_transaction(using=using, lock_timeout=timeout) as conn:
            with conn.cursor() as cur:
                _bound(cur, timeout)
                required = required_session_columns(cur)
                for case, sample in samples:
                    label = case  # named in the result when this row is refused
                    _one(cur, ctx, sample, now, using, required)
                    written += 1
                if pause is not None:
                    pause()
            transaction.set_rollback(True, using=using)
    except _Refused as exc:
        _recover(using)
        info = classify_error(
            exc.error,
            using=using,
            attempted_row=exc.row if exc.statement == "profile write" else None,
            statement=exc.statement,
        )
        return CanaryWrite(
            False,
            _ms(started),
            written,
            exc.statement,
            label,
            info,
            trigger_of(info, using) if info.category == "trigger" else "",
        )
    except DatabaseError as exc:  # the transaction itself (timeouts set, the session ended)
        _recover(using)
        info = classify_error(exc, using=using)
        return CanaryWrite(False, _ms(started), written, "transaction", label, info)
    return CanaryWrite(True, _ms(started), written)


def _bound(cur: Any, timeout: str) -> None:
    """Every statement and every idle moment inside the transaction at most `timeout`."""
    cur.execute(
        "SELECT set_config('statement_timeout', %s, true),"
        " set_config('idle_in_transaction_session_timeout', %s, true),"
        " current_setting('server_version_num')::int",
        [timeout, timeout],
    )
    if cur.fetchone()[2] >= 170000:
        cur.execute("SELECT set_config('transaction_timeout', %s, true)", [timeout])


# A value of each common type for a NOT NULL column without a default that the app fills and
# the portal knows nothing about (a real sessions table may have some): SQL expressions.
PLACEHOLDERS = {
    "text": "'canary'",
    "character varying": "'canary'",
    "uuid": "gen_random_uuid()",
    "integer": "0",
    "bigint": "0",
    "smallint": "0",
    "numeric": "0",
    "real": "0",
    "double precision": "0",
    "boolean": "false",
    "timestamp with time zone": "now()",
    "timestamp without time zone": "now()",
    "date": "current_date",
    "jsonb": "'{}'::jsonb",
    "json": "'{}'::json",
}
_SET = ("status", "share_token", "started_at", "completed_at")


def required_session_columns(cur: Any) -> dict[str, str]:
    """NOT NULL columns without a default of assessment_sessions the canary must fill
    (column -> SQL placeholder), other than the ones it sets; unknown types are left out
    (the insert then names them)."""
    cur.execute(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = 'public' AND table_name = 'assessment_sessions'"
        " AND is_nullable = 'NO' AND column_default IS NULL AND is_identity = 'NO'"
        " AND is_generated = 'NEVER' ORDER BY ordinal_position"
    )
    return {
        name: PLACEHOLDERS[kind]
        for name, kind in cur.fetchall()
        if kind in PLACEHOLDERS and name not in _SET
    }


def _one(
    cur: Any,
    ctx: PipelineContext,
    sample: dict[str, Any],
    now: datetime,
    using: str,
    required: dict[str, str],
) -> None:
    """One new session: insert it completed, upsert the engine's row as service_role, update it."""
    token = TOKEN_PREFIX + uuid.uuid4().hex
    columns = ["status", "share_token"]
    values: list[Any] = ["completed", token]
    for column in ("started_at", "completed_at"):
        if ctx.has("assessment_sessions", column):
            columns.append(column)
            values.append(now)
    names = ", ".join([*columns, *required])
    placeholders = ", ".join([*(["%s"] * len(values)), *required.values()])
    try:
        with transaction.atomic(using=using):
            cur.execute(
                f"INSERT INTO assessment_sessions ({names}) VALUES ({placeholders})"
                " RETURNING id::text",
                values,
            )
            sid = cur.fetchone()[0]
    except DatabaseError as exc:
        raise _Refused("session insert", exc) from exc
    row = {**sample, "session_id": sid}
    if "share_token" in row:
        row["share_token"] = token
    try:
        with transaction.atomic(using=using):
            upsert_profiles(cur, [row])
    except DatabaseError as exc:
        raise _Refused("profile write", exc, row) from exc
    try:
        with transaction.atomic(using=using):
            update_sessions(cur, [Unit(sid, row, 0)], now, ctx)
    except DatabaseError as exc:
        raise _Refused("session update", exc) from exc


def _recover(using: str) -> None:
    """A session the server ended (idle or transaction timeout) is closed, so the next use
    of the alias connects again."""
    conn = connections[using]
    try:
        if conn.connection is not None:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
    except Exception:  # the connection is gone: whatever the driver says
        conn.close()


def trigger_of(info: DbErrorInfo, using: str = "pipeline") -> str:
    """The names of the triggers that run the function a trigger error came from."""
    fn = _function_in_context(info.context).split("(")[0].split(".")[-1]
    if not fn:
        return ""
    try:
        with connections[using].cursor() as cur:
            cur.execute(
                "SELECT string_agg(DISTINCT t.tgname, ', ' ORDER BY t.tgname) FROM pg_trigger t"
                " JOIN pg_proc p ON p.oid = t.tgfoid WHERE NOT t.tgisinternal AND p.proname = %s",
                [fn],
            )
            found = cur.fetchone()[0]
    except DatabaseError:
        return ""
    return found or ""


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
