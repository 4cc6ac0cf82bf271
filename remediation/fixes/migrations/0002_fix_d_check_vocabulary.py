"""Fix D (missed by the plan): the three CHECK constraints on profiles accept the engine's
vocabulary ('none' overlays, 'full'/'low' coverage) in addition to what they allow now.

Apply:     the runbook page, or  manage.py fix apply D
Roll back: the runbook page, or  manage.py fix rollback D

Each constraint is read from the catalog at apply time and its exact definition stored in
<PIPELINE_PORTAL_SCHEMA>.fix_preimages; the new one is `(<old>) OR <column> IN (<engine
values>)`, so every value allowed before is still allowed and no row is rewritten. A
constraint that is missing, or already accepts the values, is left alone. The reverse
restores the stored definitions, and refuses (naming the rows) when rows written since
would violate them.
"""

from typing import ClassVar

from django.db import migrations

from remediation.fixes.operations import PIPELINE_HINTS, execute_with_lock_timeout, portal_schema

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


def backward(apps, schema_editor):
    schema = portal_schema()
    statement = f"""
DO $$
DECLARE
  pre record;
  bad text;
BEGIN
  IF to_regclass('{schema}.fix_preimages') IS NULL THEN
    RETURN;
  END IF;
  FOR pre IN SELECT object, definition FROM {schema}.fix_preimages WHERE fix = 'D' ORDER BY object LOOP
    EXECUTE format('SELECT string_agg(id::text, '', '') FROM (SELECT id FROM public.profiles WHERE NOT (%s) LIMIT 20) x',
                   regexp_replace(regexp_replace(pre.definition, ' NOT VALID$', ''), '^CHECK ', '')) INTO bad;
    IF bad IS NOT NULL THEN
      RAISE EXCEPTION 'Fix D cannot be rolled back: profiles written since would violate % (%): %',
        pre.object, pre.definition, bad
        USING HINT = 'Re-score or correct those rows first, or keep Fix D.';
    END IF;
    EXECUTE format('ALTER TABLE public.profiles DROP CONSTRAINT IF EXISTS %I, ADD CONSTRAINT %I %s',
                   pre.object, pre.object, pre.definition);
  END LOOP;
  DELETE FROM {schema}.fix_preimages WHERE fix = 'D';
END
$$;"""
    execute_with_lock_timeout(schema_editor, [statement])


class Migration(migrations.Migration):
    # Each fix stands alone: applied and rolled back on its own.
    dependencies: ClassVar[list[tuple[str, str]]] = []

    operations = [migrations.RunPython(forward, backward, hints=PIPELINE_HINTS)]
