"""A database that differs from the emulation: the portal reads the live catalog."""

from __future__ import annotations

import pytest

from remediation.dev.emulation import load_emulated_schema
from remediation.selectors import checks as runbook_checks
from remediation.services import session_diagnose, session_finalize
from tests.factories import (
    load_reference_data,
    make_session,
    pipeline_sql,
    restore_checks,
    set_fixes,
)

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)

DRIFT = [
    # extra columns, one NOT NULL with a default
    "ALTER TABLE profiles ADD COLUMN legacy_notes text, ADD COLUMN tenant text NOT NULL DEFAULT 'prism'",
    # a duplicate unique index on session_id
    "CREATE UNIQUE INDEX profiles_session_id_dup ON profiles (session_id)",
    # share_token without a default
    "ALTER TABLE profiles ALTER COLUMN share_token DROP DEFAULT",
    # extra policies and triggers
    'CREATE POLICY "Users read own profile" ON profiles FOR SELECT TO authenticated USING (user_id = auth.uid())',
    "CREATE FUNCTION public.touch_profile() RETURNS trigger LANGUAGE plpgsql AS"
    " $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$",
    "CREATE TRIGGER touch_profile BEFORE UPDATE ON profiles FOR EACH ROW EXECUTE FUNCTION public.touch_profile()",
]
UNDO = [
    "DROP TRIGGER IF EXISTS touch_profile ON profiles",
    "DROP FUNCTION IF EXISTS public.touch_profile()",
    'DROP POLICY IF EXISTS "Users read own profile" ON profiles',
    "ALTER TABLE profiles ALTER COLUMN share_token SET DEFAULT replace(gen_random_uuid()::text, '-', '')",
    "DROP INDEX IF EXISTS profiles_session_id_dup",
    "ALTER TABLE profiles DROP COLUMN IF EXISTS legacy_notes, DROP COLUMN IF EXISTS tenant",
]


@pytest.fixture
def drifted(pipeline_db):
    load_emulated_schema(service_role_bypassrls=False, fc_metrics_trigger=True)
    load_reference_data()
    for sql in DRIFT:
        pipeline_sql(sql)
    yield
    pipeline_sql("DELETE FROM profiles")
    set_fixes("0004")
    for sql in UNDO:
        pipeline_sql(sql)
    pipeline_sql("DROP TRIGGER IF EXISTS update_fc_metrics_trigger ON profiles")
    pipeline_sql("ALTER ROLE service_role NOBYPASSRLS")
    restore_checks()
    pipeline_sql("DROP SCHEMA IF EXISTS opsportal CASCADE")


def test_diagnosis_migrations_and_finalize_on_a_drifted_schema(drifted):
    sid = make_session()
    assert session_diagnose(session_id=sid).category == "rls"
    set_fixes("0005")
    assert session_diagnose(session_id=sid).sqlstate == "23514"
    set_fixes("0007")
    assert session_diagnose(session_id=sid).sqlstate == "54001"
    set_fixes("0008")
    assert (
        runbook_checks.recursive_triggers() == []
    )  # touch_profile is not recursive: left as it was
    assert (
        "touch_profile"
        in pipeline_sql(
            "SELECT string_agg(tgname, ',') FROM pg_trigger WHERE tgrelid = 'profiles'::regclass",
            fetch="one",
        )[0]
    )
    attempt = session_finalize(session_id=sid)
    assert attempt.outcome == "created", attempt.explanation
    token, tenant = pipeline_sql(
        "SELECT share_token, tenant FROM profiles WHERE session_id = %s", [sid], "one"
    )
    session_token = pipeline_sql(
        "SELECT share_token FROM assessment_sessions WHERE id = %s", [sid], "one"
    )[0]
    assert token == session_token and tenant == "prism"
    # A re-score keeps the profile's token.
    assert session_finalize(session_id=sid, rescore=True).outcome == "rescored"
    assert (
        pipeline_sql("SELECT share_token FROM profiles WHERE session_id = %s", [sid], "one")[0]
        == token
    )
    # The checks read the live catalog: both policies are listed.
    checks = {c.key: c for c in runbook_checks.run_checks()}
    assert checks["policies"].figure == "2"
