"""Fix E (missed by the plan): stop the trigger on profiles that re-fires itself (54001)
while keeping its effect.

Apply:     the runbook page, or  manage.py fix apply E
Roll back: the runbook page, or  manage.py fix rollback E

Every trigger on public.profiles whose function updates profiles and that has no
pg_trigger_depth() guard is recreated with `WHEN (pg_trigger_depth() < 1)`: the write
that a client makes still fires it (so fc_count and fc_coverage_bucket are still
maintained), the trigger's own UPDATE no longer re-fires it. The original trigger and
function definitions are stored at apply time and restored exactly by the reverse. When
no such trigger exists, nothing is done (a notice says so).
"""

from typing import ClassVar

from django.db import migrations

from remediation.fixes.operations import PIPELINE_HINTS, execute_with_lock_timeout, portal_schema


def forward(apps, schema_editor):
    schema = portal_schema()
    execute_with_lock_timeout(
        schema_editor,
        [
            f"CREATE TABLE IF NOT EXISTS {schema}.fix_preimages (fix text NOT NULL, object text NOT NULL,"
            " definition text NOT NULL, stored_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (fix, object))",
            f"""
DO $$
DECLARE
  t record;
  guarded text;
  n int := 0;
BEGIN
  IF to_regclass('public.profiles') IS NULL THEN
    RETURN;
  END IF;
  FOR t IN
    SELECT tg.tgname, pg_get_triggerdef(tg.oid) AS tdef, pg_get_functiondef(p.oid) AS fdef
      FROM pg_trigger tg JOIN pg_proc p ON p.oid = tg.tgfoid
     WHERE tg.tgrelid = 'public.profiles'::regclass AND NOT tg.tgisinternal
       AND pg_get_functiondef(p.oid) ~* 'update\\s+(public\\.)?profiles'
       AND pg_get_triggerdef(tg.oid) !~* 'pg_trigger_depth'
       AND pg_get_functiondef(p.oid) !~* 'pg_trigger_depth'
  LOOP
    INSERT INTO {schema}.fix_preimages (fix, object, definition) VALUES ('E', 'trigger:' || t.tgname, t.tdef)
      ON CONFLICT (fix, object) DO NOTHING;
    INSERT INTO {schema}.fix_preimages (fix, object, definition) VALUES ('E', 'function:' || t.tgname, t.fdef)
      ON CONFLICT (fix, object) DO NOTHING;
    guarded := regexp_replace(t.tdef, ' EXECUTE (FUNCTION|PROCEDURE) ', ' WHEN (pg_trigger_depth() < 1) EXECUTE \\1 ');
    EXECUTE format('DROP TRIGGER %I ON public.profiles', t.tgname);
    EXECUTE guarded;
    n := n + 1;
  END LOOP;
  IF n = 0 THEN
    RAISE NOTICE 'Fix E: no recursive trigger on profiles here; nothing to do';
  END IF;
END
$$;""",
        ],
    )


def backward(apps, schema_editor):
    schema = portal_schema()
    execute_with_lock_timeout(
        schema_editor,
        [
            f"""
DO $$
DECLARE
  pre record;
  fdef text;
BEGIN
  IF to_regclass('{schema}.fix_preimages') IS NULL THEN
    RETURN;
  END IF;
  FOR pre IN SELECT substr(object, 9) AS tgname, definition FROM {schema}.fix_preimages
              WHERE fix = 'E' AND object LIKE 'trigger:%' LOOP
    SELECT definition INTO fdef FROM {schema}.fix_preimages WHERE fix = 'E' AND object = 'function:' || pre.tgname;
    EXECUTE format('DROP TRIGGER IF EXISTS %I ON public.profiles', pre.tgname);
    IF fdef IS NOT NULL THEN
      EXECUTE fdef;
    END IF;
    EXECUTE pre.definition;
  END LOOP;
  DELETE FROM {schema}.fix_preimages WHERE fix = 'E';
END
$$;"""
        ],
    )


class Migration(migrations.Migration):
    # Each fix stands alone: applied and rolled back on its own.
    dependencies: ClassVar[list[tuple[str, str]]] = []

    operations = [migrations.RunPython(forward, backward, hints=PIPELINE_HINTS)]
