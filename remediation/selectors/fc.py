"""FC coverage: per version active blocks and options, dangling responses, legacy sessions."""

from __future__ import annotations

from typing import Any

from django.db import connections

from remediation.pipeline.context import FC_VERSION


def coverage() -> dict[str, Any]:
    """Per version active blocks/options, dangling responses, legacy-only sessions, odd scores."""

    def rows(sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        with connections["pipeline"].cursor() as cur:
            cur.execute(sql, params or [])
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
        "SELECT version, fc_kind, count(*) FROM fc_scores WHERE version <> %s OR fc_kind <> 'functions'"
        " GROUP BY 1, 2 ORDER BY 1, 2",
        [FC_VERSION],
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
