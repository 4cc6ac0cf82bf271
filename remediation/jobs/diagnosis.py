"""Bulk diagnosis as a job: why has each selected session no profile, now?

Each session's write is tried as service_role in a transaction that is always rolled back
(services.sessions.session_diagnose) and the answer stored as its diagnosis, so the
orphan list's reasons are current. Safe to repeat: a diagnosis only replaces the last one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from remediation import pipeline as pw
from remediation.jobs.engine import JobKind, RunError, register, run_create, started_by
from remediation.models import BackfillItem, BackfillRun
from remediation.services.audit import audit_record


class DiagnosisJob(JobKind):
    name = "diagnosis"

    def process(
        self, run: BackfillRun, items: list[BackfillItem], now: datetime
    ) -> list[pw.SessionOutcome]:
        from remediation.services.sessions import session_diagnose

        ctx = pw.load_context()
        out = []
        for item in items:
            sid = str(item.session_id)
            d = session_diagnose(session_id=sid, context=ctx)
            o = pw.SessionOutcome(
                sid, "diagnosed", reason=d.category[:40], explanation=d.explanation
            )
            if d.sqlstate:
                o.error = pw.DbErrorInfo(
                    category=d.category,
                    sqlstate=d.sqlstate,
                    message=d.message,
                    explanation=d.explanation,
                    constraint=d.constraint,
                    table=d.table,
                )
            out.append(o)
        return out

    def summary(self, run: BackfillRun) -> str:
        found = run.items.values_list("reason", flat=True)
        tally: dict[str, int] = {}
        for reason in found:
            tally[reason] = tally.get(reason, 0) + 1
        text = ", ".join(f"{n} {r}" for r, n in sorted(tally.items(), key=lambda x: -x[1]))
        return f"{run.processed} diagnosed: {text or 'none'}"


register(DiagnosisJob())


def diagnosis_start(
    *,
    session_ids: list[str],
    actor: Any = None,
    params: dict[str, Any] | None = None,
    enqueue: bool = True,
    batch_size: int = 200,
) -> BackfillRun:
    """Start a bulk diagnosis of the given sessions (e.g. the orphan list's current filter)."""
    if not session_ids:
        raise RunError("the selection matches no session")
    run = run_create(
        kind=BackfillRun.Kind.DIAGNOSIS,
        session_ids=session_ids,
        enqueue=enqueue,
        selection=BackfillRun.Selection.FILTER if params is not None else BackfillRun.Selection.IDS,
        selection_params=params or {"ids": len(session_ids)},
        batch_size=batch_size,
        **started_by(actor),
    )
    audit_record(
        actor, "diagnosis.start", target=f"run #{run.pk}", sessions=session_ids, outcome=run.state
    )
    return run
