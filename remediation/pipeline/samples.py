"""What the engine can write under this database's config: sample profile rows.

`engine_sample_rows()` asks the engine itself rather than a list of values: it scores a
few sessions built to reach every branch that sets a categorical column of the profile
(no forced choice at all: fc_answered_ct 0; every fc_map item of the scoring key answered;
FC scores carrying every key this database's FC options can produce) with the context's
scorer (this database's scoring key and scoring_config, e.g. `fc_expected_min`), and turns
each result into the row the write path would send with `profile_row()`. So
`fc_coverage_bucket` is 'low' in these rows exactly when the engine can write 'low' here
(fc_answered_ct 0 < fc_expected_min), and 'full' only when some reachable fc_answered_ct
meets the threshold.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import scoring
from remediation.pipeline.constraints import text_of
from remediation.pipeline.context import PipelineContext
from remediation.pipeline.profiles import profile_row

SAMPLE_SESSION_ID = "00000000-0000-4000-8000-000000000000"


def engine_sample_rows(ctx: PipelineContext, now: datetime) -> list[tuple[str, dict[str, Any]]]:
    """Profile rows the engine writes under this config, one per branch that sets a
    categorical column: (how the session was answered, the row).

    Sessions the portal would not write (nothing scorable) are left out.
    """
    qids = [e.question_id for e in ctx.scoring_key]
    fc_items = {}
    for e in ctx.scoring_key:
        letters = [k for k, v in (e.fc_map or {}).items() if v in scoring.FUNCTIONS]
        if letters:
            fc_items[e.question_id] = sorted(letters)[0]
    fc_keys = sorted(
        set(scoring.FUNCTIONS) | {str(k) for o in ctx.fc_options.values() for k in o.weights}
    )
    cases: list[tuple[str, dict[int, str], dict[str, object] | None]] = [
        ("every Likert item answered 3, no forced choice", dict.fromkeys(qids, "3"), None),
        ("every Likert item answered 1, no forced choice", dict.fromkeys(qids, "1"), None),
        ("every Likert item answered 5, no forced choice", dict.fromkeys(qids, "5"), None),
        (
            f"every Likert item answered 3 and all {len(fc_items)} fc_map items answered,"
            " no FC scores",
            {**dict.fromkeys(qids, "3"), **fc_items},
            None,
        ),
        (
            f"every Likert item answered 3, FC scores with all {len(fc_keys)} keys",
            dict.fromkeys(qids, "3"),
            dict.fromkeys(fc_keys, 100),
        ),
    ]
    requests = [
        scoring.ScoreRequest(
            scoring.AnswerColumns(list(answers), list(answers.values())), fc, SAMPLE_SESSION_ID
        )
        for _, answers, fc in cases
    ]
    rows = []
    for (label, _, _), result in zip(cases, ctx.scorer.score_batch(requests), strict=True):
        if isinstance(result, scoring.UnscorableSession) or result.no_scorable_answers:
            continue
        rows.append((label, profile_row(ctx, result, SAMPLE_SESSION_ID, now)))
    return rows


def engine_values(
    rows: list[tuple[str, dict[str, Any]]], columns: set[str]
) -> dict[str, list[str]]:
    """The distinct values the sample rows carry in each of `columns`, in first-seen order."""
    out: dict[str, list[str]] = {}
    for _, row in rows:
        for col in sorted(columns):
            if col in row:
                values = out.setdefault(col, [])
                if text_of(row[col]) not in values:
                    values.append(text_of(row[col]))
    return out
