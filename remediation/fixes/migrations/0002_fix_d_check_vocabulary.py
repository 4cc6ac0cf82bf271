"""Fix D (missed by the plan): the three CHECK constraints on profiles accept the engine's
vocabulary ('none' overlays, 'full'/'low' coverage) in addition to what they allow now.

Apply:     the runbook page, or  manage.py fix apply D
Roll back: the runbook page, or  manage.py fix rollback D

Each constraint is read from the catalog at apply time and its exact definition stored in
<PIPELINE_PORTAL_SCHEMA>.fix_preimages; the new one is `(<old>) OR <column> IN (<engine
values>)`, so every value allowed before is still allowed and no row is rewritten. A
constraint that is missing, or already accepts the values, is left alone. The reverse
restores the stored definitions, all or none: when rows written since would violate any
of them it raises FixRefused (the constraints, the offending rows and their total) and
changes nothing.
"""

import re
from typing import ClassVar

from django.db import migrations

from remediation.fixes.operations import PIPELINE_HINTS, execute_with_lock_timeout, portal_schema
from remediation.fixes.refusal import ROW_CAP, FixRefused, Violation

VOCABULARY = {
    "profiles_overlay_neuro_check": ("overlay_neuro", ["none"]),
    "profiles_overlay_state_check": ("overlay_state", ["none"]),
    "profiles_fc_coverage_bucket_check": ("fc_coverage_bucket", ["full", "low"]),
}


def forward(apps, schema_editor):
    schema = portal_schema()
    statements = [
        f"CREATE TABLE IF NOT EXISTS {schema}.fix_preimages (fix text NOT NULL, object text NOT NULL,"
        " definition text NOT NULL, stored_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (fix, object))"
    ]
    for name, (column, values) in VOCABULARY.items():
        allowed = ", ".join(f"''{v}''" for v in values)  # inside a quoted format() string
        statements.append(f"""
DO $$
DECLARE
  old_def text;
BEGIN
  SELECT pg_get_constraintdef(oid) INTO old_def FROM pg_constraint
   WHERE conrelid = to_regclass('public.profiles') AND conname = '{name}' AND contype = 'c';
  IF old_def IS NULL THEN
    RAISE NOTICE 'Fix D: constraint {name} does not exist here; nothing to do';
    RETURN;
  END IF;
  IF EXISTS (SELECT 1 FROM {schema}.fix_preimages WHERE fix = 'D' AND object = '{name}') THEN
    RAISE NOTICE 'Fix D: {name} already widened';
    RETURN;
  END IF;
  INSERT INTO {schema}.fix_preimages (fix, object, definition) VALUES ('D', '{name}', old_def);
  EXECUTE format('ALTER TABLE public.profiles DROP CONSTRAINT %I, ADD CONSTRAINT %I CHECK ((%s) OR {column} IN ({allowed}))',
                 '{name}', '{name}', regexp_replace(regexp_replace(old_def, ' NOT VALID$', ''), '^CHECK ', ''));
END
$$;""")
    execute_with_lock_timeout(schema_editor, statements)


def _body(definition: str) -> str:
    """The boolean expression of a stored `CHECK (...) [NOT VALID]` definition."""
    return re.sub(r"^CHECK ", "", re.sub(r" NOT VALID$", "", definition))


def backward(apps, schema_editor):
    """Restore the stored definitions, all or none: when rows written since would violate
    any of them, refuse (FixRefused naming the constraint and the rows) before changing
    anything. The table is locked first so no row slips in between the check and the ALTER."""
    schema = portal_schema()
    with schema_editor.connection.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", [f"{schema}.fix_preimages"])
        if cur.fetchone()[0] is None:
            return
        cur.execute(
            f"SELECT object, definition FROM {schema}.fix_preimages WHERE fix = 'D' ORDER BY object"
        )
        stored = cur.fetchall()
    if not stored:
        return
    execute_with_lock_timeout(
        schema_editor, ["LOCK TABLE public.profiles IN ACCESS EXCLUSIVE MODE"]
    )
    violations = []
    with schema_editor.connection.cursor() as cur:
        for name, definition in stored:
            cur.execute(
                "SELECT id::text, session_id::text, count(*) OVER () FROM public.profiles"
                f" WHERE NOT ({_body(definition)}) ORDER BY id LIMIT {ROW_CAP}"
            )
            rows = cur.fetchall()
            if rows:
                violations.append(
                    Violation(name, definition, rows[0][2], [(r[0], r[1]) for r in rows])
                )
    if violations:
        named = "; ".join(
            f"{v.constraint} ({v.definition}): {v.total} rows, profile ids "
            + ", ".join(r[0] for r in v.rows)
            + (f" and {v.total - len(v.rows)} more" if v.total > len(v.rows) else "")
            for v in violations
        )
        raise FixRefused(
            "D",
            f"Fix D cannot be rolled back: profiles written since would violate {named}."
            " Re-score or correct those rows first, or keep Fix D.",
            reason="violations",
            violations=violations,
        )
    execute_with_lock_timeout(
        schema_editor,
        [
            *(
                f'ALTER TABLE public.profiles DROP CONSTRAINT IF EXISTS "{name}",'
                f' ADD CONSTRAINT "{name}" {definition}'
                for name, definition in stored
            ),
            f"DELETE FROM {schema}.fix_preimages WHERE fix = 'D'",
        ],
    )


class Migration(migrations.Migration):
    # Each fix stands alone: applied and rolled back on its own.
    dependencies: ClassVar[list[tuple[str, str]]] = []

    operations = [migrations.RunPython(forward, backward, hints=PIPELINE_HINTS)]
