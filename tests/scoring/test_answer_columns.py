"""AnswerColumns (two parallel columns) scores exactly like the equivalent list of Response."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import scoring

DATA = Path(__file__).parent / "goldens"


@pytest.mark.parametrize("name", ["g1", "g2", "g3", "g4", "g5", "g6"])
def test_columns_equal_responses_single_and_batch(name):
    doc = json.loads((DATA / f"{name}.input.json").read_text())
    inp = scoring.parse_input(doc)
    scorer = scoring.Scorer(inp.key, inp.config)
    responses = list(inp.responses)
    # A duplicate answer: the later one wins in both forms.
    responses.append(scoring.Response(responses[0].question_id, responses[-1].answer_value))
    columns = scoring.AnswerColumns(
        [r.question_id for r in responses], [r.answer_value for r in responses]
    )
    expected = scorer.score(responses, inp.fc_function_scores).to_dict()
    assert scorer.score(columns, inp.fc_function_scores).to_dict() == expected
    batch = scorer.score_batch(
        [scoring.ScoreRequest(columns, inp.fc_function_scores)] * 40
        + [scoring.ScoreRequest(responses, inp.fc_function_scores)] * 40
    )
    assert all(r.to_dict() == expected for r in batch)


def test_columns_must_have_equal_lengths():
    with pytest.raises(ValueError, match="same length"):
        scoring.AnswerColumns([1, 2], ["3"])
