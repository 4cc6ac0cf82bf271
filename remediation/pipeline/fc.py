"""score_fc_session as the pipeline runs it: best effort (Fix C), as service_role."""

from __future__ import annotations

from typing import Any

from django.db import DatabaseError, transaction
from psycopg.types.json import Jsonb

import scoring
from remediation.pipeline.context import FC_VERSION, PipelineContext, portal_event
from remediation.pipeline.errors import classify_error
from remediation.pipeline.timeouts import PipelineTimeout
from scoring import Event


def score_fc(
    cur: Any,
    ctx: PipelineContext,
    session_id: str,
    fc_rows: list[tuple[str, str]],
    events: list[Event],
    using: str,
) -> None:
    """score_fc_session (best effort, Fix C): upsert fc_scores, record fc_scoring_attempted."""
    try:
        with transaction.atomic(using=using):
            fc = scoring.score_fc_session(
                [scoring.FcResponse(b, o) for b, o in fc_rows],
                ctx.fc_options,
                "functions",
                session_id=session_id,
            )
            events.extend(fc.events)
            if fc.should_write:
                cur.execute(
                    "INSERT INTO fc_scores (session_id, version, fc_kind, scores_json,"
                    " blocks_answered) VALUES (%s, %s, %s, %s, %s)"
                    " ON CONFLICT (session_id, version, fc_kind) DO UPDATE SET"
                    " scores_json = EXCLUDED.scores_json,"
                    " blocks_answered = EXCLUDED.blocks_answered",
                    [
                        session_id,
                        FC_VERSION,
                        fc.fc_kind,
                        Jsonb(fc.scores_json()),
                        fc.blocks_answered,
                    ],
                )
        events.append(portal_event("fc_scoring_attempted", session_id, success=True))
    except PipelineTimeout:
        # A locked fc_scores is not a failed FC scoring: scoring on without the FC scores
        # would write a worse profile. The session is busy and tried again (write.py).
        raise
    except DatabaseError as exc:
        info = classify_error(exc, using=using, statement="FC score write")
        events.append(
            portal_event(
                "fc_scoring_attempted",
                session_id,
                success=False,
                statement=info.statement,
                error=f"{info.sqlstate} {info.message}",
            )
        )
