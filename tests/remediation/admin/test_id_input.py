"""Id input never loses data (issue 17, point 5): pasted ids in any separator all count,
every malformed or unknown id is listed before anything starts, the Add form leads to the
same confirmation page as the orphan list, and reversed ranges and malformed search terms
say what is wrong instead of a bare zero."""

from __future__ import annotations

import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from remediation import jobs
from remediation.models import BackfillRun
from tests.factories import make_session, start_new_backfill

pytestmark = pytest.mark.django_db(databases="__all__")
ADD = "admin:remediation_backfillrun_add"
PARAMS = {"backend": "local", "batch_size": "10"}
ORPHANS = "admin:remediation_orphanedsession_changelist"
SESSIONS = "admin:remediation_assessmentsession_changelist"


@pytest.fixture
def four(clear_path):
    return [make_session(seed=i) for i in range(4)]


def _messages(resp) -> list[str]:
    return [str(m) for m in resp.context["messages"]]


def test_four_comma_separated_ids_lead_to_a_confirmation_of_four(admin_client, four):
    confirm, done = start_new_backfill(admin_client, {"ids": ", ".join(four), **PARAMS})
    page = confirm.content.decode()
    # The same page as the orphan list's action: the count, a sample, the parameters.
    assert 'id="backfill-count">4<' in page and "4 session ids from the pasted list" in page
    assert [str(s.pk) for s in confirm.context["sample"]] == four
    assert 'id="start-backfill"' in page
    run = BackfillRun.objects.get()
    assert run.estimated_total == 4 and run.selection == "ids"
    assert sorted(str(i.session_id) for i in run.items.all()) == sorted(four)
    assert done["Location"] == reverse("admin:remediation_backfillrun_change", args=[run.pk])


def test_the_add_form_starts_nothing_before_the_confirmation(admin_client, four):
    page = admin_client.post(reverse(ADD), {"ids": f"{four[0]};{four[1]}\t{four[2]}", **PARAMS})
    assert page.context["total"] == 3 and not BackfillRun.objects.exists()
    # A confirmation whose selection is gone (used, or from another login) starts nothing.
    resp = admin_client.post(reverse(ADD), {"pending": "forged", "confirm": "yes", **PARAMS})
    assert resp.status_code == 302 and not BackfillRun.objects.exists()
    follow = admin_client.get(resp["Location"])
    assert "This confirmation has expired or was used already" in follow.content.decode()


def test_every_malformed_and_unknown_id_is_listed_and_nothing_starts(admin_client, four):
    unknown = str(uuid.UUID(int=7))
    text = f"{four[0]},{unknown}\nnot-an-id {four[1]}\n{four[2][:-2]}"
    page = admin_client.post(reverse(ADD), {"ids": text, **PARAMS}).content.decode()
    assert "3 of the ids cannot be used; nothing was started" in page
    assert f"line 1: {unknown} is not a session in the pipeline database" in page
    assert "line 2: &#x27;not-an-id&#x27; is not a session id" in page
    assert f"line 3: &#x27;{four[2][:-2]}&#x27; is not a session id" in page
    assert not BackfillRun.objects.exists()
    # The same in an uploaded CSV (a header row: its session_id column).
    upload = SimpleUploadedFile("ids.csv", f"session_id;email\n{unknown};x@y\n".encode())
    page = admin_client.post(reverse(ADD), {"csv_file": upload, **PARAMS}).content.decode()
    assert f"line 2: {unknown} is not a session in the pipeline database" in page
    assert not BackfillRun.objects.exists()


def test_a_reversed_window_in_the_add_form_says_so(admin_client, four):
    data = {"completed_from": "2026-12-05", "completed_to": "2026-12-01", **PARAMS}
    page = admin_client.post(reverse(ADD), data).content.decode()
    assert "the date range is reversed: from 2026-12-05 is after to 2026-12-01" in page
    assert not BackfillRun.objects.exists()


def test_a_window_leads_to_the_confirmation_with_its_count(admin_client, four):
    from datetime import timedelta

    from django.utils import timezone

    today = timezone.localdate()
    data = {
        "completed_from": str(today - timedelta(days=5)),
        "completed_to": str(today),
        **PARAMS,
    }
    confirm, _ = start_new_backfill(admin_client, data)
    assert confirm.context["total"] == 4
    assert "every orphaned session completed from" in confirm.content.decode()
    assert BackfillRun.objects.get().selection == "window"


