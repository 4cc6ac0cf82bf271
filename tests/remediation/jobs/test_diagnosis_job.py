"""Bulk diagnosis as a run: each session's stored diagnosis is what a single diagnose says."""

from __future__ import annotations

import pytest

from remediation import jobs
from remediation.models import AuditEvent, SessionDiagnosis
from remediation.services import session_diagnose
from tests.factories import clear_write_path, load_reference_data, make_session, pipeline_sql

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


def _profiles() -> int:
    return pipeline_sql("SELECT count(*) FROM profiles", fetch="one")[0]


def _single(ids):
    """What one `session_diagnose` per session says (not stored, so the run must store it)."""
    return {sid: session_diagnose(session_id=sid, save=False) for sid in ids}


def _diagnose_all(ids, batch_size=2):
    run = jobs.diagnosis_start(
        session_ids=ids, enqueue=False, actor="tester", batch_size=batch_size
    )
    assert run.kind == "diagnosis" and run.estimated_total == len(ids)
    return jobs.run_until_done(run.pk)


def test_on_each_variant_every_session_is_diagnosed_with_its_first_blocker(schema_variant):
    load_reference_data()  # the emulation: no BYPASSRLS, no policy; rebuilt: the CHECK
    blocker = schema_variant.first_blocker
    ids = [make_session(seed=i) for i in range(5)]
    expected = _single(ids)
    assert {d.category for d in expected.values()} == {blocker}
    assert SessionDiagnosis.objects.count() == 0
    profiles = _profiles()

    run = _diagnose_all(ids)
    assert run.state == "succeeded", run.message
    assert run.processed == 5 and run.counts == {"diagnosed": 5}
    items = {str(i.session_id): i for i in run.items.all()}
    for sid, d in expected.items():
        assert (items[sid].outcome, items[sid].reason) == ("diagnosed", d.category)
        assert items[sid].sqlstate == schema_variant.first_blocker_sqlstate
        stored = SessionDiagnosis.objects.get(session_id=sid)
        assert (stored.category, stored.sqlstate) == (d.category, d.sqlstate)
        assert stored.explanation == d.explanation
    assert run.message == f"5 diagnosed: 5 {blocker}"
    assert _profiles() == profiles
    assert AuditEvent.objects.filter(action="diagnosis.start", target=f"run #{run.pk}").exists()


def test_under_a_clear_path_the_diagnosis_is_would_succeed_and_nothing_is_written(clear_variant):
    ids = [make_session(seed=10 + i) for i in range(3)]
    unscorable = make_session(seed=50, answers={20: "Agree"})
    expected = _single([*ids, unscorable])
    assert {expected[s].category for s in ids} == {"would_succeed"}
    assert expected[unscorable].category != "would_succeed"
    profiles = _profiles()

    run = _diagnose_all([*ids, unscorable], batch_size=3)
    assert run.state == "succeeded", run.message
    for item in run.items.all():
        d = expected[str(item.session_id)]
        assert (item.outcome, item.reason) == ("diagnosed", d.category)
        assert SessionDiagnosis.objects.get(session_id=item.session_id).category == d.category
    # The summary names each category with its count.
    assert "3 would_succeed" in run.message
    assert f"1 {expected[unscorable].category}" in run.message
    # The write was tried and rolled back: no profile exists afterwards.
    assert _profiles() == profiles == 0


def test_a_second_diagnosis_replaces_the_first(schema_variant):
    load_reference_data()
    sid = make_session(seed=60)
    _diagnose_all([sid])
    first = SessionDiagnosis.objects.get(session_id=sid)
    assert first.category == schema_variant.first_blocker
    with clear_write_path(schema_variant.name):
        _diagnose_all([sid])
    assert SessionDiagnosis.objects.filter(session_id=sid).count() == 1
    second = SessionDiagnosis.objects.get(session_id=sid)
    assert second.category == "would_succeed" and second.checked_at > first.checked_at


def test_an_empty_selection_is_refused():
    with pytest.raises(jobs.RunError, match="matches no session"):
        jobs.diagnosis_start(session_ids=[], enqueue=False)
