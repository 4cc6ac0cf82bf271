"""The two gates in scoring_config: results_version and system_status (maintenance)."""

from __future__ import annotations

import json

from django.utils import timezone

from remediation.pipeline import pipeline_transaction

# The statements the gates run (the confirmation page shows them with their values).
RESULTS_VERSION_SQL = (
    "UPDATE scoring_config SET value = to_jsonb(%s::text), updated_at = now()"
    " WHERE key = 'results_version'"
)
SYSTEM_STATUS_SQL = (
    "INSERT INTO scoring_config (key, value, updated_at) VALUES ('system_status', %s::jsonb, now())"
    " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()"
)


def maintenance_value(*, on: bool, message: str = "", actor: str = "") -> dict[str, str]:
    """The system_status value maintenance_set writes."""
    return {
        "status": "maintenance" if on else "ok",
        "message": message or ("IR-07 maintenance" if on else "PRISM online"),
        "updated_by": actor or "opsportal",
        "last_updated": timezone.now().isoformat(),
    }


def results_version_set(*, version: str) -> None:
    """scoring_config.results_version (the plan's full rollback: back to v1.2.0)."""
    if version not in ("v1.2.1", "v1.2.0"):
        raise ValueError("results_version must be v1.2.1 or v1.2.0")
    with pipeline_transaction() as conn, conn.cursor() as cur:
        cur.execute(RESULTS_VERSION_SQL, [version])


def maintenance_set(*, on: bool, message: str = "", actor: str = "") -> None:
    """scoring_config.system_status: anything but "ok" pauses finalize and backfill."""
    value = maintenance_value(on=on, message=message, actor=actor)
    with pipeline_transaction() as conn, conn.cursor() as cur:
        cur.execute(SYSTEM_STATUS_SQL, [json.dumps(value)])
