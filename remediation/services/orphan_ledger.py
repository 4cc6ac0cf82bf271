"""The orphan ledger's writes: create it (from the runbook, after its confirm page), refresh it
(the scheduled task, or the runbook), drop it. All in the portal's own schema of the
pipeline database; nothing in `public` changes. See remediation/selectors/orphan_ledger.py."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.db import connections, transaction

from remediation.selectors import orphan_ledger as ledger
from remediation.services.audit import audit_record

PIPELINE = "pipeline"
# A refresh reads every completed session once: longer than a page's statement timeout.
REFRESH_TIMEOUT = "600s"


def _refresh(cur: Any) -> dict[str, Any]:
    started = time.perf_counter()
    cur.execute(ledger.BASELINE_SQL, [settings.ORPHAN_LEDGER_TAIL_MARGIN_MINUTES])
    refreshed_at, horizon, deleted, filenode = cur.fetchone()
    delete, insert, state = ledger.refresh_sql()
    cur.execute(delete)
    removed = cur.rowcount
    cur.execute(insert)
    added = cur.rowcount
    seconds = time.perf_counter() - started
    cur.execute(state, [refreshed_at, horizon, deleted, filenode, seconds])
    return {
        "refreshed_at": refreshed_at.isoformat(),
        "horizon": horizon.isoformat(),
        "removed": removed,
        "added": added,
        "seconds": round(seconds, 3),
    }


def _transaction(cur: Any) -> None:
    cur.execute(
        "SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true)",
        [settings.PIPELINE_LOCK_TIMEOUT, REFRESH_TIMEOUT],
    )


def orphan_ledger_create(*, actor: Any) -> dict[str, Any]:
    """Create the ledger (idempotent) and fill it; recorded in the audit trail."""
    with transaction.atomic(using=PIPELINE), connections[PIPELINE].cursor() as cur:
        _transaction(cur)
        for sql in ledger.ledger_ddl():
            cur.execute(sql)
        result = _refresh(cur)
    audit_record(actor, "orphan_ledger.create", target=ledger.LEDGER, outcome="ok", detail=result)
    return result


def orphan_ledger_refresh(*, actor: Any = None) -> dict[str, Any] | None:
    """Bring the ledger up to date; None (nothing done) when it does not exist.

    The scheduled refresh (actor None) is not audited: it changes no state anyone chose."""
    if not ledger.ledger_state(PIPELINE).exists:
        return None
    with transaction.atomic(using=PIPELINE), connections[PIPELINE].cursor() as cur:
        _transaction(cur)
        result = _refresh(cur)
    if actor is not None:
        audit_record(
            actor, "orphan_ledger.refresh", target=ledger.LEDGER, outcome="ok", detail=result
        )
    return result


def orphan_ledger_drop(*, actor: Any) -> None:
    """Drop the ledger (the orphan list then reads the plain definition)."""
    with transaction.atomic(using=PIPELINE), connections[PIPELINE].cursor() as cur:
        _transaction(cur)
        for sql in ledger.drop_sql():
            cur.execute(sql)
    audit_record(actor, "orphan_ledger.drop", target=ledger.LEDGER, outcome="ok")
