"""The Support limit is per person within a window, not per run; re-score runs need the
Engineer role (run_large_backfill), in the admin form and in the service alike."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from remediation import jobs as bf
from remediation.models import BackfillRun
from tests.factories import make_session

pytestmark = pytest.mark.django_db(databases="__all__")
ORPHANS = "admin:remediation_orphanedsession_changelist"


def _start(user, ids, **kw):
    return bf.backfill_start(selection="ids", ids=ids, enqueue=False, actor=user, **kw)


@override_settings(SUPPORT_MAX_BACKFILL=3, SUPPORT_BACKFILL_WINDOW_MINUTES=60)
def test_runs_back_to_back_share_one_limit_per_person_within_the_window(member, pipeline_db):
    support, other = member("sue", "Support"), member("sam", "Support")
    ids = [make_session(seed=i) for i in range(6)]
    first = _start(support, ids[:2])
    with pytest.raises(bf.RunError) as refused:
        _start(support, ids[2:4])
    first_at = timezone.localtime(first.created_at + timedelta(minutes=60))
    assert str(refused.value) == (
        "2 sessions selected; you may start 1 more now (at most 3 sessions within 60 "
        f"minutes, over all your runs); more become available from {first_at:%H:%M}"
    )
    _start(support, ids[2:3])  # the one left
    with pytest.raises(bf.RunError, match="you may start 0 more now"):
        _start(support, ids[3:4])
    _start(support, ids[3:5], dry_run=True)  # a dry run writes nothing: not counted
    _start(other, ids[3:6])  # another person has a limit of their own
    # Once the runs are older than the window, the person may start again.
    BackfillRun.objects.filter(started_by=support).update(
        created_at=timezone.now() - timedelta(minutes=61)
    )
    _start(support, ids[3:6])
    with pytest.raises(bf.RunError, match="you may start 0 more"):
        _start(support, ids[:1])


@override_settings(SUPPORT_MAX_BACKFILL=3)
def test_one_selection_over_the_cap_says_so_without_a_time(member, pipeline_db):
    ids = [make_session(seed=i) for i in range(4)]
    with pytest.raises(bf.RunError) as refused:
        _start(member("sue", "Support"), ids)
    assert "you may start 3 more now" in str(refused.value)
    assert "available from" not in str(refused.value)


@override_settings(SUPPORT_MAX_BACKFILL=1)
def test_engineers_and_the_command_line_are_not_held_to_the_support_limit(member, pipeline_db):
    ids = [make_session(seed=i) for i in range(4)]
    _start(member("erin", "Engineer"), ids[:2], rescore=True)
    _start(member("erin2", "Engineer"), ids[2:4])
    _start("cli", ids, rescore=True)
    assert BackfillRun.objects.count() == 3


def test_support_may_not_start_a_re_score_run(member, pipeline_db):
    with pytest.raises(bf.RunError, match="re-score runs need the Engineer role"):
        _start(member("sue", "Support"), [make_session()], rescore=True)
    assert not BackfillRun.objects.exists()


def test_the_admin_form_refuses_re_score_for_support_and_shows_it_disabled(
    client, member, pipeline_db
):
    client.force_login(member("sue", "Support"))
    ids = [make_session(seed=i) for i in range(2)]
    url = reverse(ORPHANS)
    confirm = client.post(url, {"action": "backfill_selected", "_selected_action": ids})
    body = confirm.content.decode()
    assert confirm.status_code == 200
    assert "Re-score runs need the Engineer role" in body
    assert 'name="rescore"' in body and "disabled" in body.split('name="rescore"')[1][:80]
    resp = client.post(
        url,
        {
            "action": "backfill_selected",
            "_selected_action": ids,
            "confirm": "yes",
            "backend": "local",
            "batch_size": "10",
            "rescore": "on",
        },
    )
    assert resp.status_code == 200 and "Re-score runs need the Engineer role." in (
        resp.content.decode()
    )
    assert not BackfillRun.objects.exists()
    add = client.post(
        reverse("admin:remediation_backfillrun_add"),
        {"ids": "\n".join(ids), "backend": "local", "batch_size": "10", "rescore": "on"},
    )
    assert add.status_code == 200 and not BackfillRun.objects.exists()


@override_settings(SUPPORT_MAX_BACKFILL=2)
def test_the_admin_says_how_many_are_left(client, member, pipeline_db):
    support = member("sue", "Support")
    client.force_login(support)
    ids = [make_session(seed=i) for i in range(3)]
    _start(support, ids[:1])
    resp = client.post(
        reverse(ORPHANS),
        {
            "action": "backfill_selected",
            "_selected_action": ids[1:],
            "confirm": "yes",
            "backend": "local",
            "batch_size": "10",
        },
        follow=True,
    )
    assert "Backfill not started: 2 sessions selected; you may start 1 more now" in (
        resp.content.decode()
    )
    assert BackfillRun.objects.count() == 1
