"""scoring_config as the pipeline reads it: the one definition of the configured results
version and of the maintenance gate."""

from __future__ import annotations

import json
from typing import Any

from django.db import connections

from remediation.pipeline.context import results_version_of, system_status_of


def _config_value(key: str) -> Any:
    with connections["pipeline"].cursor() as cur:
        cur.execute("SELECT value::text FROM scoring_config WHERE key = %s", [key])
        row = cur.fetchone()
    return json.loads(row[0]) if row and row[0] is not None else None


def configured_results_version() -> str:
    """The results_version profiles should carry now (scoring_config, live)."""
    return results_version_of({"results_version": _config_value("results_version")})


def system_status() -> dict[str, Any]:
    """The maintenance gate, live: anything but status "ok" pauses finalize and backfill."""
    return system_status_of({"system_status": _config_value("system_status")})
