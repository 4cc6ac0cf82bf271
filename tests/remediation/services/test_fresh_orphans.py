"""The fresh-orphan alert: recent sessions without a profile, with a diagnosed sample."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from remediation.models import Alert
from remediation.services.health import health_check_run
from tests.factories import load_reference_data, make_session

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "pipeline"])


def test_fresh_orphans_open_an_alert_with_their_diagnosis(pipeline_db, settings):
    settings.ORPHAN_ALERT_MINUTES = 15
    settings.ORPHAN_ALERT_HOURS = 6
    load_reference_data()
    now = timezone.now()
    fresh = make_session(seed=1, completed_at=now - timedelta(minutes=30))
    too_new = make_session(seed=2, completed_at=now - timedelta(minutes=5))
    too_old = make_session(seed=3, completed_at=now - timedelta(hours=7))
    opened = health_check_run()["opened"]
    assert "fresh_orphans" in opened
    alert = Alert.objects.get(rule="fresh_orphans", state="open")
    assert alert.severity == "high" and alert.value == 1
    assert fresh in alert.message and too_new not in alert.message and too_old not in alert.message
    # The default emulation: service_role without BYPASSRLS and no policy.
    assert f"{fresh} (rls: Row-level security refused" in alert.message


def test_no_fresh_orphan_no_alert(pipeline_db):
    load_reference_data()
    make_session(seed=4, completed_at=timezone.now() - timedelta(days=3))
    assert "fresh_orphans" not in health_check_run()["opened"]
