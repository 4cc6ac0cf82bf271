"""Auto-heal: fresh orphans healed after an ok canary pass, the circuit breaker, one heal run."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from remediation.dev.breaks import break_write_path
from remediation.jobs import run_until_done
from remediation.models import Alert, AuditEvent, AutoHeal, BackfillRun
from remediation.selectors.canary import HEAL_ACTOR
from remediation.services.autoheal import BREAKER_RULE, AutoHealRefused, autoheal_set
from remediation.services.canary import canary_run
from tests.factories import make_session, pipeline_sql

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "pipeline"])


@pytest.fixture
def heal_settings(settings):
    settings.AUTO_HEAL_ENABLED = True
    settings.AUTO_HEAL_THROTTLE_PER_MINUTE = 60_000
    settings.AUTO_HEAL_BREAKER_MIN_SESSIONS = 2
    settings.AUTO_HEAL_MAX_FAILURE_SHARE = 0.2
    settings.ORPHAN_ALERT_MINUTES = 15
    return settings


def fresh_orphans(n: int, minutes_ago: int = 30) -> list[str]:
    when = timezone.now() - timedelta(minutes=minutes_ago)
    return [make_session(seed=40 + i, completed_at=when) for i in range(n)]


def has_profile(sid: str) -> bool:
    return bool(
        pipeline_sql("SELECT count(*) FROM profiles WHERE session_id = %s", [sid], "one")[0]
    )


def test_switching_on_needs_the_setting_and_is_audited(heal_settings, roles, engineer):
    heal_settings.AUTO_HEAL_ENABLED = False
    with pytest.raises(AutoHealRefused):
        autoheal_set(enabled=True, actor=engineer)
    heal_settings.AUTO_HEAL_ENABLED = True
    autoheal_set(enabled=True, actor=engineer)
    assert AutoHeal.objects.get(pk=1).enabled
    event = AuditEvent.objects.get(action="autoheal.on")
    assert event.actor == "engineer" and event.outcome == "on"


def test_an_ok_pass_heals_the_fresh_orphans_as_auto_heal(heal_settings, clear_variant, engineer):
    fresh = fresh_orphans(3)
    old = make_session(seed=9, completed_at=timezone.now() - timedelta(days=2))
    recent = make_session(seed=10, completed_at=timezone.now() - timedelta(minutes=2))
    # Off: nothing happens.
    assert canary_run().heal_run_id is None
    autoheal_set(enabled=True, actor=engineer)
    result = canary_run()
    assert result.outcome == "ok" and result.heal_run_id is not None
    run = BackfillRun.objects.get(pk=result.heal_run_id)
    assert run.started_by_name == HEAL_ACTOR and run.throttle_per_minute == 60_000
    assert sorted(str(s) for s in run.items.values_list("session_id", flat=True)) == sorted(fresh)
    assert run_until_done(run.pk).state == "succeeded"
    assert all(has_profile(s) for s in fresh)
    assert not has_profile(old) and not has_profile(recent)  # not fresh orphans
    start = AuditEvent.objects.get(action="backfill.start")
    assert start.actor == HEAL_ACTOR and start.session_count == 3
    # Nothing left to heal: the next pass starts nothing.
    assert canary_run().heal_run_id is None


def test_no_heal_run_while_a_run_is_active_and_never_two_at_once(heal_settings, clear_path):
    fresh_orphans(2)
    autoheal_set(enabled=True, actor="test")
    results = []

    def one_pass() -> None:
        try:
            results.append(canary_run())
        finally:
            connections.close_all()

    passes = [threading.Thread(target=one_pass) for _ in range(3)]
    for p in passes:
        p.start()
    for p in passes:
        p.join(60)
    assert len(results) == 3 and all(r.outcome == "ok" for r in results)
    assert BackfillRun.objects.filter(started_by_name=HEAL_ACTOR).count() == 1
    assert sum(1 for r in results if r.heal_run_id) == 1
    # The run is still enqueued (no worker here): the next pass starts no other.
    assert canary_run().heal_run_id is None
    assert BackfillRun.objects.filter(started_by_name=HEAL_ACTOR).count() == 1


def test_the_breaker_trips_when_the_canary_fails_during_a_heal_run(heal_settings, clear_path):
    fresh_orphans(2)
    autoheal_set(enabled=True, actor="test")
    run_id = canary_run().heal_run_id
    assert run_id is not None
    broken = break_write_path("grant")
    try:
        result = canary_run()
    finally:
        broken.repair()
    assert result.outcome == "failed"
    state = AutoHeal.objects.get(pk=1)
    assert not state.enabled and f"during heal run #{run_id}" in state.trip_reason
    alert = Alert.objects.get(rule=BREAKER_RULE, state="open")
    assert alert.severity == "page" and "switched itself off" in alert.message
    assert BackfillRun.objects.get(pk=run_id).state == "cancelled"
    tripped = AuditEvent.objects.get(action="autoheal.tripped")
    assert tripped.actor == HEAL_ACTOR and tripped.target == f"run #{run_id}"
    # Off now: an ok pass with fresh orphans starts nothing.
    assert canary_run().heal_run_id is None
    # Switching it on again resolves the breaker's alert.
    autoheal_set(enabled=True, actor="test")
    alert.refresh_from_db()
    assert alert.state == "resolved"


def test_the_breaker_trips_when_a_heal_run_fails_for_too_many_sessions(heal_settings, clear_path):
    fresh_orphans(3)
    autoheal_set(enabled=True, actor="test")
    run_id = canary_run().heal_run_id
    assert run_id is not None
    # The sessions themselves cannot be written (no answers left), the write path is fine.
    pipeline_sql("DELETE FROM assessment_responses")
    run = run_until_done(run_id)
    assert run.state == "failed" and run.failed == 3
    assert canary_run().outcome == "ok"
    state = AutoHeal.objects.get(pk=1)
    assert not state.enabled
    assert f"heal run #{run_id} failed for 3 of 3 sessions" in state.trip_reason
    assert Alert.objects.filter(rule=BREAKER_RULE, state="open").count() == 1
    assert BackfillRun.objects.filter(started_by_name=HEAL_ACTOR).count() == 1


def test_with_send_results_the_healed_people_get_their_results_once(heal_settings, clear_path):
    """AUTO_HEAL_SEND_RESULTS: once a heal run has ended, the next pass sends the results of
    every session it created (a notify run, actor auto-heal); the loopback SMTP server
    receives one message per healed person with that session's own link, and later passes
    send nothing again."""
    from remediation.models import ResultsNotification
    from tests.notify_helpers import link_in, smtp_server

    heal_settings.AUTO_HEAL_SEND_RESULTS = True
    fresh = fresh_orphans(2)
    autoheal_set(enabled=True, actor="test")
    with smtp_server() as sink:
        run_id = canary_run().heal_run_id
        assert run_id is not None
        assert run_until_done(run_id).created == 2
        assert canary_run().outcome == "ok"  # this pass starts the send
        notify = BackfillRun.objects.get(kind="notify", source_run_id=run_id)
        assert notify.started_by_name == HEAL_ACTOR
        assert run_until_done(notify.pk).state == "succeeded"
        canary_run()  # nothing left to send
        assert BackfillRun.objects.filter(kind="notify").count() == 1
        assert AutoHeal.objects.get(pk=1).last_sent_run_id == run_id
        assert sorted(link_in(m)[0] for m in sink.received) == sorted(fresh)
    states = ResultsNotification.objects.filter(session_id__in=fresh).values_list(
        "state", flat=True
    )
    assert sorted(states) == ["sent", "sent"]
