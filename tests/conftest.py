"""Test setup: real PostgreSQL only.

With DATABASE_URL/PIPELINE_DATABASE_URL unset the suite runs on its own embedded
PostgreSQL (.pgdata-test/), separate from the demo's, because the emulated Supabase
roles are cluster-wide and tests flip BYPASSRLS. pytest-django creates test_<name>
databases; the pipeline one gets the emulated Supabase schema, never Django tables.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("EMBEDDED_PG_DIR", str(ROOT / ".pgdata-test"))
os.environ.setdefault("OPSPORTAL_TESTING", "1")
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop in e2e tests


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    from remediation.emulation import load_emulated_schema

    with django_db_blocker.unblock():
        load_emulated_schema(
            using="pipeline", service_role_bypassrls=False, fc_metrics_trigger=False
        )
    yield


PIPELINE_TABLES = (
    "fc_scores, fc_responses, fc_options, fc_blocks, profiles, assessment_responses,"
    " assessment_sessions, calibration_model, type_prototypes, scoring_config,"
    " assessment_scoring_key"
)


@pytest.fixture
def pipeline_db(transactional_db):
    """Both databases, committed for real (other connections and threads see the data);
    the pipeline tables are emptied before and after the test."""
    from django.db import connections

    def clean() -> None:
        with connections["pipeline"].cursor() as cur:
            cur.execute(f"TRUNCATE {PIPELINE_TABLES}")

    clean()
    yield connections["pipeline"]
    clean()


pytest_plugins: list[str] = []
