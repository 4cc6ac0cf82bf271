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
        "  WHERE session_id = ANY(%s::uuid[])"
        "  ORDER BY session_id, question_id, created_at DESC) latest GROUP BY session_id",
        [uuid_array(ids)],
    )
    return {sid: scoring.AnswerColumns(qids, values) for sid, qids, values in cur.fetchall()}


def fc_responses_many(cur: Any, ids: list[str]) -> dict[str, list[tuple[str, str]]]:
    cur.execute(
        "SELECT session_id::text, block_id::text, option_id::text FROM fc_responses"
        " WHERE session_id = ANY(%s::uuid[])",
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


# Whether assessment_responses has a plain unique index on exactly (session_id, question_id)
# over NOT NULL columns: then each question has one row per session and the latest-answer
# DISTINCT ON is not needed. Evaluated once per statement (an uncorrelated subquery).
UNIQUE_ANSWERS_SQL = (
    "(SELECT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = to_regclass('public.assessment_responses')"
    " AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL AND i.indnatts = 2"
    " AND (SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_attribute a"
    "  WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey::int2[]) AND a.attnotnull)"
    "  = ARRAY['question_id', 'session_id']))"
)


def batch_inputs(
    cur: Any, ids: list[str], *, rescore: bool, unique_answers: bool
) -> dict[str, tuple[Any, ...]]:
    """Everything a batch write reads of its locked sessions, in one statement (one row per
    session): the profile (id, type_code, results_version, row as JSON text), the fc_scores
    rows (JSON text, the pre-image's order), and, for sessions that will be scored (no
    profile yet, or `rescore`), the effective answers as two arrays and the FC responses
    as two arrays. `unique_answers`: the unique key already gives one row per question."""
    if unique_answers:
        answers = (
            "SELECT array_agg(r.question_id ORDER BY r.question_id) AS qids,"
            " array_agg(coalesce(r.answer_value, r.answer_numeric::text) ORDER BY r.question_id)"
            " AS vals FROM assessment_responses r WHERE r.session_id = s.sid"
        )
    else:
        answers = (
            "SELECT array_agg(l.question_id ORDER BY l.question_id) AS qids,"
            " array_agg(l.v ORDER BY l.question_id) AS vals FROM ("
            "  SELECT DISTINCT ON (r.question_id) r.question_id,"
            "  coalesce(r.answer_value, r.answer_numeric::text) AS v FROM assessment_responses r"
            "  WHERE r.session_id = s.sid ORDER BY r.question_id, r.created_at DESC) l"
        )
    cur.execute(
        "SELECT s.sid::text, p.id::text, p.type_code, p.results_version, to_jsonb(p)::text,"
        " (SELECT coalesce(jsonb_agg(to_jsonb(f) ORDER BY f.version, f.fc_kind), '[]')::text"
        "  FROM fc_scores f WHERE f.session_id = s.sid),"
        " a.qids, a.vals, fr.blocks, fr.options"
        " FROM unnest(%s::uuid[]) AS s(sid)"
        " LEFT JOIN profiles p ON p.session_id = s.sid"
        f" LEFT JOIN LATERAL ({answers}) a ON (p.id IS NULL OR %s)"
        " LEFT JOIN LATERAL (SELECT array_agg(x.block_id::text) AS blocks,"
        "  array_agg(x.option_id::text) AS options FROM fc_responses x"
        "  WHERE x.session_id = s.sid) fr ON (p.id IS NULL OR %s)",
        [uuid_array(ids), rescore, rescore],
    )
    return {row[0]: row[1:] for row in cur.fetchall()}