def test_a_reversed_range_on_the_orphan_list_says_what_is_wrong(admin_client, four):
    resp = admin_client.get(
        reverse(ORPHANS), {"completed_at__from": "2026-12-05", "completed_at__to": "2026-12-01"}
    )
    text = "date range is reversed: from 2026-12-05 is after to 2026-12-01"
    assert any(text in m for m in _messages(resp))
    assert "date-range-reversed" in resp.content.decode()
    # The backfill of that filter is refused with the same words, not a run of nothing.
    resp = admin_client.get(
        reverse("admin:remediation_orphanedsession_backfill"),
        {"completed_at__from": "2026-12-05", "completed_at__to": "2026-12-01"},
        follow=True,
    )
    assert text in resp.content.decode() and not BackfillRun.objects.exists()


def test_a_malformed_search_term_says_what_is_wrong(admin_client, four):
    resp = admin_client.get(reverse(SESSIONS), {"q": "0e3b1c7a-1d2e"})
    assert any(
        "'0e3b1c7a-1d2e' is not a session id (a UUID" in m and "share token or email" in m
        for m in _messages(resp)
    )
    # A well-formed id that no orphan has: whether the session exists at all.
    resp = admin_client.get(reverse(ORPHANS), {"q": str(uuid.UUID(int=9))})
    assert any("No session has that id in the pipeline database" in m for m in _messages(resp))
    # A search that finds rows says nothing.
    resp = admin_client.get(reverse(SESSIONS), {"q": four[0]})
    assert resp.context["cl"].result_count == 1 and not _messages(resp)
    # Other lists: a non-number for a run id, a non-UUID for a session id.
    resp = admin_client.get(reverse("admin:remediation_backfillrun_changelist"), {"q": "abc"})
    assert resp.status_code == 200
    assert any("Nothing matches 'abc': it is not a number (id)" in m for m in _messages(resp))
    resp = admin_client.get(reverse("admin:remediation_finalizeattempt_changelist"), {"q": "abc"})
    assert resp.status_code == 200
    assert any("not a UUID (session id)" in m for m in _messages(resp))
    resp = admin_client.get(
        reverse("admin:remediation_resultsnotification_changelist"), {"q": "x1"}
    )
    assert any("it is not a UUID (session id), not a number (run id)" in m for m in _messages(resp))


def test_several_pasted_ids_in_the_search_box_find_each(admin_client, four):
    unknown = str(uuid.UUID(int=11))
    resp = admin_client.get(reverse(SESSIONS), {"q": f"{four[0]}, {four[1]};{unknown}"})
    assert resp.context["cl"].result_count == 2
    assert any(
        f"1 of the 3 session ids searched for is not in this list: {unknown}" in m
        for m in _messages(resp)
    )


def test_re_score_changed_on_the_confirmation_counts_the_window_again(admin_client, four):
    """A window selects orphans, or with re-score every completed session: when re-score is
    changed on the confirmation page, the page is shown again with the new count and
    nothing starts until it is confirmed."""
    from datetime import timedelta

    from django.utils import timezone

    had = make_session(seed=9)
    assert (
        jobs.run_until_done(
            jobs.backfill_start(selection="ids", ids=[had], enqueue=False).pk
        ).created
        == 1
    )
    today = timezone.localdate()
    data = {"completed_from": str(today - timedelta(days=5)), "completed_to": str(today), **PARAMS}
    confirm, again = start_new_backfill(admin_client, data, rescore="on")
    assert confirm.context["total"] == 4
    assert again.status_code == 200 and again.context["total"] == 5
    assert "Re-score changed" in " ".join(_messages(again))
    assert BackfillRun.objects.filter(rescore=True).count() == 0
    hidden = dict(again.context["hidden"])
    done = admin_client.post(reverse(ADD), {**hidden, **PARAMS, "rescore": "on"})
    assert done.status_code == 302
    run = BackfillRun.objects.get(rescore=True)
    assert run.estimated_total == 5
