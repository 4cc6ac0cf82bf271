"""Run rollback as a job: restore every row a finalize run changed, batch by batch.

The rollback run's items are the sessions the source run created or re-scored. Each one
is restored from the source item's pre-image in its own pipeline transaction, but only
when its rows still match the fingerprint the source run recorded: a row someone changed
since is left alone and reported as a conflict. Each restore writes its run-ledger entry in
its own transaction (remediation/jobs/ledger.py), so a kill between the restore and the
portal's record of it loses nothing; a redelivered batch finds the rows already restored
(they equal the pre-image) and counts them as restored, never twice. The report on the
source run (what was restored, what could not be) is written in the transaction that ends
the rollback run.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import DatabaseError
from django.utils import timezone

from remediation import pipeline as pw
from remediation.jobs import crashpoints, ledger
from remediation.jobs.engine import STOPPED, JobKind, RunError, register, run_create, started_by
from remediation.models import BackfillItem, BackfillRun
from remediation.selectors.triggers import rewritten_columns, write_triggers
from remediation.services.audit import audit_record

logger = logging.getLogger("remediation.jobs.rollback")


def restorable_items(source: BackfillRun) -> Any:
    """The source run's items a rollback restores: written by it, not rolled back yet."""
    # pre_image=None matches JSON null only; SQL NULL needs isnull.
    return source.items.filter(
        outcome__in=[BackfillItem.Outcome.CREATED, BackfillItem.Outcome.RESCORED],
        rolled_back=False,
        pre_image__isnull=False,
    ).exclude(pre_image=None)


class RollbackJob(JobKind):
    name = "rollback"

    def process(
        self, run: BackfillRun, items: list[BackfillItem], now: datetime
    ) -> list[pw.SessionOutcome]:
        sources = {
            str(i.session_id): i
            for i in BackfillItem.objects.filter(
                run_id=run.source_run_id, session_id__in=[i.session_id for i in items]
            )
        }
        # Session columns a BEFORE UPDATE trigger rewrites: a restore cannot set them.
        ignore = tuple(sorted(rewritten_columns("assessment_sessions")))
        out = []
        for item in items:
            sid = str(item.session_id)
            out.append(_restore_one(run, sid, sources.get(sid), ignore, now))
        return out

    def ledgered(self, run: BackfillRun) -> bool:
        return True

    def record(self, run: BackfillRun, outcomes: list[pw.SessionOutcome], now: datetime) -> None:
        """The source items restored: not offered for rollback again (same transaction)."""
        restored = [o.session_id for o in outcomes if o.outcome == "restored"]
        if restored:
            BackfillItem.objects.filter(run_id=run.source_run_id, session_id__in=restored).update(
                rolled_back=True
            )

    def conclude(self, run: BackfillRun) -> None:
        """The source run's rollback report, from this run's items (in the ending transaction)."""
        source = run.source_run
        if source is None:
            return
        conflicts = [
            {"session_id": str(i.session_id), "changed": i.reason.split(",")}
            for i in run.items.filter(outcome=BackfillItem.Outcome.CONFLICT)
        ]
        errors = [
            {"session_id": str(i.session_id), "sqlstate": i.sqlstate, "error": i.error}
            for i in run.items.filter(outcome=BackfillItem.Outcome.FAILED)
        ]
        restored = run.items.filter(outcome=BackfillItem.Outcome.RESTORED).count()
        not_restored = _not_restored(run)
        source.rolled_back_at = timezone.now()
        source.rollback_report = {
            "restored": restored,
            "conflicts": conflicts,
            "errors": errors,
            "at": source.rolled_back_at.isoformat(),
            "rollback_run": run.pk,
            "not_restored": not_restored,
            "exact": not (not_restored["columns"] or not_restored["other_tables"]),
        }
        source.save(update_fields=["rolled_back_at", "rollback_report"])
        logger.info(
            "run %s rolled back by run %s: %s restored, %s conflicts",
            source.pk,
            run.pk,
            restored,
            len(conflicts),
        )

    def summary(self, run: BackfillRun) -> str:
        counts = run.counts or {}
        return (
            f"{run.processed} processed: {counts.get('restored', 0)} restored, "
            f"{counts.get('conflict', 0)} changed since and left alone, {run.failed} failed"
        )


register(RollbackJob())


