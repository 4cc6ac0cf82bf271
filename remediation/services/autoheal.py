"""Auto-heal: after a canary pass that succeeds, a small throttled backfill of fresh orphans.

Off by default: it acts only when AUTO_HEAL_ENABLED is true and an Engineer switched it on
in the admin (`autoheal_set`, audited). Each canary pass (`autoheal_after_canary`) takes the
switch's row lock first, so two passes (the schedule and `manage.py canary`) never decide
at once: never two heal runs, and none while any other run is active.

The circuit breaker switches auto-heal off (audited, actor "auto-heal") and opens the
`auto_heal_breaker` alert (severity "page") when a heal run has failed for more than
AUTO_HEAL_MAX_FAILURE_SHARE of its processed sessions (once AUTO_HEAL_BREAKER_MIN_SESSIONS
are processed), or when the canary fails while a heal run is active; that heal run is
cancelled. Switching auto-heal on again resolves the breaker's alert.

With AUTO_HEAL_SEND_RESULTS, the results of the sessions a heal run wrote are sent once the
run has ended (remediation.services.notifications.results_send_start).
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from remediation.jobs.engine import ENDED, RunError, failures
from remediation.models import Alert, AutoHeal, BackfillItem, BackfillRun, CanaryResult
from remediation.selectors.canary import HEAL_ACTOR, fresh_orphan_ids
from remediation.services.audit import actor_name, audit_record

logger = logging.getLogger("remediation.autoheal")

BREAKER_RULE = "auto_heal_breaker"


class AutoHealRefused(Exception):
    """The switch cannot be turned on (the setting forbids it)."""


def _locked_state() -> AutoHeal:
    AutoHeal.objects.get_or_create(pk=1)
    return AutoHeal.objects.select_for_update().get(pk=1)


def autoheal_set(*, enabled: bool, actor: Any) -> AutoHeal:
    """Switch auto-heal on or off (audited). On needs AUTO_HEAL_ENABLED; it also resolves
    the breaker's alert (someone looked at why it tripped)."""
    if enabled and not settings.AUTO_HEAL_ENABLED:
        raise AutoHealRefused(
            "AUTO_HEAL_ENABLED is false in this deployment: auto-heal cannot be switched on"
        )
    now = timezone.now()
    with transaction.atomic():
        state = _locked_state()
        before = state.enabled
        state.enabled, state.changed_at, state.changed_by = enabled, now, actor_name(actor)
        state.save()
        audit_record(
            actor,
            "autoheal.on" if enabled else "autoheal.off",
            target="auto-heal",
            outcome="on" if enabled else "off",
            detail={"was": "on" if before else "off"},
        )
    if enabled:
        _resolve_breaker_alert(now)
    return state


def autoheal_after_canary(result: CanaryResult, now: datetime) -> BackfillRun | None:
    """The breaker first, then (on an ok pass with fresh orphans and no active run) a heal
    run. Returns the heal run started, if any."""
    if not settings.AUTO_HEAL_ENABLED:
        return None
    tripped: tuple[str, BackfillRun | None] | None = None
    started = None
    with transaction.atomic():
        state = _locked_state()
        if not state.enabled:
            return None
        tripped = _breaker(state, result)
        if tripped is not None:
            _trip(state, now, *tripped)
        elif result.outcome == CanaryResult.Outcome.OK:
            started = _heal(result, now)
    if tripped is not None:
        _after_trip(*tripped, now)
        return None
    _send_results(now)
    return started


def _breaker(state: AutoHeal, result: CanaryResult) -> tuple[str, BackfillRun | None] | None:
    """Why the breaker trips now (and the heal run concerned), or None."""
    for run in _heal_runs_since(state.changed_at):
        if run.is_active and result.outcome == CanaryResult.Outcome.FAILED:
            return (
                f"the canary failed during heal run #{run.pk}: {result.cause}",
                run,
            )
        failed = failures(run)
        if run.processed >= settings.AUTO_HEAL_BREAKER_MIN_SESSIONS and run.processed:
            share = failed / run.processed
            if share > settings.AUTO_HEAL_MAX_FAILURE_SHARE:
                return (
                    f"heal run #{run.pk} failed for {failed} of {run.processed} sessions "
                    f"({share:.0%}, more than {settings.AUTO_HEAL_MAX_FAILURE_SHARE:.0%})",
                    run,
                )
    return None


