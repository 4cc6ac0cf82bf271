"""One transaction shape for every pipeline read and write.

`pipeline_transaction()` opens a transaction on the pipeline connection and sets, for
that transaction only, the lock timeout (PIPELINE_ROW_LOCK_TIMEOUT: how long to wait for
a row or table another worker holds) and the statement timeout
(PIPELINE_STATEMENT_TIMEOUT_MS). Reads outside a transaction get the same limits from
the connection options (opsportal.settings), so no page or task waits without bound.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

PIPELINE = "pipeline"


def set_timeouts(using: str = PIPELINE, *, lock_timeout: str | None = None) -> None:
    """SET LOCAL lock_timeout and statement_timeout inside the current transaction."""
    with connections[using].cursor() as cur:
        cur.execute(
            "SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true)",
            [
                lock_timeout or settings.PIPELINE_ROW_LOCK_TIMEOUT,
                f"{settings.PIPELINE_STATEMENT_TIMEOUT_MS}ms",
            ],
        )


@contextmanager
def pipeline_transaction(
    *, using: str = PIPELINE, lock_timeout: str | None = None
) -> Iterator[BaseDatabaseWrapper]:
    """A transaction on the pipeline database with the configured lock and statement timeouts."""
    with transaction.atomic(using=using):
        set_timeouts(using, lock_timeout=lock_timeout)
        yield connections[using]
