"""Fix A of the IR-07 plan: the service-role policy on public.profiles, exactly as written.

Apply:     the runbook page, or  manage.py fix apply A
Roll back: the runbook page, or  manage.py fix rollback A

Idempotent: a policy of the same name applied by hand beforehand leaves exactly one.
What it does and does not protect is on the runbook page: `TO public` with a check on
auth.role() lets any session that sets the claim itself through, and a service_role with
BYPASSRLS (hosted Supabase) never needed it.
"""

from typing import ClassVar

from django.db import migrations

from remediation.fixes.operations import run_sql

POLICY = "Service role can manage profiles"

FORWARD = f"""
DO $$
BEGIN
  IF to_regclass('public.profiles') IS NULL THEN
    RAISE NOTICE 'public.profiles does not exist here: nothing to do';
    RETURN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = 'public'
                 AND tablename = 'profiles' AND policyname = '{POLICY}') THEN
    CREATE POLICY "{POLICY}"
    ON public.profiles
    FOR ALL
    TO public
    USING (auth.role() = 'service_role')
    WITH CHECK (auth.role() = 'service_role');
  END IF;
END
$$;
"""

BACKWARD = f"""
DO $$
BEGIN
  IF to_regclass('public.profiles') IS NOT NULL THEN
    DROP POLICY IF EXISTS "{POLICY}" ON public.profiles;
  END IF;
END
$$;
"""


class Migration(migrations.Migration):
    # Each fix stands alone: applied and rolled back on its own.
    dependencies: ClassVar[list[tuple[str, str]]] = []

    operations = [run_sql(FORWARD, BACKWARD)]
