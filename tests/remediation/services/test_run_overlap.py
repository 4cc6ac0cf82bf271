"""Overlaps are refused by default: a run over sessions another active run holds is refused
(or, chosen explicitly, starts without them), in the service and on the confirmation pages;
two starts at once cannot both take the same sessions."""

from __future__ import annotations

import threading

import pytest
from django.contrib.admin import helpers
from django.db import connections
from django.urls import reverse

from remediation import jobs
from remediation.models import AuditEvent, BackfillRun
from remediation.services import runs
from tests.factories import make_session

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


def _first(ids):
    return runs.backfill_start_exclusive(selection="ids", ids=ids, enqueue=False, actor="t")


def test_a_second_run_over_held_sessions_is_refused_and_starts_nothing(clear_variant):
    ids = [make_session(seed=i) for i in range(5)]
    first = _first(ids[:3])
    with pytest.raises(runs.RunOverlap) as refused:
        _first(ids)
    assert refused.value.overlap.held == {first.pk: ids[:3]}
    assert (
        f"3 of the 5 selected sessions are held by another active run (3 by run #{first.pk}"
        in str(refused.value)
    )
    assert BackfillRun.objects.count() == 1
    assert AuditEvent.objects.filter(action="backfill.start").count() == 1


def test_excluding_leaves_the_held_sessions_out_and_records_it(clear_variant):
    ids = [make_session(seed=i) for i in range(5)]
    first = _first(ids[:3])
    second = runs.backfill_start_exclusive(
        selection="ids", ids=ids, enqueue=False, actor="t", overlap="exclude"
    )
    assert sorted(str(s) for s in second.items.values_list("session_id", flat=True)) == sorted(
        ids[3:]
    )
    assert second.estimated_total == 2
    assert second.selection_params["excluded_held_by"] == {str(first.pk): 3}
    with pytest.raises(jobs.RunError, match="every selected session is held"):
        runs.backfill_start_exclusive(
            selection="ids", ids=ids[:3], enqueue=False, actor="t", overlap="exclude"
        )


def test_a_stopped_run_holds_nothing_and_done_sessions_are_not_held(clear_variant):
    ids = [make_session(seed=i) for i in range(4)]
    first = _first(ids[:2])
    jobs.run_until_done(first.pk)  # ended: its sessions are free
    assert runs.run_overlap(ids).held == {}
    paused = _first(ids[2:])
    runs.run_pause(paused.pk)  # paused: it will resume, so it still holds them
    assert runs.run_overlap(ids).held == {paused.pk: ids[2:]}


def test_two_starts_at_once_cannot_both_take_the_same_sessions(clear_variant):
    ids = [make_session(seed=i) for i in range(6)]
    outcomes: list[object] = []
    barrier = threading.Barrier(2)

    def start() -> None:
        try:
            barrier.wait()
            outcomes.append(_first(ids))
        except runs.RunOverlap as exc:
            outcomes.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(type(o).__name__ for o in outcomes) == ["BackfillRun", "RunOverlap"]
    assert BackfillRun.objects.count() == 1
    assert BackfillRun.objects.get().estimated_total == 6


def test_the_orphan_list_action_shows_the_overlap_then_refuses_or_excludes(
    clear_variant, admin_client
):
    ids = [make_session(seed=i) for i in range(4)]
    first = _first(ids[:1])
    url = reverse("admin:remediation_orphanedsession_changelist")
    post = {"action": "backfill_selected", helpers.ACTION_CHECKBOX_NAME: ids}
    page = admin_client.post(url, post).content.decode()
    link = reverse("admin:remediation_backfillrun_change", args=[first.pk])
    assert '<strong id="overlap-count">1</strong>' in page
    assert f'<a href="{link}" class="overlap-run">run #{first.pk}</a>' in page
    assert 'id="overlap-refuse" checked' in page
    confirm = {**post, "confirm": "yes", "backend": "local", "batch_size": 50}
    refused = admin_client.post(url, {**confirm, "overlap": "refuse"}).content.decode()
    assert "Backfill not started: 1 of the selected sessions are held" in refused
    assert f'<a href="{link}" class="overlap-run">run #{first.pk}</a>' in refused
    assert BackfillRun.objects.count() == 1
    response = admin_client.post(url, {**confirm, "overlap": "exclude"})
    second = BackfillRun.objects.exclude(pk=first.pk).get()
    assert response.url == reverse("admin:remediation_backfillrun_change", args=[second.pk])
    assert second.estimated_total == 3


def test_the_cli_refuses_an_overlap_unless_told_to_exclude(clear_variant):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    ids = [make_session(seed=i) for i in range(3)]
    first = _first(ids[:2])
    with pytest.raises(CommandError, match=f"2 by run #{first.pk}"):
        call_command("backfill", "--ids", *ids, "--no-wait")
    call_command("backfill", "--ids", *ids, "--no-wait", "--exclude-held")
    assert BackfillRun.objects.exclude(pk=first.pk).get().estimated_total == 1
