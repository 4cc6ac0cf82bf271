"""Forced-choice infrastructure: versioned block sets, loading, rollback and undo, coverage,
and recomputing FC scores.

A set is a JSON document `{version, blocks: [{id, code, title, description, order_index,
is_active, options: [{id, option_code, prompt, order_index, weights}]}]}` (the shipped
v1.2 set is remediation/data/fc_seed_v1.2.json). Ids are stable, so loading is an upsert
and loading twice changes nothing. Rolling a version back stores the pre-image of every
row it removes (blocks, options, the responses pointing at them and the FC scores computed
from them) so the rollback itself can be undone exactly.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import connections, transaction

import scoring
from remediation import pipeline_write as pw
from remediation.audit import audit
from remediation.models import FcChange

FUNCTIONS = set(scoring.FUNCTIONS)


class FcSetInvalid(ValueError):
    """The set does not validate; `errors` lists every problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__(
            "; ".join(errors[:10]) + (f" (and {len(errors) - 10} more)" if len(errors) > 10 else "")
        )
        self.errors = errors


def validate_weights(weights: Any) -> list[str]:
    """Weight keys are the eight functions; values are numbers."""
    if not isinstance(weights, dict) or not weights:
        return ["weights must be a non-empty object of function -> number"]
    errors = []
    for key, value in weights.items():
        if key not in FUNCTIONS:
            errors.append(f"weight key {key!r} is not one of {', '.join(scoring.FUNCTIONS)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append(f"weight {key} = {value!r} is not a number")
    return errors


def validate_set(data: Any) -> list[str]:
    """Every problem of a set document, with where it is."""
    if not isinstance(data, dict):
        return ["the set must be a JSON object"]
    errors = []
    version = data.get("version")
    if not isinstance(version, str) or not version:
        errors.append("version is missing")
    blocks = data.get("blocks")
    if not isinstance(blocks, list) or not blocks:
        return [*errors, "blocks must be a non-empty list"]
    seen_ids: set[str] = set()
    seen_codes: set[Any] = set()
    for i, block in enumerate(blocks, start=1):
        where = f"block {i}"
        if not isinstance(block, dict):
            errors.append(f"{where} is not an object")
            continue
        where = f"block {i} ({block.get('code', '?')})"
        for name in ("id", "code", "title"):
            if not isinstance(block.get(name), str) or not block.get(name):
                errors.append(f"{where}: {name} is missing")
        if not isinstance(block.get("order_index"), int):
            errors.append(f"{where}: order_index must be an integer")
        errors += _id_errors(block.get("id"), where, seen_ids)
        if block.get("code") in seen_codes:
            errors.append(f"{where}: code appears twice in the version")
        seen_codes.add(block.get("code"))
        options = block.get("options")
        if not isinstance(options, list) or not options:
            errors.append(f"{where}: options must be a non-empty list")
            continue
        codes: set[Any] = set()
        for j, option in enumerate(options, start=1):
            owhere = f"{where} option {j}"
            if not isinstance(option, dict):
                errors.append(f"{owhere} is not an object")
                continue
            code = option.get("option_code")
            if not isinstance(code, str) or not code:
                errors.append(f"{owhere}: option_code is missing")
            elif code in codes:
                errors.append(f"{owhere}: option code {code!r} appears twice in the block")
            codes.add(code)
            if not isinstance(option.get("prompt"), str) or not option.get("prompt"):
                errors.append(f"{owhere}: prompt is missing")
            if not isinstance(option.get("order_index"), int):
                errors.append(f"{owhere}: order_index must be an integer")
            errors += _id_errors(option.get("id"), owhere, seen_ids)
            errors += [f"{owhere}: {e}" for e in validate_weights(option.get("weights"))]
    return errors


def _id_errors(value: Any, where: str, seen: set[str]) -> list[str]:
    try:
        canonical = str(uuid.UUID(str(value)))
    except ValueError:
        return [f"{where}: id {value!r} is not a UUID"]
    if canonical in seen:
        return [f"{where}: id {canonical} is used twice"]
    seen.add(canonical)
    return []


def read_set(path: Path | str) -> dict[str, Any]:
    """A set document from a file, with a clear error for a missing or malformed file."""
    try:
        data: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise FcSetInvalid([f"cannot read {path}: {exc.strerror}"]) from exc
    except ValueError as exc:
        raise FcSetInvalid([f"{path} is not JSON: {exc}"]) from exc
    return data


# --- Loading -------------------------------------------------------------------------------
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
        return {"version": self.version, "created": self.created, "updated": self.updated,
                "unchanged": self.unchanged}  # fmt: skip


def fc_load(data: dict[str, Any], *, dry_run: bool = False, actor: str = "") -> LoadDiff:
    """Validate, then upsert the set in one transaction; a dry run reports the diff only."""
    errors = validate_set(data)
    if errors:
        raise FcSetInvalid(errors)
    version = data["version"]
    diff = LoadDiff(version)
    with transaction.atomic(using="pipeline"), connections["pipeline"].cursor() as cur:
        for block in data["blocks"]:
            values = [block["id"], version, block["code"], block["title"], block.get("description"),
                      block["order_index"], bool(block.get("is_active", True))]  # fmt: skip
            cur.execute(
                "SELECT version, code, title, description, order_index, is_active FROM fc_blocks WHERE id = %s",
                [block["id"]],
            )
            row = cur.fetchone()
            label = f"block {version}/{block['code']}"
            if row is None:
                diff.created.append(label)
            elif list(row) != values[1:]:
                diff.updated.append(label)
            else:
                diff.unchanged += 1
            cur.execute(
                "INSERT INTO fc_blocks (id, version, code, title, description, order_index, is_active)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version,"
                " code = EXCLUDED.code, title = EXCLUDED.title, description = EXCLUDED.description,"
                " order_index = EXCLUDED.order_index, is_active = EXCLUDED.is_active",
                values,
            )
            for option in block["options"]:
                cur.execute(
                    "SELECT block_id::text, option_code, prompt, weights_json::text, order_index FROM fc_options"
                    " WHERE id = %s",
                    [option["id"]],
                )
                row = cur.fetchone()
                label = f"option {version}/{block['code']}/{option['option_code']}"
                wanted = [
                    block["id"],
                    option["option_code"],
                    option["prompt"],
                    option["weights"],
                    option["order_index"],
                ]
                if row is None:
                    diff.created.append(label)
                elif [row[0], row[1], row[2], json.loads(row[3]), row[4]] != wanted:
                    diff.updated.append(label)
                else:
                    diff.unchanged += 1
                cur.execute(
                    "INSERT INTO fc_options (id, block_id, option_code, prompt, weights_json, order_index)"
                    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET block_id = EXCLUDED.block_id,"
                    " option_code = EXCLUDED.option_code, prompt = EXCLUDED.prompt,"
                    " weights_json = EXCLUDED.weights_json, order_index = EXCLUDED.order_index",
                    [option["id"], block["id"], option["option_code"], option["prompt"],
                     json.dumps(option["weights"]), option["order_index"]],
                )  # fmt: skip
        if dry_run:
            transaction.set_rollback(True, using="pipeline")
    if not dry_run:
        if diff.changes:
            FcChange.objects.create(
                kind="load", version=version, actor=actor, summary=diff.as_dict(), pre_images={}
            )
        audit(
            actor,
            "fc.load",
            target=version,
            outcome=f"{diff.changes} changed",
            detail=diff.as_dict(),
        )
    return diff


# --- Rollback and undo -----------------------------------------------------------------------
_IMAGE_QUERIES = {
    "fc_scores": "SELECT to_jsonb(f)::text FROM fc_scores f WHERE version = %s",
    "fc_responses": "SELECT to_jsonb(r)::text FROM fc_responses r JOIN fc_blocks b ON b.id = r.block_id"
                    " WHERE b.version = %s",
    "fc_options": "SELECT to_jsonb(o)::text FROM fc_options o JOIN fc_blocks b ON b.id = o.block_id"
                  " WHERE b.version = %s",
    "fc_blocks": "SELECT to_jsonb(b)::text FROM fc_blocks b WHERE version = %s",
}  # fmt: skip


def fc_rollback(version: str, *, actor: str = "") -> FcChange:
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
            kind="rollback", version=version, actor=actor, pre_images=images,
            summary={t: len(rows) for t, rows in images.items()},
        )  # fmt: skip
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
    audit(
        actor, "fc.rollback", target=version, outcome=f"change #{change.pk}", detail=change.summary
    )
    return change


