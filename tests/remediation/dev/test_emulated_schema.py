"""Foundation: emulated schema, router, configuration checks."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import connections, router
from django.test import override_settings

from opsportal.checks import check_portal_settings
from opsportal.routers import PipelineRouter
from remediation.dev.emulation import load_emulated_schema

pytestmark = pytest.mark.django_db(databases="__all__")


def _scalar(sql: str, params: list | None = None, using: str = "pipeline"):
    with connections[using].cursor() as cur:
        cur.execute(sql, params or [])
        return cur.fetchone()[0]


def test_emulated_schema_loads_twice_and_matches_the_contract():
    load_emulated_schema(using="pipeline", service_role_bypassrls=False, fc_metrics_trigger=False)
    load_emulated_schema(using="pipeline", service_role_bypassrls=False, fc_metrics_trigger=False)
    tables = {
        "assessment_sessions",
        "assessment_responses",
        "assessment_scoring_key",
        "scoring_config",
        "type_prototypes",
        "calibration_model",
        "profiles",
        "fc_blocks",
        "fc_options",
        "fc_responses",
        "fc_scores",
    }
    with connections["pipeline"].cursor() as cur:
        cur.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
        assert {r[0] for r in cur.fetchall()} == tables
        cur.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'public.profiles'::regclass"
            " AND contype = 'c' ORDER BY conname"
        )
        assert [r[0] for r in cur.fetchall()] == [
            "profiles_fc_coverage_bucket_check",
            "profiles_overlay_neuro_check",
            "profiles_overlay_state_check",
        ]
        cur.execute(
            "SELECT rolname, rolcanlogin, rolbypassrls FROM pg_roles WHERE rolname IN"
            " ('anon', 'authenticated', 'service_role', 'authenticator') ORDER BY rolname"
        )
        assert cur.fetchall() == [
            ("anon", False, False),
            ("authenticated", False, False),
            ("authenticator", True, False),
            ("service_role", False, False),
        ]
    assert _scalar("SELECT relrowsecurity FROM pg_class WHERE oid = 'public.profiles'::regclass")
    assert (
        _scalar(
            "SELECT count(*) FROM pg_policies WHERE schemaname = 'public' AND tablename = 'profiles'"
        )
        == 0
    )
    # The middle overlay value is U+2013 EN DASH, exactly as the migrations wrote it.
    assert "'–'" in _scalar(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'profiles_overlay_neuro_check'"
    )
    assert _scalar("SELECT has_table_privilege('service_role', 'public.profiles', 'INSERT')")
    assert _scalar("SELECT has_table_privilege('anon', 'public.profiles', 'SELECT')")


def test_bypassrls_knob_flips_service_role():
    try:
        load_emulated_schema(
            using="pipeline", service_role_bypassrls=True, fc_metrics_trigger=False
        )
        assert _scalar("SELECT rolbypassrls FROM pg_roles WHERE rolname = 'service_role'") is True
    finally:
        load_emulated_schema(
            using="pipeline", service_role_bypassrls=False, fc_metrics_trigger=False
        )
    assert _scalar("SELECT rolbypassrls FROM pg_roles WHERE rolname = 'service_role'") is False


def test_auth_functions_read_claims_like_supabase():
    with connections["pipeline"].cursor() as cur:
        cur.execute(
            "SELECT set_config('request.jwt.claims', %s, true)",
            [
                '{"role": "service_role", "sub": "6f1e1d5c-2c3e-4f43-9d4e-3b1c0f5a9e11", "email": ""}'
            ],
        )
        cur.execute("SELECT auth.role(), auth.uid()::text, auth.email(), auth.jwt() ->> 'role'")
        assert cur.fetchone() == (
            "service_role",
            "6f1e1d5c-2c3e-4f43-9d4e-3b1c0f5a9e11",
            "",
            "service_role",
        )
        # An empty legacy setting counts as missing: the JSON claim is used.
        cur.execute("SELECT set_config('request.jwt.claim.role', '', true)")
        cur.execute("SELECT auth.role()")
        assert cur.fetchone()[0] == "service_role"
        # The legacy per-claim setting wins over the JSON claims.
        cur.execute("SELECT set_config('request.jwt.claim.role', 'anon', true)")
        cur.execute("SELECT auth.role()")
        assert cur.fetchone()[0] == "anon"


def test_router_sends_every_pipeline_model_to_pipeline_and_portal_models_to_default():
    pipeline_tables = set()
    for model in apps.get_models():
        db = router.db_for_read(model)
        if model._meta.app_label == "remediation" and getattr(model, "PIPELINE", False):
            assert db == "pipeline", model
            assert router.db_for_write(model) == "pipeline"
            assert model._meta.managed is False or model._meta.proxy
            pipeline_tables.add(model._meta.db_table)
        else:
            assert db == "default", model
    assert {"assessment_sessions", "profiles", "fc_scores", "scoring_config"} <= pipeline_tables
    r = PipelineRouter()
    from remediation.models import Profile

    assert r.allow_migrate("pipeline", "auth") is False
    assert r.allow_migrate("pipeline", "remediation", "profile", model=Profile) is False
    assert r.allow_migrate("default", "remediation", "profile", model=Profile) is False
    assert r.allow_migrate("default", "auth", "user") is True
    assert r.allow_migrate("pipeline", "remediation", hints_only=True, target_db="pipeline") is True
    assert r.allow_migrate("default", "remediation", target_db="pipeline") is False


def test_nothing_of_the_portal_lands_in_the_pipeline_public_schema():
    with connections["pipeline"].cursor() as cur:
        cur.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            " AND (table_name LIKE 'django%%' OR table_name LIKE 'auth%%' OR table_name LIKE 'remediation%%')"
        )
        assert cur.fetchall() == []


@pytest.mark.parametrize(
    ("overrides", "error_id"),
    [
        (
            {
                "DEBUG": False,
                "SECRET_KEY": "django-insecure-opsportal-development-key-do-not-use-in-production",
            },
            "opsportal.E001",
        ),
        ({"SUPABASE_URL": "not a url"}, "opsportal.E002"),
        ({"RESULTS_BASE_URL": "ftp://example.org"}, "opsportal.E002"),
        (
            {"Q_CLUSTER": {"timeout": 300, "retry": 200, "max_attempts": 3, "workers": 2}},
            "opsportal.E004",
        ),
        (
            {"Q_CLUSTER": {"timeout": 300, "retry": 360, "max_attempts": 0, "workers": 2}},
            "opsportal.E004",
        ),
        ({"Q_BROKER": "rabbit"}, "opsportal.E005"),
        ({"EDGE_READ_TIMEOUT": 0}, "opsportal.E006"),
    ],
)
def test_invalid_configuration_fails_with_a_clear_message(overrides, error_id):
    with override_settings(**overrides):
        errors = check_portal_settings()
    assert error_id in [e.id for e in errors]
    assert all(e.msg for e in errors)


def test_valid_configuration_has_no_errors():
    with override_settings(DEBUG=False, SECRET_KEY="x" * 50, SUPABASE_SERVICE_ROLE_KEY="k"):
        errors = check_portal_settings()
    assert [e for e in errors if e.level >= 40] == []


def test_secret_never_shows_its_value():
    from opsportal.secrets import Secret

    s = Secret("canary-service-role-key-123")
    assert "canary" not in repr(s) and "canary" not in str(s) and "canary" not in f"{s}"
    assert s.reveal() == "canary-service-role-key-123"
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(s)
