"""The canary on a real django-q2 cluster: the schedule finds the break and the repair."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from remediation.dev.breaks import EXPECTED, break_write_path
from remediation.models import Alert, BackfillRun, CanaryResult
from tests.cluster import kill_cluster, start_cluster, wait_for

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "pipeline"])

# The cluster's guard loop turns every 30 s: its scheduler pass comes at once, then every
# 30 s (opsportal/test_settings.py), not first after 30 s.
SCHEDULER_ENV = {"Q_GUARD_CYCLE": "30"}


def the_next_minute_has_come() -> None:
    """The canary's next run is due now (not a minute after its last): the scheduler's next
    pass runs it, without the test waiting out the minute."""
    assert Schedule.objects.filter(name="write-path-canary").update(next_run=timezone.now()) == 1


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
    cluster = start_cluster(CANARY_INTERVAL_SECONDS="60", **SCHEDULER_ENV)
    try:
        # The scheduler looks as the cluster starts, then every 30 s; the schedule is due at
        # once, then every minute.
        alert = wait_for(
            lambda: Alert.objects.filter(rule="write_path", state="open").first(),
            120,
            "the canary alert",
        )
        assert EXPECTED["trigger"] in alert.message
        broken.repair()
        the_next_minute_has_come()
        wait_for(
            lambda: Alert.objects.filter(pk=alert.pk, state="resolved").exists(),
            120,
            "the alert resolved",
        )
    finally:
        kill_cluster(cluster)
    outcomes = list(CanaryResult.objects.order_by("at").values_list("outcome", "source"))
    assert outcomes[0] == ("failed", "schedule") and outcomes[-1] == ("ok", "schedule")


def test_with_auto_heal_on_the_repair_heals_the_fresh_orphans_without_anyone_starting_a_run(
    clear_path, settings
):
    from remediation.services.autoheal import autoheal_set
    from tests.factories import make_session, pipeline_sql

    settings.AUTO_HEAL_ENABLED = True
    settings.CANARY_INTERVAL_SECONDS = 60
    call_command("setup_schedules", verbosity=0)
    autoheal_set(enabled=True, actor="test")
    broken = break_write_path("check")
    orphans = [make_session(seed=80 + i, completed_at=None) for i in range(3)]
    pipeline_sql(
        "UPDATE assessment_sessions SET completed_at = now() WHERE id = ANY(%s::uuid[])", [orphans]
    )
    env = {
        "CANARY_INTERVAL_SECONDS": "60",
        "AUTO_HEAL_ENABLED": "true",
        "AUTO_HEAL_THROTTLE_PER_MINUTE": "6000",
        "ORPHAN_ALERT_MINUTES": "0",
        **SCHEDULER_ENV,
    }
    cluster = start_cluster(**env)
    try:
        alert = wait_for(
            lambda: Alert.objects.filter(rule="write_path", state="open").first(),
            120,
            "the canary alert",
        )
        assert BackfillRun.objects.count() == 0  # broken: nothing is healed
        broken.repair()
        the_next_minute_has_come()

        def healed() -> bool:
            n = pipeline_sql(
                "SELECT count(*) FROM profiles WHERE session_id = ANY(%s::uuid[])", [orphans], "one"
            )[0]
            return n == len(orphans)

        wait_for(healed, 150, "the fresh orphans healed")
    finally:
        kill_cluster(cluster)
    assert Alert.objects.get(pk=alert.pk).state == "resolved"
    (run,) = BackfillRun.objects.all()
    assert run.started_by_name == "auto-heal" and run.created == 3
