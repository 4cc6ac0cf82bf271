"""The answers a finalize scores: effective Likert answers and FC responses of many sessions."""

from __future__ import annotations

from typing import Any

import scoring
from remediation.pipeline.sql import uuid_array


def read_answers_many(cur: Any, ids: list[str]) -> dict[str, scoring.AnswerColumns]:
    """Effective answers, coalesce(answer_value, answer_numeric::text), latest per question,
    as two columns per session (one row per session from the database)."""
    cur.execute(
        "SELECT session_id::text, array_agg(question_id ORDER BY question_id),"
        " array_agg(v ORDER BY question_id) FROM ("
        "  SELECT DISTINCT ON (session_id, question_id) session_id, question_id,"
        "  coalesce(answer_value, answer_numeric::text) AS v FROM assessment_responses"
        "  WHERE session_id = ANY(%s::text::uuid[])"
        "  ORDER BY session_id, question_id, created_at DESC) latest GROUP BY session_id",
        [uuid_array(ids)],
    )
    return {sid: scoring.AnswerColumns(qids, values) for sid, qids, values in cur.fetchall()}


def fc_responses_many(cur: Any, ids: list[str]) -> dict[str, list[tuple[str, str]]]:
    cur.execute(
        "SELECT session_id::text, block_id::text, option_id::text FROM fc_responses"
        " WHERE session_id = ANY(%s::text::uuid[])",
        [uuid_array(ids)],
    )
    out: dict[str, list[tuple[str, str]]] = {}
    for sid, block, option in cur.fetchall():
        out.setdefault(sid, []).append((block, option))
    return out


def read_answers(cur: Any, session_id: str) -> list[scoring.Response]:
    """Effective answers of one session, latest per question."""
    columns = read_answers_many(cur, [session_id]).get(session_id)
    return list(columns) if columns is not None else []