def fc_undo(change_id: int, *, actor: str = "") -> FcChange:
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
    audit(
        actor,
        "fc.undo",
        target=change.version,
        outcome=f"change #{change.pk} undone",
        detail=change.summary,
    )
    return change


# --- Coverage --------------------------------------------------------------------------------
def coverage() -> dict[str, Any]:
    """Per version active blocks/options, dangling responses, legacy-only sessions, odd scores."""

    def rows(sql: str) -> list[tuple[Any, ...]]:
        with connections["pipeline"].cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())

    versions = rows(
        "SELECT b.version, count(DISTINCT b.id) FILTER (WHERE b.is_active), count(DISTINCT b.id),"
        " count(o.id) FILTER (WHERE b.is_active) FROM fc_blocks b LEFT JOIN fc_options o ON o.block_id = b.id"
        " GROUP BY b.version ORDER BY b.version"
    )
    dangling = rows(
        "SELECT count(*) FROM fc_responses r WHERE NOT EXISTS (SELECT 1 FROM fc_options o WHERE o.id = r.option_id)"
    )[0][0]
    legacy = rows(
        "SELECT count(DISTINCT r.session_id) FROM assessment_responses r JOIN assessment_scoring_key k"
        " ON k.question_id = r.question_id WHERE k.fc_map IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM fc_scores f WHERE f.session_id = r.session_id)"
    )[0][0]
    odd = rows(
        "SELECT version, fc_kind, count(*) FROM fc_scores WHERE version <> 'v1.2' OR fc_kind <> 'functions'"
        " GROUP BY 1, 2 ORDER BY 1, 2"
    )
    return {
        "versions": [
            {"version": v, "active_blocks": a, "blocks": b, "active_options": o}
            for v, a, b, o in versions
        ],
        "responses_without_option": dangling,
        "legacy_sessions_without_scores": legacy,
        "odd_scores": [{"version": v, "fc_kind": k, "count": n} for v, k, n in odd],
    }


