"""The canary on a real django-q2 cluster: the schedule finds the break and the repair."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django_q.models import Schedule

from remediation.dev.breaks import EXPECTED, break_write_path
from remediation.models import Alert, CanaryResult
from tests.cluster import kill_cluster, start_cluster, wait_for

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "pipeline"])


def test_setup_schedules_adds_the_canary_in_whole_minutes(pipeline_db, settings):
    settings.CANARY_INTERVAL_SECONDS = 300
    call_command("setup_schedules", verbosity=0)
    s = Schedule.objects.get(name="write-path-canary")
    assert (s.func, s.schedule_type, s.minutes) == ("remediation.tasks.canary", "I", 5)
    settings.CANARY_INTERVAL_SECONDS = 20
    call_command("setup_schedules", verbosity=0)
    assert Schedule.objects.get(name="write-path-canary").minutes == 1


def test_the_scheduled_canary_opens_the_alert_and_resolves_it_after_the_repair(
    clear_variant, settings
):
    settings.CANARY_INTERVAL_SECONDS = 60
    call_command("setup_schedules", verbosity=0)
    broken = break_write_path("trigger")
    cluster = start_cluster(CANARY_INTERVAL_SECONDS="60")
    try:
        # The scheduler looks every 30 s; the schedule is due at once, then every minute.
        alert = wait_for(
            lambda: Alert.objects.filter(rule="write_path", state="open").first(),
            120,
            "the canary alert",
        )
        assert EXPECTED["trigger"] in alert.message
        broken.repair()
        wait_for(
            lambda: Alert.objects.filter(pk=alert.pk, state="resolved").exists(),
            120,
            "the alert resolved",
        )
    finally:
        kill_cluster(cluster)
    outcomes = list(CanaryResult.objects.order_by("at").values_list("outcome", "source"))
    assert outcomes[0] == ("failed", "schedule") and outcomes[-1] == ("ok", "schedule")
