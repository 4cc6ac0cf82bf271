"""Bounded waits on the pipeline database, and the one exception a timeout becomes.

Every pipeline connection starts with `statement_timeout` (PIPELINE_STATEMENT_TIMEOUT_MS)
and `lock_timeout` (PIPELINE_ROW_LOCK_TIMEOUT) as connection options (opsportal.settings),
so every statement, reads outside any transaction and inside one alike, is bounded;
`pipeline_transaction()` sets the same limits again for its transaction.

When a pipeline statement hits one of them PostgreSQL answers 55P03 (lock_not_available:
`lock_timeout`) or 57014 (query_canceled: `statement_timeout`). The execute wrapper
installed on every `pipeline` connection (`install()`, from RemediationConfig.ready)
re-raises that error as `PipelineTimeout`: a django.db.OperationalError, so every
`except DatabaseError` still sees it and `classify_error()` still reads the SQLSTATE from
its `__cause__` (the driver's error). The same SQLSTATEs on the portal's own `default`
connection are not pipeline timeouts and stay as they are.

Where a timeout ends up:
- a page: opsportal.middleware.PipelineTimeoutMiddleware answers 503 with
  `PipelineTimeout.message` inside the admin look (the only place that decides it);
- code that catches DatabaseError to show "unreadable" must let PipelineTimeout through
  (`except PipelineTimeout: raise`), so a page under a locked table fails once, fast,
  instead of waiting the timeout again for each of its reads;
- a backfill batch: the sessions of the batch come back "busy" (remediation.pipeline.write)
  and the run engine retries them with backoff, then counts them as failed "busy".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import DatabaseError, OperationalError

PIPELINE = "pipeline"
LOCK_TIMEOUT = "55P03"  # lock_not_available
STATEMENT_TIMEOUT = "57014"  # query_canceled
TIMEOUT_SQLSTATES = frozenset({LOCK_TIMEOUT, STATEMENT_TIMEOUT})

_UNITS_MS = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
_SETTING = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d)?\s*$", re.IGNORECASE)


def setting_ms(value: object) -> int | None:
    """A PostgreSQL time setting ("5s", "300ms", "1min", "250": milliseconds) in ms."""
    found = _SETTING.match(str(value))
    if not found:
        return None
    return round(float(found.group(1)) * _UNITS_MS[(found.group(2) or "ms").lower()])


def limits_ms() -> dict[str, int | None]:
    """The configured limits in milliseconds: {"lock_timeout": …, "statement_timeout": …}."""
    return {
        "lock_timeout": setting_ms(settings.PIPELINE_ROW_LOCK_TIMEOUT),
        "statement_timeout": int(settings.PIPELINE_STATEMENT_TIMEOUT_MS),
    }


class PipelineTimeout(OperationalError):
    """A pipeline statement hit lock_timeout (55P03) or statement_timeout (57014)."""

    def __init__(self, sqlstate: str, detail: str = "") -> None:
        self.sqlstate = sqlstate
        self.detail = detail  # PostgreSQL's own first line ("canceling statement due to …")
        limits = limits_ms()
        if sqlstate == LOCK_TIMEOUT:
            self.setting = "lock_timeout"
            self.limit_ms = limits["lock_timeout"]
            cause = "a table or row it needs is locked by another transaction"
        else:
            self.setting = "statement_timeout"
            self.limit_ms = limits["statement_timeout"]
            cause = (
                "a table it reads may be locked by another transaction, or the query ran too long"
            )
        within = (
            f"{self.limit_ms} ms"
            if self.limit_ms is not None
            else str(settings.PIPELINE_ROW_LOCK_TIMEOUT)
        )
        self.message = (
            f"The pipeline database did not answer within {within}: {cause}"
            f" ({self.setting}, SQLSTATE {sqlstate})."
        )
        super().__init__(self.message)


def timeout_in(exc: BaseException | None) -> PipelineTimeout | None:
    """The PipelineTimeout `exc` is, or was raised from (its __cause__/__context__ chain)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, PipelineTimeout):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def raise_timeouts(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    """Execute wrapper of the pipeline connection: 55P03/57014 become PipelineTimeout."""
    try:
        return execute(sql, params, many, context)
    except PipelineTimeout:
        raise
    except DatabaseError as exc:
        cause = exc.__cause__
        sqlstate = getattr(cause, "sqlstate", None)
        if sqlstate not in TIMEOUT_SQLSTATES:
            raise
        detail = str(cause or exc).splitlines()[0] if str(cause or exc) else ""
        raise PipelineTimeout(str(sqlstate), detail) from cause


def install(sender: Any = None, connection: Any = None, **kwargs: Any) -> None:
    """connection_created receiver: the wrapper on every `pipeline` connection, innermost
    (index 0), so it converts the error before any other wrapper sees it and Django's
    `execute_wrapper()` context manager (which pops the last entry) never removes it."""
    if connection is None or connection.alias != PIPELINE:
        return
    if raise_timeouts not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, raise_timeouts)
