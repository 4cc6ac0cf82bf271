"""The outcome ledger: a batch's record of what it wrote, committed with the writes.

A batch writes the pipeline database, and the portal database records what it did: two
databases, two commits. Without more, a worker killed between them leaves profiles the
run wrote but did not record (a redelivered batch then finds them and calls them
"already had a profile", and a rollback leaves them in place), or records kept but the
cursor not moved (the batch is done again: "600 processed of 400").

So a job kind that writes the pipeline also writes, in the same pipeline transaction, one
ledger entry per session it changed: the whole outcome (pre-image, fingerprint, profile,
events), in `<PIPELINE_PORTAL_SCHEMA>.run_ledger` of the pipeline database. The writes and
their record become durable together. The portal database then mirrors the entries:

- right after the commit, from memory (the normal path), in the one portal transaction
  that records the batch (items, attempts, figures, cursor, token);
- at the start of every batch, at the end of a run, when the watchdog finds a run
  interrupted and before a run is rolled back, from the ledger itself (`mirror()`): any
  entry still there belongs to a batch whose portal record was lost.

An item remembers the ledger entry it took its outcome from (`BackfillItem.ledger_seq`),
so an entry is applied once however many times it is mirrored. Entries are deleted once
their record is committed; whatever a crash leaves behind is mirrored (or found applied)
and deleted by the next pass.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import connections
from django.utils.dateparse import parse_datetime

from remediation.pipeline import DbErrorInfo, SessionOutcome
from remediation.pipeline.sql import json_default
from scoring.events import make_event

PIPELINE = "pipeline"
LEDGER_LOCK = 72_0002  # advisory-lock key while the table is created


def table() -> str:
    from remediation.fixes.operations import portal_schema

    return f"{portal_schema()}.run_ledger"


def _ddl() -> list[str]:
    from remediation.fixes.operations import portal_schema

    schema = portal_schema()
    return [
        f"CREATE SCHEMA IF NOT EXISTS {schema}",
        f"CREATE TABLE IF NOT EXISTS {table()} ("
        " seq bigserial PRIMARY KEY,"
        " run_key uuid NOT NULL,"
        " session_id text NOT NULL,"
        " entry jsonb NOT NULL,"
        " recorded_at timestamptz NOT NULL DEFAULT now())",
        f"CREATE INDEX IF NOT EXISTS run_ledger_run ON {table()} (run_key, seq)",
    ]


def ensure(cur: Any) -> None:
    """The ledger table, created on first use (inside the caller's pipeline transaction)."""
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", [table()])
    if cur.fetchone()[0]:
        return
    cur.execute("SELECT pg_advisory_xact_lock(%s)", [LEDGER_LOCK])
    for sql in _ddl():
        cur.execute(sql)


def to_entry(o: SessionOutcome, at: datetime) -> dict[str, Any]:
    """Everything the portal records of one session's outcome, as JSON."""
    error = None
    if o.error is not None:
        e = o.error
        error = {
            "category": e.category,
            "sqlstate": e.sqlstate,
            "message": e.message,
            "explanation": e.explanation,
            "constraint": e.constraint,
            "table": e.table,
            "statement": e.statement,
        }
    return {
        "session_id": o.session_id,
        "outcome": o.outcome,
        "reason": o.reason,
        "explanation": o.explanation,
        "error": error,
        "profile_id": o.profile_id,
        "share_token": o.share_token,
        "results_url": o.results_url,
        "type_code": o.type_code,
        "results_version": o.results_version,
        "events": [e.to_dict() for e in o.events],
        "pre_image": o.pre_image,
        "post_fingerprint": o.post_fingerprint,
        "notes": o.notes,
        "at": at.isoformat(),
    }


def from_entry(entry: dict[str, Any], seq: int) -> SessionOutcome:
    """The outcome an entry records (the inverse of to_entry), tagged with its ledger seq."""
    e = entry.get("error")
    o = SessionOutcome(
        entry["session_id"],
        entry["outcome"],
        reason=entry.get("reason") or "",
        explanation=entry.get("explanation") or "",
        error=DbErrorInfo(**e) if e else None,
        profile_id=entry.get("profile_id"),
        share_token=entry.get("share_token") or "",
        results_url=entry.get("results_url") or "",
        type_code=entry.get("type_code") or "",
        results_version=entry.get("results_version") or "",
        events=[_event(d) for d in entry.get("events") or []],
        pre_image=entry.get("pre_image"),
        post_fingerprint=entry.get("post_fingerprint"),
        notes=entry.get("notes"),
    )
    o.ledger_seq = seq
    o.recorded_at = parse_datetime(entry["at"]) if entry.get("at") else None
    return o


def _event(d: dict[str, Any]) -> Any:
    fields = dict(d)
    name = str(fields.pop("name", "event"))
    return make_event(name, **fields)


def write(
    cur: Any,
    run_key: Any,
    outcomes: Iterable[SessionOutcome],
    at: datetime,
    *,
    fingerprint: bool = False,
) -> None:
    """One entry per outcome, inside the caller's pipeline transaction (with the writes they
    record); each outcome gets the seq of its entry. The connection's own role writes them.
    With `fingerprint`, the same statement computes each session's post-write fingerprint
    (remediation/pipeline/images.py), puts it in the entry and on the outcome."""
    from remediation.pipeline.images import FINGERPRINT_OBJECT_SQL

    outcomes = list(outcomes)
    if not outcomes:
        return
    ensure(cur)
    cur.execute("RESET ROLE")
    rows = [{"session_id": o.session_id, "entry": to_entry(o, at)} for o in outcomes]
    if fingerprint:
        cur.execute(
            f"INSERT INTO {table()} (run_key, session_id, entry)"
            " SELECT %s::uuid, v.session_id,"
            " v.entry || jsonb_build_object('post_fingerprint', fp.value)"
            " FROM jsonb_to_recordset(%s::jsonb) AS v(session_id text, entry jsonb)"
            f" LEFT JOIN LATERAL (SELECT {FINGERPRINT_OBJECT_SQL} AS value"
            "  FROM assessment_sessions s WHERE s.id = v.session_id::uuid) fp ON true"
            " RETURNING seq, session_id, (entry -> 'post_fingerprint')::text",
            [str(run_key), json.dumps(rows, default=json_default)],
        )
        found = {sid: (seq, fp) for seq, sid, fp in cur.fetchall()}
        for o in outcomes:
            seq, fp = found[o.session_id]
            o.ledger_seq = seq
            o.post_fingerprint = json.loads(fp) if fp else None
        return
    cur.execute(
        f"INSERT INTO {table()} (run_key, session_id, entry)"
        " SELECT %s::uuid, v.session_id, v.entry"
        " FROM jsonb_to_recordset(%s::jsonb) AS v(session_id text, entry jsonb)"
        " RETURNING seq, session_id",
        [str(run_key), json.dumps(rows, default=json_default)],
    )
    seqs = dict((sid, seq) for seq, sid in cur.fetchall())
    for o in outcomes:
        o.ledger_seq = seqs[o.session_id]


def read(run_key: Any) -> list[SessionOutcome]:
    """Every entry the ledger still holds for a run, oldest first (autocommit read)."""
    with connections[PIPELINE].cursor() as cur:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", [table()])
        if not cur.fetchone()[0]:
            return []
        cur.execute(
            f"SELECT seq, entry FROM {table()} WHERE run_key = %s::uuid ORDER BY seq",
            [str(run_key)],
        )
        return [
            from_entry(e if isinstance(e, dict) else json.loads(e), seq)
            for seq, e in cur.fetchall()
        ]


def forget(run_key: Any, seqs: Iterable[int]) -> None:
    """Delete entries whose record the portal has committed (autocommit)."""
    seqs = sorted(set(seqs))
    if not seqs:
        return
    with connections[PIPELINE].cursor() as cur:
        cur.execute(
            f"DELETE FROM {table()} WHERE run_key = %s::uuid AND seq = ANY(%s::bigint[])",
            [str(run_key), seqs],
        )