def _heal_runs_since(since: datetime | None) -> list[BackfillRun]:
    runs = BackfillRun.objects.filter(kind=BackfillRun.Kind.FINALIZE, started_by_name=HEAL_ACTOR)
    if since is not None:
        runs = runs.filter(created_at__gte=since)
    return list(runs.order_by("-created_at")[:20])


def _trip(state: AutoHeal, now: datetime, reason: str, run: BackfillRun | None) -> None:
    state.enabled, state.changed_at, state.changed_by = False, now, HEAL_ACTOR
    state.tripped_at, state.trip_reason = now, reason[:2000]
    state.save()
    audit_record(
        HEAL_ACTOR,
        "autoheal.tripped",
        target=f"run #{run.pk}" if run else "auto-heal",
        outcome="off",
        detail={"reason": reason},
    )
    Alert.objects.filter(rule=BREAKER_RULE, state=Alert.State.OPEN).update(
        last_seen=now, message=f"Auto-heal switched itself off: {reason}."
    )
    if not Alert.objects.filter(rule=BREAKER_RULE, state=Alert.State.OPEN).exists():
        Alert.objects.create(
            rule=BREAKER_RULE,
            severity="page",
            message=f"Auto-heal switched itself off: {reason}.",
            first_seen=now,
            last_seen=now,
        )


def _after_trip(reason: str, run: BackfillRun | None, now: datetime) -> None:
    from remediation.services.health import alert_notify
    from remediation.services.runs import run_cancel

    logger.warning("auto-heal circuit breaker: %s", reason)
    if run is not None and run.is_active:
        with contextlib.suppress(RunError):  # it ended meanwhile
            run_cancel(run.pk, actor=HEAL_ACTOR)
    alert = Alert.objects.filter(rule=BREAKER_RULE, state=Alert.State.OPEN).first()
    if alert is not None and alert.first_seen == now:
        alert_notify(alert, "firing")


def _resolve_breaker_alert(now: datetime) -> None:
    from remediation.services.health import alert_notify

    alerts = list(Alert.objects.filter(rule=BREAKER_RULE, state=Alert.State.OPEN))
    for alert in alerts:
        alert.state, alert.resolved_at = Alert.State.RESOLVED, now
        alert.save(update_fields=["state", "resolved_at"])
        alert_notify(alert, "resolved")


def _heal(result: CanaryResult, now: datetime) -> BackfillRun | None:
    """A heal run over the fresh orphans, unless a run (of any kind) is active."""
    from remediation.services.runs import backfill_start_exclusive

    if BackfillRun.objects.filter(state__in=BackfillRun.ACTIVE_STATES).exists():
        return None
    ids = fresh_orphan_ids(now, settings.AUTO_HEAL_MAX_SESSIONS)
    if not ids:
        return None
    try:
        # Sessions a paused or interrupted run still holds are left to it.
        run = backfill_start_exclusive(
            overlap="exclude",
            selection=BackfillRun.Selection.IDS,
            ids=ids,
            batch_size=settings.AUTO_HEAL_BATCH_SIZE,
            throttle_per_minute=settings.AUTO_HEAL_THROTTLE_PER_MINUTE or None,
            actor=HEAL_ACTOR,
        )
    except RunError as exc:
        logger.warning("auto-heal could not start a run: %s", exc)
        return None
    result.heal_run_id = run.pk
    result.save(update_fields=["heal_run_id"])
    logger.info("auto-heal started run %s for %s fresh orphans", run.pk, len(ids))
    return run


def _send_results(now: datetime) -> None:
    """AUTO_HEAL_SEND_RESULTS: once per ended heal run, send the results of what it wrote."""
    if not settings.AUTO_HEAL_SEND_RESULTS:
        return
    # The results notifications ("Close the loop"); imported only when used.
    from remediation.services.notifications import results_send_start

    with transaction.atomic():
        state = _locked_state()
        runs = [
            r
            for r in _heal_runs_since(None)
            if r.state in ENDED and (state.last_sent_run_id or 0) < r.pk
        ]
        for run in sorted(runs, key=lambda r: r.pk):
            healed = [
                str(s)
                for s in run.items.filter(outcome=BackfillItem.Outcome.CREATED).values_list(
                    "session_id", flat=True
                )
            ]
            if healed:
                results_send_start(session_ids=healed, actor=HEAL_ACTOR, source_run_id=run.pk)
            state.last_sent_run_id = run.pk
        state.save(update_fields=["last_sent_run_id"])
