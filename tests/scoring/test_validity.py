"""The stored validity (scoring.validity): a profile no Likert answer supports is flagged.

The engine's own output keeps the spec's constant `validity_status` 'valid' (the goldens
pin it); `stored_validity()` is what the portal stores."""

from __future__ import annotations

import pytest

from scoring import (
    FUNCTIONS,
    EngineResult,
    KeyEntry,
    Response,
    Scorer,
    build_profile_row,
    stored_confidence,
    stored_validity,
)
from scoring.validity import FLAGGED, NO_USABLE_LIKERT

UNUSABLE = ["NaN", "😀", "Infinity", "-Infinity", "", "   ", None, "Agree", "4 stars"]
FC_SCORES = {"Te": 90, "Ti": 90, "Fe": 50, "Fi": 60, "Ne": 80, "Ni": 100, "Se": 70, "Si": 50}


def likert_function_items(key: dict[int, KeyEntry]) -> list[int]:
    return [
        q
        for q, e in key.items()
        if e.tag and e.scale_type.startswith("LIKERT") and e.tag[:2] in FUNCTIONS
    ]


def answers(key: dict[int, KeyEntry], value_of) -> list[Response]:
    return [Response(q, value_of(n)) for n, q in enumerate(likert_function_items(key))]


def test_the_reference_key_has_likert_function_items(real_key):
    assert len(likert_function_items(real_key)) > 50


@pytest.mark.parametrize("value", UNUSABLE)
def test_all_likert_answers_unusable_with_fc_scores_is_flagged(real_scorer, real_key, value):
    result = real_scorer.score(answers(real_key, lambda n: value), FC_SCORES)
    # The engine is the spec's: scored from the FC component alone, 'valid' in its output.
    assert result.fc_source == "scores"
    assert not result.no_scorable_answers
    assert result.to_dict()["validity_status"] == "valid"
    assert result.strengths["Ni"] == 2.5  # 0.5 x 0 + 0.5 x (100 / 100 x 5)
    stored = stored_validity(result)
    assert stored.flagged and stored.flags == (NO_USABLE_LIKERT,)
    assert stored.validity_status == FLAGGED
    assert stored.validity == {
        "attention": 0,
        "inconsistency": 0,
        "sd_index": 0,
        "flags": ["no_usable_likert"],
        "likert_usable": 0,
    }


def test_a_mix_of_unusable_answers_with_fc_derived_from_answers_is_flagged(real_scorer, real_key):
    mixed = answers(real_key, lambda n: UNUSABLE[n % len(UNUSABLE)])
    fc_items = [q for q, e in real_key.items() if e.fc_map]
    fc_answers = [Response(q, sorted(real_key[q].fc_map or {})[0]) for q in fc_items]
    result = real_scorer.score(mixed + fc_answers)
    if fc_items:
        assert result.fc_source == "derived"
    assert stored_validity(result).validity_status == FLAGGED


def test_one_usable_answer_keeps_the_profile_valid(real_scorer, real_key):
    result = real_scorer.score(answers(real_key, lambda n: "4" if n == 0 else "NaN"), FC_SCORES)
    assert result.likert_items == 1 and result.likert_blank == 0
    stored = stored_validity(result)
    assert (stored.validity_status, stored.flags) == ("valid", ())
    assert stored.validity == {"attention": 0, "inconsistency": 0, "sd_index": 0}


def test_blank_answers_score_as_zero_but_are_not_usable(real_scorer, real_key):
    """A blank answer is 0 for the engine (JavaScript Number("")), exactly like "0"; only the validity
    tells them apart."""
    blank = real_scorer.score(answers(real_key, lambda n: ""), FC_SCORES)
    zero = real_scorer.score(answers(real_key, lambda n: "0"), FC_SCORES)
    assert blank.to_dict() == zero.to_dict()
    assert blank.likert_items == zero.likert_items > 0
    assert (blank.likert_blank, zero.likert_blank) == (blank.likert_items, 0)
    assert stored_validity(blank).validity_status == FLAGGED
    assert stored_validity(zero).validity_status == "valid"


def test_nothing_to_score_at_all_is_flagged_too(real_scorer, real_key):
    """No usable Likert answer and no FC component: the all-zero profile (which the portal
    writes only with WRITE_UNSCORABLE_PROFILES) is flagged the same way."""
    result = real_scorer.score(answers(real_key, lambda n: "NaN"))
    assert result.no_scorable_answers
    assert stored_validity(result).flags == (NO_USABLE_LIKERT,)


def test_a_normal_session_and_the_goldens_stay_valid(real_scorer, real_key):
    result = real_scorer.score(answers(real_key, lambda n: str(1 + n % 5)))
    assert isinstance(result, EngineResult)
    assert stored_validity(result).validity_status == "valid"


def test_the_profile_row_carries_what_the_portal_replaces(real_scorer, real_key):
    """build_profile_row is the spec's row ('valid'); the portal stores stored_validity()."""
    from datetime import UTC, datetime

    result = real_scorer.score(answers(real_key, lambda n: "NaN"), FC_SCORES)
    row = build_profile_row(
        result, stored_confidence(result, real_scorer.config, []), "s", datetime.now(UTC)
    )
    assert row["validity_status"] == "valid"
    assert stored_validity(result).validity_status == FLAGGED


def test_every_golden_stays_valid():
    """The goldens have usable Likert answers: the engine output and the stored validity
    are both 'valid' (test_goldens.py pins the rest of the output)."""
    import json

    from scoring import score_input
    from tests.scoring.conftest import GOLDENS

    inputs = sorted(GOLDENS.glob("*.input.json"))
    assert len(inputs) >= 5
    for path in inputs:
        result = score_input(json.loads(path.read_text(encoding="utf-8")))
        expected = json.loads(path.with_name(path.name.replace(".input.", ".output.")).read_text())
        assert result.to_dict()["validity_status"] == expected["validity_status"] == "valid"
        assert result.likert_blank == 0
        assert stored_validity(result).validity_status == "valid", path.name


def test_a_scorer_built_from_a_mapping_key_counts_blanks_too():
    key = {1: KeyEntry(1, "Ti_S", "LIKERT_1_5", False, None)}
    scorer = Scorer(key)
    assert scorer.score([Response(1, " ")]).likert_blank == 1
    assert scorer.score([Response(1, "3")]).likert_blank == 0
