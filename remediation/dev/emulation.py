"""Loads the emulated Supabase schema (remediation/dev/sql/emulated_supabase.sql) into a database."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import connections

SCHEMA_FILE = Path(__file__).resolve().parent / "sql" / "emulated_supabase.sql"


def load_emulated_schema(
    *,
    using: str = "pipeline",
    service_role_bypassrls: bool | None = None,
    fc_metrics_trigger: bool | None = None,
) -> None:
    """Create the emulated Supabase roles, auth functions and pipeline tables (idempotent).

    The knobs default to the EMULATE_* settings. Roles are cluster-wide, so the
    BYPASSRLS knob affects every database on the server.
    """
    if service_role_bypassrls is None:
        service_role_bypassrls = settings.EMULATE_SERVICE_ROLE_BYPASSRLS
    if fc_metrics_trigger is None:
        fc_metrics_trigger = settings.EMULATE_FC_METRICS_TRIGGER
    sql = SCHEMA_FILE.read_text(encoding="utf-8")
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT set_config('prism.emulate_service_role_bypassrls', %s, false),"
            " set_config('prism.emulate_fc_metrics_trigger', %s, false)",
            ["on" if service_role_bypassrls else "off", "on" if fc_metrics_trigger else "off"],
        )
        # One statement per execute keeps psycopg on the simple path; the file has no
        # semicolons inside strings other than in dollar-quoted bodies.
        cursor.execute(sql)
        cursor.execute(
            "SELECT set_config('prism.emulate_service_role_bypassrls', '', false),"
            " set_config('prism.emulate_fc_metrics_trigger', '', false)"
        )
