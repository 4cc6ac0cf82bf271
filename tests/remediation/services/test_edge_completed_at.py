"""The deployed edge function overwrites completed_at; after every edge call the portal puts
the pre-image's value back and records it (the attempt, the run item, the audit trail). One
place does it for the single finalize and the backfill (services/edge.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connections

from remediation import jobs
from remediation.dev.edge_emulator import Faults
from remediation.models import AuditEvent, FinalizeAttempt
from remediation.pipeline import read_pre_images
from remediation.services import session_finalize
from remediation.services.edge import completed_at_restore
from tests.factories import emulated_edge, make_session, pipeline_sql, rollback_run

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


@pytest.fixture
def emulator(clear_path):
    with emulated_edge() as server:
        yield server


def _completed_at(ids):
    rows = pipeline_sql(
        "SELECT id::text, completed_at FROM assessment_sessions WHERE id = ANY(%s::uuid[])",
        [ids],
        "all",
    )
    return dict(rows)


def test_the_restore_puts_completed_at_back_once_on_each_variant(schema_variant):
    """The adapter's restore on both schemas: what a function overwrote comes back, and a
    second run of it (a redelivered task) finds nothing to do."""
    sid = make_session(seed=5)
    with connections["pipeline"].cursor() as cur:
        pre = read_pre_images(cur, [sid])[sid]
    before = _completed_at([sid])[sid]
    pipeline_sql(
        "UPDATE assessment_sessions SET completed_at = completed_at + interval '1 day'"
        " WHERE id = %s",
        [sid],
    )
    note = completed_at_restore(sid, pre)
    assert note == {"from": (before + timedelta(days=1)).isoformat(), "to": before.isoformat()}
    assert _completed_at([sid])[sid] == before
    assert completed_at_restore(sid, pre) is None  # safe to repeat


def test_a_single_edge_finalize_puts_completed_at_back_and_records_it(emulator):
    sid = make_session(seed=6)
    before = _completed_at([sid])[sid]
    attempt = session_finalize(session_id=sid, backend="edge", actor="tester")
    assert attempt.outcome == "created", attempt.explanation
    assert _completed_at([sid])[sid] == before
    assert attempt.completed_at_restored["to"] == before.isoformat()
    event = AuditEvent.objects.get(action="finalize.completed_at_restored")
    assert (event.outcome, event.actor, event.sessions) == ("restored", "tester", [sid])


def test_no_call_no_restore_recorded(emulator):
    sid = make_session(seed=7)
    emulator.faults = Faults(status=502)  # the function never ran
    attempt = session_finalize(session_id=sid, backend="edge")
    assert attempt.outcome == "failed" and attempt.completed_at_restored is None
    assert not AuditEvent.objects.filter(action="finalize.completed_at_restored").exists()


def test_an_edge_backfill_puts_every_completed_at_back_and_stays_reversible(emulator):
    ids = [make_session(seed=10 + i) for i in range(3)]
    before = _completed_at(ids)
    run = jobs.run_until_done(
        jobs.backfill_start(
            selection="ids", ids=ids, backend="edge", enqueue=False, batch_size=2
        ).pk
    )
    assert (run.state, run.created) == ("succeeded", 3)
    assert _completed_at(ids) == before
    for item in run.items.all():
        note = item.notes["completed_at_restored"]
        assert note["to"] == before[str(item.session_id)].isoformat()
        assert "the portal put back" in item.error
    attempts = FinalizeAttempt.objects.filter(run_id=run.pk)
    assert all(a.completed_at_restored for a in attempts) and attempts.count() == 3
    assert AuditEvent.objects.filter(action="finalize.completed_at_restored").count() == 3
    # The fingerprint was taken after the restore: the rollback is exact, not a conflict.
    assert rollback_run(run.pk)["restored"] == 3
    assert _completed_at(ids) == before