# --- Recompute -------------------------------------------------------------------------------
def fc_recompute(
    session_ids: list[str], *, refinalize: bool = False, actor: Any = None
) -> dict[str, Any]:
    """score_fc_session for each session (as service_role); optionally re-finalize it."""
    from remediation.services import normalize_session_id, session_finalize

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
                pw._as_service_role(cur)
                pw._score_fc(cur, ctx, sid, fc_rows, events, "pipeline")
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


def demo_fc_responses(count: int, *, seed: int = 11) -> int:
    """Demo only: FC answers for the newest `count` completed sessions, as the web client
    would have saved them once FC v1.2 was live (refused outside a seed_demo database)."""
    import random

    from remediation.demo import DEMO_MARKER_KEY

    with connections["pipeline"].cursor() as cur:
        cur.execute(
            "SELECT EXISTS (SELECT 1 FROM scoring_config WHERE key = %s)", [DEMO_MARKER_KEY]
        )
        if not cur.fetchone()[0]:
            raise FcSetInvalid(["demo FC answers are only written into a seed_demo database"])
        cur.execute(
            "SELECT b.id::text, array_agg(o.id::text ORDER BY o.order_index) FROM fc_blocks b"
            " JOIN fc_options o ON o.block_id = b.id WHERE b.is_active GROUP BY b.id ORDER BY b.id"
        )
        blocks = cur.fetchall()
        if not blocks:
            raise FcSetInvalid(["no active FC blocks: load a set first"])
        cur.execute(
            "SELECT id::text FROM assessment_sessions WHERE status = 'completed'"
            " ORDER BY completed_at DESC, id LIMIT %s",
            [count],
        )
        sessions = [r[0] for r in cur.fetchall()]
        rng = random.Random(seed)
        rows = [(sid, block, rng.choice(options)) for sid in sessions for block, options in blocks]
        cur.executemany(
            "INSERT INTO fc_responses (session_id, block_id, option_id) VALUES (%s, %s, %s)"
            " ON CONFLICT (session_id, block_id) DO NOTHING",
            rows,
        )
    return len(sessions)