def _not_restored(run: BackfillRun) -> dict[str, Any]:
    """What the rollback could not put back: columns a trigger rewrote (per column, how many
    sessions), and the rows other tables received from the triggers the writes fired."""
    columns: dict[str, int] = {}
    for notes in run.items.exclude(notes=None).values_list("notes", flat=True):
        for part in ("session", "profile"):
            for column in (notes or {}).get(part, []):
                key = f"{'assessment_sessions' if part == 'session' else 'profiles'}.{column}"
                columns[key] = columns.get(key, 0) + 1
    other_tables: dict[str, list[str]] = {}
    for t in write_triggers():
        if t.table in ("profiles", "fc_scores") and t.enabled:
            for table in t.writes_other_tables:
                other_tables.setdefault(table, []).append(t.name)
    return {"columns": columns, "other_tables": other_tables}


def _restore_one(
    run: BackfillRun,
    sid: str,
    source: BackfillItem | None,
    ignore: tuple[str, ...],
    now: datetime,
) -> pw.SessionOutcome:
    o = pw.SessionOutcome(sid, "pending")
    if source is None or source.pre_image is None:
        return o.refuse("nothing_to_restore", "the source run holds no pre-image for this session")
    try:
        with pw.pipeline_transaction() as conn, conn.cursor() as cur:
            if pw.images.is_restored(cur, sid, source.pre_image, source.profile_id, ignore=ignore):
                changed: list[str] = []
            else:
                changed = pw.restore(
                    cur,
                    sid,
                    pre_image=source.pre_image,
                    post_fingerprint=source.post_fingerprint,
                    profile_id=source.profile_id,
                )
            differing = pw.images.differences(cur, sid, source.pre_image) if not changed else {}
            _restored(o, changed, differing)
            if o.outcome == "restored":
                ledger.write(cur, run.ledger_key, [o], now)
                crashpoints.reached("pipeline.before_commit")
    except DatabaseError as exc:
        info = pw.classify_error(exc)
        o = pw.SessionOutcome(sid, "failed", reason=info.category, explanation=info.message)
        o.error = info
        return o
    return o


def _restored(o: pw.SessionOutcome, changed: list[str], differing: dict[str, Any]) -> None:
    """The outcome of one restore: a conflict (changed since: left alone), or restored
    (with what a trigger rewrote and could not be put back)."""
    if changed:
        o.outcome, o.reason = "conflict", ",".join(changed)
        o.explanation = f"changed since the run ({', '.join(changed)}): left alone"
        return
    o.outcome, o.explanation = "restored", "rows restored to their pre-image"
    if differing:
        o.notes = differing
        listed = "; ".join(f"{part}: {', '.join(cols)}" for part, cols in differing.items())
        o.explanation = f"restored except what a trigger rewrote ({listed})"


def run_rollback(run_id: int, *, actor: Any = None, enqueue: bool = True) -> BackfillRun:
    """Start a rollback run over every session the finalize run `run_id` wrote."""
    from remediation.jobs.engine import lanes_busy, mirror

    source = BackfillRun.objects.get(pk=run_id)
    if source.kind != BackfillRun.Kind.FINALIZE:
        raise RunError(f"run #{run_id} is a {source.kind} run; only backfills are rolled back")
    if source.state not in STOPPED:
        raise RunError(f"run #{run_id} is {source.state}: pause or cancel it before rolling back")
    if lanes_busy(source):  # stopped, but a lane's last batch is still being written
        raise RunError(
            f"a worker is still finishing a batch of run #{run_id}; roll back in a few seconds"
        )
    if source.dry_run:
        raise RunError("a dry run changed nothing; there is nothing to roll back")
    active = source.follow_up_runs.filter(
        kind="rollback", state__in=BackfillRun.ACTIVE_STATES
    ).first()
    if active is not None:
        raise RunError(f"run #{run_id} is being rolled back already (run #{active.pk})")
    mirror(source)  # a batch the source run wrote but had not recorded when it stopped
    ids = [
        str(s)
        for s in restorable_items(source).order_by("ordinal").values_list("session_id", flat=True)
    ]
    if not ids:
        raise RunError(f"run #{run_id} has no session left to restore")
    run = run_create(
        kind=BackfillRun.Kind.ROLLBACK,
        session_ids=ids,
        enqueue=enqueue,
        source_run=source,
        selection=BackfillRun.Selection.RUN,
        selection_params={"run": source.pk},
        backend=source.backend,
        batch_size=200,
        **started_by(actor),
    )
    audit_record(
        actor,
        "backfill.rollback",
        target=f"run #{source.pk}",
        sessions=ids,
        outcome=f"rollback run #{run.pk} started",
        detail={"rollback_run": run.pk},
    )
    return run


__all__ = ["RollbackJob", "run_rollback"]
