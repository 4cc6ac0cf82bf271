"""What the banner on every admin page says: open alerts by severity, the maintenance gate.

Read on every admin page, so it costs one query on each database and never fails the
page: an unreadable pipeline (down, a locked scoring_config, a timeout) is reported as
such in the banner, with the error's kind, never raised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import connections, transaction
from django.db.models import Count

from remediation.models import Alert

# Most severe first (the severities the alert rules of selectors/health.py use).
SEVERITIES = ("critical", "page", "high", "medium", "investigate")
# The banner's own bound on the pipeline read (a page must not wait for it).
LOCK_TIMEOUT_MS = 300
STATEMENT_TIMEOUT_MS = 1000


@dataclass
class BannerState:
    alerts: list[tuple[str, int]] = field(default_factory=list)  # (severity, open count)
    alerts_error: str = ""
    # The system_status value while it is not "ok" (maintenance), else None.
    maintenance: dict[str, Any] | None = None
    pipeline_error: str = ""

    @property
    def open_alerts(self) -> int:
        return sum(n for _, n in self.alerts)


def open_alerts_by_severity() -> list[tuple[str, int]]:
    """(severity, open alerts), most severe first; unknown severities last."""
    rows = Alert.objects.filter(state=Alert.State.OPEN).values("severity").annotate(n=Count("id"))
    counts = {r["severity"]: r["n"] for r in rows.order_by()}
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(counts.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0]))


def _system_status_bounded() -> dict[str, Any]:
    """scoring_config.system_status with the banner's short limits (a transaction of its
    own when none is open; inside one, a savepoint and the connection's limits)."""
    from remediation.selectors.config import system_status

    conn = connections["pipeline"]
    own = not conn.in_atomic_block
    with transaction.atomic(using="pipeline"):
        if own:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT set_config('lock_timeout', %s, true),"
                    " set_config('statement_timeout', %s, true)",
                    [f"{LOCK_TIMEOUT_MS}ms", f"{STATEMENT_TIMEOUT_MS}ms"],
                )
        return system_status()


def banner_state() -> BannerState:
    state = BannerState()
    try:
        state.alerts = open_alerts_by_severity()
    except Exception as exc:  # the banner never fails a page
        state.alerts_error = type(exc).__name__
    try:
        status = _system_status_bounded()
    except Exception as exc:  # down, locked, timed out: said in the banner, not raised
        state.pipeline_error = type(exc).__name__
    else:
        if status.get("status") != "ok":
            state.maintenance = status
    return state
