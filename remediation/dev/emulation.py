"""Loads an emulated Supabase schema into a database (dev and tests only).

Two variants (setting EMULATED_SCHEMA):

- "emulation": remediation/dev/sql/emulated_supabase.sql, the spec's database as of the
  incident (knobs: EMULATE_SERVICE_ROLE_BYPASSRLS, EMULATE_FC_METRICS_TRIGGER);
- "rebuilt": remediation/dev/sql/rebuilt_from_migrations.sql, the database rebuilt from
  the pipeline's migration files that issue 14 describes (the knobs do not apply: its
  service_role has BYPASSRLS and it always carries the recursive trigger).

Switching variants in one database drops the pipeline tables (and the rebuilt variant's
own table and functions) first; the portal's `opsportal` schema is never touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connections

SQL_DIR = Path(__file__).resolve().parent / "sql"
SCHEMA_FILE = SQL_DIR / "emulated_supabase.sql"
REBUILT_FILE = SQL_DIR / "rebuilt_from_migrations.sql"
# Supabase's roles and auth schema, loaded before either variant.
BASE_FILE = SQL_DIR / "supabase_roles_and_auth.sql"
VARIANTS = ("emulation", "rebuilt")
SEED_MARKER = "-- @seed"

# Every table either variant creates in public, dropped on a switch.
PIPELINE_TABLES = (
    "fc_scores",
    "fc_responses",
    "fc_options",
    "fc_blocks",
    "dashboard_statistics",
    "profiles",
    "assessment_responses",
    "assessment_sessions",
    "calibration_model",
    "type_prototypes",
    "scoring_config",
    "assessment_scoring_key",
)
# Trigger functions either variant creates in public.
PIPELINE_FUNCTIONS = (
    "update_profile_fc_metrics",
    "bump_dashboard_statistics",
    "refresh_dashboard_statistics",
    "update_updated_at_column",
    "handle_updated_at",
)
# scoring_config values a variant's database holds whatever the engine's seed file says;
# load_reference_data() (demo and tests) applies them on top of the seed.
CONFIG_OVERRIDES: dict[str, dict[str, Any]] = {
    "emulation": {},
    "rebuilt": {"fc_expected_min": 24},
}


def _check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"unknown emulated schema variant {variant!r}; one of {VARIANTS}")
    return variant


def current_variant(*, using: str = "pipeline") -> str | None:
    """Which variant the database holds, from the catalog (None: no pipeline schema)."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT to_regclass('public.assessment_sessions') IS NOT NULL,"
            " to_regclass('public.dashboard_statistics') IS NOT NULL"
        )
        has_sessions, has_dashboard = cursor.fetchone()
    if not has_sessions:
        return None
    return "rebuilt" if has_dashboard else "emulation"


def drop_pipeline_schema(*, using: str = "pipeline") -> None:
    """Drop every pipeline table and trigger function either variant creates (with their
    policies, triggers and indexes). Roles, the auth schema and `opsportal` stay."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SET client_min_messages = warning;"
            + "DROP TABLE IF EXISTS "
            + ", ".join(f"public.{t}" for t in PIPELINE_TABLES)
            + " CASCADE;"
            + "".join(f"DROP FUNCTION IF EXISTS public.{f}() CASCADE;" for f in PIPELINE_FUNCTIONS)
        )


def seed_variant_rows(variant: str, *, using: str = "pipeline") -> None:
    """Re-insert the rows a variant's migrations seeded (rebuilt: FC v1.2 and
    fc_expected_min); idempotent, a no-op for the emulation."""
    if _check_variant(variant) != "rebuilt":
        return
    sql = REBUILT_FILE.read_text(encoding="utf-8")
    seed = sql[sql.index(SEED_MARKER) :]
    with connections[using].cursor() as cursor:
        cursor.execute(seed)


def load_emulated_schema(
    *,
    using: str = "pipeline",
    service_role_bypassrls: bool | None = None,
    fc_metrics_trigger: bool | None = None,
    variant: str | None = None,
    reset: bool | None = None,
) -> str:
    """Create the emulated Supabase roles, auth functions and pipeline tables (idempotent).

    `variant` defaults to the EMULATED_SCHEMA setting. `reset=True` drops the pipeline
    tables first; `reset=None` (the default) does so only when the database holds the other
    variant. The knobs default to the EMULATE_* settings and apply to the emulation only.
    Roles are cluster-wide, so BYPASSRLS affects every database on the server.
    Returns the variant loaded.
    """
    from remediation.pipeline import schema

    schema.forget()  # the portal reads the tables' shape again after this
    variant = _check_variant(variant or settings.EMULATED_SCHEMA)
    if reset is None:
        present = current_variant(using=using)
        reset = present is not None and present != variant
    if reset:
        drop_pipeline_schema(using=using)
    with connections[using].cursor() as cursor:
        cursor.execute(BASE_FILE.read_text(encoding="utf-8"))
    if variant == "rebuilt":
        with connections[using].cursor() as cursor:
            cursor.execute(REBUILT_FILE.read_text(encoding="utf-8"))
        return variant
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
    return variant


def table_columns(table: str, *, using: str = "pipeline") -> list[str]:
    """The columns of public.`table` in the live database, in order."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
            [table],
        )
        return [r[0] for r in cursor.fetchall()]
