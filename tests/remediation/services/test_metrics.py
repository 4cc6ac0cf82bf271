"""/metrics is valid Prometheus text whatever the label values hold (quotes, backslashes,
newlines): parsed back with prometheus_client's own parser, every value round-trips."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from opsportal.secrets import Secret
from remediation.models import Alert, FinalizeAttempt
from remediation.services.health import snapshot_take
from tests.factories import load_reference_data, make_session, pipeline_sql

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)
TOKEN = "metrics-token-0b1c"
EVIL = 'evil"\\\nname'  # a quote, a backslash, a newline
EVIL_VERSION = 'v1.2"\\\n.x'
EVIL_SEVERITY = 'pa"ge\\'


def _failed_attempt(constraint: str, minutes_ago: int = 5) -> FinalizeAttempt:
    now = timezone.now() - timedelta(minutes=minutes_ago)
    return FinalizeAttempt.objects.create(
        session_id=f"00000000-0000-4000-8000-{minutes_ago:012d}",
        backend="local",
        source="backfill",
        started_at=now,
        finished_at=now,
        outcome="failed",
        reason="check",
        sqlstate="23514",
        constraint_name=constraint,
        error_message=f'new row violates check constraint "{constraint}"',
    )


def _scrape(client) -> str:
    with override_settings(METRICS_TOKEN=Secret(TOKEN)):
        resp = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert resp.status_code == 200
    assert resp["Content-Type"].startswith("text/plain; version=0.0.4")
    return resp.content.decode("utf-8")


def _samples(text: str) -> dict[str, list]:
    return {family.name: list(family.samples) for family in text_string_to_metric_families(text)}


def test_label_values_with_quotes_backslashes_and_newlines_round_trip(client, pipeline_db):
    load_reference_data()
    evil = [_failed_attempt(EVIL, minutes_ago=m) for m in (1, 2, 3)]
    plain = _failed_attempt("profiles_overlay_neuro_check", minutes_ago=4)
    assert FinalizeAttempt.objects.get(pk=evil[0].pk).constraint_name == EVIL
    sid = make_session()
    pipeline_sql(
        "INSERT INTO profiles (session_id, results_version) VALUES (%s, %s)", [sid, EVIL_VERSION]
    )
    Alert.objects.create(
        rule="write_errors",
        severity=EVIL_SEVERITY,
        message="x",
        first_seen=timezone.now(),
        last_seen=timezone.now(),
    )
    snapshot_take()

    text = _scrape(client)
    # Every sample stays on one line: the newline inside the value is escaped.
    assert 'evil"\\\nname' not in text and 'constraint="evil\\"\\\\\\nname"' in text
    families = _samples(text)  # raises on anything that is not valid exposition text

    errors = families["prism_profile_write_errors"]
    by_constraint = {s.labels["constraint"]: s for s in errors}
    assert set(by_constraint) == {EVIL, plain.constraint_name}
    assert by_constraint[EVIL].labels == {"sqlstate": "23514", "constraint": EVIL}
    assert by_constraint[EVIL].value == len(evil) == 3
    assert by_constraint[plain.constraint_name].value == 1

    versions = {s.labels["results_version"]: s.value for s in families["prism_profiles"]}
    assert versions == {EVIL_VERSION: 1.0}
    alerts = {s.labels["severity"]: s.value for s in families["prism_alerts_open"]}
    assert alerts == {EVIL_SEVERITY: 1.0}


def test_the_scrape_counts_attempts_of_the_last_day_only(client, pipeline_db):
    load_reference_data()
    for m in (1, 2):
        _failed_attempt(EVIL, minutes_ago=m)
    _failed_attempt(EVIL, minutes_ago=60 * 30)  # 30 hours ago: outside the 24 h window
    snapshot_take()
    errors = _samples(_scrape(client))["prism_profile_write_errors"]
    assert [(s.labels["constraint"], s.value) for s in errors] == [(EVIL, 2.0)]
