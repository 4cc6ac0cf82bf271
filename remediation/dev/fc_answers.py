"""Demo only: FC answers for the newest completed sessions, as the web client would have
saved them once FC v1.2 was live (refused outside a seed_demo database)."""

from __future__ import annotations

from django.db import connections

from remediation.dev.demo import DEMO_MARKER_KEY, DemoRefused


def demo_fc_responses(count: int, *, seed: int = 11) -> int:
    """Demo only: FC answers for the newest `count` completed sessions, as the web client
    would have saved them once FC v1.2 was live (refused outside a seed_demo database)."""
    import random

    with connections["pipeline"].cursor() as cur:
        cur.execute(
            "SELECT EXISTS (SELECT 1 FROM scoring_config WHERE key = %s)", [DEMO_MARKER_KEY]
        )
        if not cur.fetchone()[0]:
            raise DemoRefused("demo FC answers are only written into a seed_demo database")
        cur.execute(
            "SELECT b.id::text, array_agg(o.id::text ORDER BY o.order_index) FROM fc_blocks b"
            " JOIN fc_options o ON o.block_id = b.id WHERE b.is_active GROUP BY b.id ORDER BY b.id"
        )
        blocks = cur.fetchall()
        if not blocks:
            raise DemoRefused("no active FC blocks: load a set first")
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
