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
