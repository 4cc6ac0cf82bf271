"""FC writes: load a set (upsert, dry-run diff), roll a version back and undo it, recompute
FC scores. Rolling a version back stores the pre-image of every row it removes (blocks,
options, the responses pointing at them and the FC scores computed from them) so the
rollback itself can be undone exactly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.db import connections, transaction

from remediation import pipeline as pw
from remediation.models import FcChange
from remediation.pipeline import pipeline_transaction
from remediation.pipeline.fc import score_fc
from remediation.services.audit import audit_record
from remediation.services.fc_sets import FcSetInvalid, validate_set


@dataclass
class LoadDiff:
    version: str
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0

    @property
    def changes(self) -> int:
        return len(self.created) + len(self.updated)

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
        }


def fc_set_load(data: dict[str, Any], *, dry_run: bool = False, actor: str = "") -> LoadDiff:
    """Validate, then upsert the set in one transaction; a dry run reports the diff only."""
    errors = validate_set(data)
    if errors:
        raise FcSetInvalid(errors)
    version = data["version"]
    diff = LoadDiff(version)
    with pipeline_transaction() as conn, conn.cursor() as cur:
        for block in data["blocks"]:
            _upsert_block(cur, diff, version, block, write=not dry_run)
            for option in block["options"]:
                _upsert_option(cur, diff, version, block, option, write=not dry_run)
        if dry_run:
            transaction.set_rollback(True, using="pipeline")
    if not dry_run:
        if diff.changes:
            FcChange.objects.create(
                kind="load", version=version, actor=actor, summary=diff.as_dict(), pre_images={}
            )
        audit_record(
            actor,
            "fc.load",
            target=version,
            outcome=f"{diff.changes} changed",
            detail=diff.as_dict(),
        )
    return diff


def _note(diff: LoadDiff, label: str, row: Any, wanted: list[Any]) -> None:
    if row is None:
        diff.created.append(label)
    elif row != wanted:
        diff.updated.append(label)
    else:
        diff.unchanged += 1


def _upsert_block(
    cur: Any, diff: LoadDiff, version: str, block: dict[str, Any], *, write: bool
) -> None:
    values = [
        block["id"],
        version,
        block["code"],
        block["title"],
        block.get("description"),
        block["order_index"],
        bool(block.get("is_active", True)),
    ]
    cur.execute(
        "SELECT version, code, title, description, order_index, is_active FROM fc_blocks WHERE id = %s",
        [block["id"]],
    )
    row = cur.fetchone()
    _note(diff, f"block {version}/{block['code']}", None if row is None else list(row), values[1:])
    if not write:
        return
    cur.execute(
        "INSERT INTO fc_blocks (id, version, code, title, description, order_index, is_active)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version,"
        " code = EXCLUDED.code, title = EXCLUDED.title, description = EXCLUDED.description,"
        " order_index = EXCLUDED.order_index, is_active = EXCLUDED.is_active",
        values,
    )


def _upsert_option(
    cur: Any,
    diff: LoadDiff,
    version: str,
    block: dict[str, Any],
    option: dict[str, Any],
    *,
    write: bool,
) -> None:
    cur.execute(
        "SELECT block_id::text, option_code, prompt, weights_json::text, order_index FROM fc_options"
        " WHERE id = %s",
        [option["id"]],
    )
    row = cur.fetchone()
    wanted = [
        block["id"],
        option["option_code"],
        option["prompt"],
        option["weights"],
        option["order_index"],
    ]
    current = None if row is None else [row[0], row[1], row[2], json.loads(row[3]), row[4]]
    _note(diff, f"option {version}/{block['code']}/{option['option_code']}", current, wanted)
    if not write:
        return
    cur.execute(
        "INSERT INTO fc_options (id, block_id, option_code, prompt, weights_json, order_index)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET block_id = EXCLUDED.block_id,"
        " option_code = EXCLUDED.option_code, prompt = EXCLUDED.prompt,"
        " weights_json = EXCLUDED.weights_json, order_index = EXCLUDED.order_index",
        [
            option["id"],
            block["id"],
            option["option_code"],
            option["prompt"],
            json.dumps(option["weights"]),
            option["order_index"],
        ],
    )


# --- Rollback and undo -----------------------------------------------------------------------
_IMAGE_QUERIES = {
    "fc_scores": "SELECT to_jsonb(f)::text FROM fc_scores f WHERE version = %s",
    "fc_responses": "SELECT to_jsonb(r)::text FROM fc_responses r JOIN fc_blocks b ON b.id = r.block_id"
    " WHERE b.version = %s",
    "fc_options": "SELECT to_jsonb(o)::text FROM fc_options o JOIN fc_blocks b ON b.id = o.block_id"
    " WHERE b.version = %s",
    "fc_blocks": "SELECT to_jsonb(b)::text FROM fc_blocks b WHERE version = %s",
}


def fc_version_rollback(version: str, *, actor: str = "") -> FcChange:
    """Remove a version's blocks and options, the responses pointing at them and the FC
    scores computed from them, after storing every removed row (undo with fc_undo)."""
    with transaction.atomic(using="pipeline"), connections["pipeline"].cursor() as cur:
        images: dict[str, list[Any]] = {}
        for table, sql in _IMAGE_QUERIES.items():
            cur.execute(sql, [version])
            images[table] = [json.loads(r[0]) for r in cur.fetchall()]
        if not images["fc_blocks"]:
            raise FcSetInvalid([f"version {version!r} has no blocks: nothing to roll back"])
        change = FcChange.objects.create(
            kind="rollback",
            version=version,
            actor=actor,
            pre_images=images,
            summary={t: len(rows) for t, rows in images.items()},
        )
        cur.execute("DELETE FROM fc_scores WHERE version = %s", [version])
        cur.execute(
            "DELETE FROM fc_responses r USING fc_blocks b WHERE b.id = r.block_id AND b.version = %s",
            [version],
        )
        cur.execute(
            "DELETE FROM fc_options o USING fc_blocks b WHERE b.id = o.block_id AND b.version = %s",
            [version],
        )
        cur.execute("DELETE FROM fc_blocks WHERE version = %s", [version])
    audit_record(
        actor, "fc.rollback", target=version, outcome=f"change #{change.pk}", detail=change.summary
    )
    return change


def fc_change_undo(change_id: int, *, actor: str = "") -> FcChange:
    """Put back exactly the rows a rollback removed."""
    change = FcChange.objects.get(pk=change_id, kind="rollback")
    if change.undone_at is not None:
        raise FcSetInvalid([f"rollback #{change_id} was already undone"])
    images = change.pre_images
    with transaction.atomic(using="pipeline"), connections["pipeline"].cursor() as cur:
        for table in ("fc_blocks", "fc_options", "fc_responses", "fc_scores"):
            if images.get(table):
                cur.execute(
                    f"INSERT INTO {table} SELECT * FROM jsonb_populate_recordset(NULL::{table}, %s::jsonb)",
                    [json.dumps(images[table])],
                )
    from django.utils import timezone

    change.undone_at = timezone.now()
    change.undone_by = actor
    change.save(update_fields=["undone_at", "undone_by"])
    audit_record(
        actor,
        "fc.undo",
        target=change.version,
        outcome=f"change #{change.pk} undone",
        detail=change.summary,
    )
    return change


# --- Recompute -------------------------------------------------------------------------------
def fc_scores_recompute(
    session_ids: list[str], *, refinalize: bool = False, actor: Any = None
) -> dict[str, Any]:
    """score_fc_session for each session (as service_role); optionally re-finalize it."""
    from remediation.services.sessions import normalize_session_id, session_finalize

    ids = [normalize_session_id(s) for s in session_ids]
    ctx = pw.load_context()
    results: dict[str, Any] = {}
    for sid in ids:
        events: list[Any] = []
        with transaction.atomic(using="pipeline"), connections["pipeline"].cursor() as cur:
            cur.execute(
                "SELECT block_id::text, option_id::text FROM fc_responses WHERE session_id = %s",
                [sid],
            )
            fc_rows = cur.fetchall()
            if fc_rows:
                pw.as_service_role(cur)
                score_fc(cur, ctx, sid, fc_rows, events, "pipeline")
                cur.execute("RESET ROLE")
            else:
                events.append(pw.portal_event("fc_no_responses", sid, reason="no_rows"))
        entry: dict[str, Any] = {"events": [e.to_dict() for e in events]}
        if refinalize:
            attempt = session_finalize(
                session_id=sid, rescore=True, actor=actor, source="fc_recompute"
            )
            entry["finalize"] = attempt.outcome
        results[sid] = entry
    return results
