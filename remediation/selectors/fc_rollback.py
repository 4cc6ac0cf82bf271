"""What rolling back an FC set version removes, every row listed (the confirmation page of
the FC blocks' "Roll back the versions" action). Reads only."""

from __future__ import annotations

from typing import Any

from django.db import connections

from remediation.models import FcBlock

_COUNTS = {
    "fc_responses": "SELECT count(*) FROM fc_responses r JOIN fc_blocks b ON b.id = r.block_id"
    " WHERE b.version = %s",
    "fc_scores": "SELECT count(*) FROM fc_scores WHERE version = %s",
}


def fc_version_removal(version: str, selected: int = 0) -> dict[str, Any]:
    """Every block and option of `version` (a rollback removes the whole version, however
    few of its blocks were selected), and how many responses and FC scores go with them."""
    blocks = list(
        FcBlock.objects.filter(version=version).order_by("order_index").prefetch_related("options")
    )
    rows: list[dict[str, Any]] = [
        {"block": b, "options": sorted(b.options.all(), key=lambda o: o.order_index)}
        for b in blocks
    ]
    counts: dict[str, int] = {}
    with connections["pipeline"].cursor() as cur:
        for table, sql in _COUNTS.items():
            cur.execute(sql, [version])
            counts[table] = cur.fetchone()[0]
    return {
        "version": version,
        "selected": selected,
        "blocks": rows,
        "block_count": len(rows),
        "option_count": sum(len(r["options"]) for r in rows),
        **counts,
    }


def fc_undo_preview(change: Any) -> dict[str, Any]:
    """What undoing the FC rollback `change` puts back (its stored rows: every block with
    its options, how many responses and FC scores), and why it would be refused now: it was
    undone already, or blocks of that version exist again (a reload since)."""
    images = change.pre_images or {}
    options: dict[str, list[dict[str, Any]]] = {}
    for o in images.get("fc_options") or []:
        options.setdefault(str(o.get("block_id")), []).append(o)
    blocks = [
        {
            "block": b,
            "options": sorted(
                options.get(str(b.get("id")), []), key=lambda o: o.get("order_index") or 0
            ),
        }
        for b in sorted(images.get("fc_blocks") or [], key=lambda b: b.get("order_index") or 0)
    ]
    present = FcBlock.objects.filter(version=change.version).count()
    refusal = ""
    if change.kind != "rollback":
        refusal = f"change #{change.pk} is a {change.kind}, not a rollback"
    elif change.undone_at is not None:
        refusal = f"rollback #{change.pk} was undone already ({change.undone_at:%Y-%m-%d %H:%M %Z})"
    elif present:
        refusal = (
            f"version {change.version} has {present} block{'' if present == 1 else 's'} again"
            " (loaded since): putting the old rows back would collide with them"
        )
    return {
        "change": change,
        "version": change.version,
        "blocks": blocks,
        "block_count": len(blocks),
        "option_count": sum(len(b["options"]) for b in blocks),
        "fc_responses": len(images.get("fc_responses") or []),
        "fc_scores": len(images.get("fc_scores") or []),
        "refusal": refusal,
    }
