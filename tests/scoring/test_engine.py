"""Hand-computed cases from the spec (scoring.md sections 1-6), beyond the goldens."""

from __future__ import annotations

import math

import pytest

from scoring import (
    ENGINE_VERSION,
    FUNCTIONS,
    MODEL_A,
    TYPES,
    EngineConfig,
    EngineResult,
    KeyEntry,
    Prototypes,
    Response,
    Scorer,
    UnscorableSession,
    parse_input,
    prototypes_from_table_rows,
    score_input,
    score_session,
)

from .conftest import DATA

SPEC_CONFIG = {
    "results_version": "v1.2.1",
    "softmax_temp": 1,
    "conf_raw_params": {"a": 0.25, "b": 0.35, "c": 0.2},
    "fit_band_thresholds": {"high_fit": 10, "moderate_fit": 5},
    "fc_expected_min": 0,
}


def likert(qid: int, tag: str, reverse: bool = False) -> KeyEntry:
    return KeyEntry(qid, tag, "LIKERT_1_5", reverse)


def score(
    key: list[KeyEntry], answers: list[tuple[int, object]], fc: object = None, config: object = None
) -> EngineResult:
    return Scorer(key, config if config is not None else SPEC_CONFIG).score(
        [Response(q, a) for q, a in answers], fc
    )


def names(result: EngineResult) -> list[str]:
    return [e.name for e in result.events]


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


# --- strengths: parsing, reverse scoring, tags -----------------------------------------


def test_reverse_scoring_string_answers_and_tie_ranking() -> None:
    key = [likert(1, "Ti_S", reverse=True), likert(2, "Ti_D"), likert(3, "Fe_S")]
    r = score(key, [(1, "2"), (2, " 5 "), (3, "0x3")])
    # Ti = ((6 - 2) + 5) / 2 = 4.5, Fe = 3
    assert dict(r.strengths) == {f: {"Ti": 4.5, "Fe": 3.0}.get(f, 0.0) for f in FUNCTIONS}
    fits = r.fits
    # LII and LSI: Ti base 4.5 + Fe vulnerable 0.2*3 = 5.1; ESE/EIE: 3 + 0.9 = 3.9
    assert fits["LII"] == fits["LSI"] == 5.1
    assert fits["ESE"] == fits["EIE"] == 3.9
    assert fits["ILE"] == fits["SLE"] == 3.75
    assert fits["SEI"] == fits["IEI"] == 3.0
    assert fits["LIE"] == 1.5
    # equal shares: fit desc, then type order (LII before LSI, ESE before EIE)
    assert [t.code for t in r.top_types] == ["LII", "LSI", "ESE"]
    assert (r.type_code, r.base_func, r.creative_func) == ("LII", "Ti", "Ne")
    assert r.close_call is True and r.top_gap == 0.0
    assert r.fit_band == "moderate_fit"
    weights = {5.1: 2, 3.9: 2, 3.75: 2, 3.0: 2, 1.5: 8}
    z = sum(n * math.exp(f - 5.1) for f, n in weights.items())
    assert r.top_types[0].share == pytest.approx(1 / z, abs=1e-12)
    assert r.top_types[2].share == pytest.approx(math.exp(-1.2) / z, abs=1e-12)
    h16 = -sum(
        n * (math.exp(f - 5.1) / z) * math.log2(math.exp(f - 5.1) / z) for f, n in weights.items()
    )
    want = float(f"{sigmoid(0.25 * 0.0 + 0.35 * 0.0 - 0.2 * h16):.4f}")
    assert r.conf_raw == r.conf_calibrated == want
    assert r.confidence == "Low"
    assert r.fc_answered_ct == 0 and r.fc_source == "none"
    assert names(r) == ["fc_fallback_legacy", "scoring_complete"]
    assert r.events[0].fields["reason"] == "no_fc_infrastructure"


def test_non_function_tags_and_non_likert_scales_are_ignored() -> None:
    key = [
        likert(1, "Ti_S"),
        KeyEntry(2, "N_R", "LIKERT_1_7", True),
        KeyEntry(3, "Core", "LIKERT_1_5"),
        KeyEntry(4, "Te_S", "STATE_1_7"),
        KeyEntry(5, "", "LIKERT_1_5"),
        KeyEntry(6, None, "LIKERT_1_5"),
        KeyEntry(7, "Fe", "likert_1_5"),  # case matters: not LIKERT
        KeyEntry(8, "Nix", "LIKERT_1_5"),  # first two characters: Ni
    ]
    r = score(key, [(q, 4) for q in range(1, 9)])
    assert dict(r.strengths) == {f: {"Ti": 4.0, "Ni": 4.0}.get(f, 0.0) for f in FUNCTIONS}
    assert r.likert_items == 2


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (5, 5.0),
        ("5", 5.0),
        ("  5\n", 5.0),
        ("5.0", 5.0),
        ("0.5e1", 5.0),
        ("0b101", 5.0),
        ([5], 5.0),
        ("", 0.0),
        ([], 0.0),
        (True, 1.0),
        (False, 0.0),
        (4.25, 4.25),
    ],
)
def test_answer_parsing_feeds_the_mean(answer: object, expected: float) -> None:
    key = [likert(1, "Se_S"), likert(2, "Se_D")]
    r = score(key, [(1, answer), (2, 3)])
    assert r.strengths["Se"] == float(f"{(expected + 3) / 2:.3f}")


@pytest.mark.parametrize(
    "bad", ["Agree", "A", None, math.nan, math.inf, "-Infinity", "1e400", {}, [1, 2], "0x"]
)
def test_unparseable_or_non_finite_answers_are_skipped(bad: object) -> None:
    key = [likert(1, "Ne_S"), likert(2, "Ne_D")]
    r = score(key, [(1, bad), (2, 2)])
    assert r.strengths["Ne"] == 2.0 and r.likert_items == 1


def test_strength_rounding_to_three_decimals_unrounded_downstream() -> None:
    key = [likert(1, "Ti_S"), likert(2, "Ti_D"), likert(3, "Ti_S")]
    r = score(key, [(1, 5), (2, 4), (3, 4)])
    assert r.strengths["Ti"] == 4.333
    # fit uses 13/3, not 4.333: LII = 1.0 * 13/3 = 4.3333...
    assert r.fits["LII"] == 4.3333
    assert r.fits["ILE"] == float(f"{0.7 * (13 / 3):.4f}") == 3.0333


def test_duplicate_answers_latest_wins() -> None:
    key = [likert(1, "Ti_S")]
    assert score(key, [(1, 5), (1, 1)]).strengths["Ti"] == 1.0
    assert score(key, [(1, 1), (1, 5)]).strengths["Ti"] == 5.0
    # golden-shaped input: later in the list wins, question ids compared the JS way
    doc = {
        "responses": [
            {"question_id": 1, "answer_value": 2},
            {"question_id": "1", "answer_value": 4},
            {"question_id": "01", "answer_value": 1},  # String(1) is "1": never matches
        ],
        "scoringKey": {"1": {"tag": "Ti_S", "scale_type": "LIKERT_1_5"}},
    }
    assert score_input(doc).strengths["Ti"] == 4.0


def test_unknown_question_ids_are_skipped() -> None:
    r = score([likert(1, "Fi_S")], [(1, 3), (999, 5), (-4, 5)])
    assert r.strengths["Fi"] == 3.0 and r.likert_items == 1


# --- forced-choice component --------------------------------------------------------


FC_KEY = [
    likert(1, "Ti_S"),
    KeyEntry(10, None, "FORCED_CHOICE_4", False, {"A": "Te", "B": "Si", "C": "Se", "D": "Ne"}),
    KeyEntry(11, None, "FORCED_CHOICE_2", False, {"A": "Ti", "B": "Te"}),
    KeyEntry(12, None, "FORCED_CHOICE_5", False, {"5": "Ni", "true": "Fe"}),
]


def test_fc_map_derivation_when_fc_scores_absent() -> None:
    r = score(FC_KEY, [(1, 4), (10, "A"), (11, "B"), (12, "x")])
    # fc_derived: Te 2 of 2 -> fc_norm Te = 5; strengths are the 50/50 blend
    assert dict(r.strengths) == {f: {"Ti": 2.0, "Te": 2.5}.get(f, 0.0) for f in FUNCTIONS}
    assert r.fc_answered_ct == 2 and r.fc_source == "derived"
    assert names(r) == ["fc_derived_from_answers", "scoring_complete"]


@pytest.mark.parametrize(
    ("answer", "func"),
    [
        (5, "Ni"),
        (5.0, "Ni"),
        ("5", "Ni"),
        ("5.0", None),
        (" 5", None),
        ([5], "Ni"),
        (True, "Fe"),
        ("true", "Fe"),
        ("True", None),
        (None, None),
    ],
)
def test_fc_map_lookup_uses_javascript_string_of_the_answer(
    answer: object, func: str | None
) -> None:
    # the key is String(answer): String(5.0) == "5", String(true) == "true"
    r = score(FC_KEY, [(1, 4), (12, answer)])
    if func is None:
        assert r.fc_answered_ct == 0 and r.fc_source == "none"
    else:
        assert r.fc_answered_ct == 1 and r.strengths[func] == 2.5


def test_fc_scores_present_even_empty_disable_derivation() -> None:
    r = score(FC_KEY, [(1, 4), (10, "A")], fc={})
    assert dict(r.strengths) == {f: {"Ti": 2.0}.get(f, 0.0) for f in FUNCTIONS}
    assert r.fc_answered_ct == 0 and r.fc_source == "scores"
    assert names(r) == ["fc_scores_loaded", "scoring_complete"]


def test_fc_scores_missing_or_non_numeric_keys() -> None:
    fc = {"Ti": "abc", "Te": None, "Fi": "50", "Fe": 100, "Ne": True, "Ni": [], "Xx": 7}
    r = score([likert(1, "Se_S")], [(1, 2)], fc=fc)
    assert r.strengths["Fi"] == 1.25  # "50" -> 2.5 blended with no Likert items
    assert r.strengths["Fe"] == 2.5
    assert all(r.strengths[f] == 0 for f in ("Ti", "Te", "Ne", "Ni", "Si"))
    assert r.strengths["Se"] == 1.0
    assert r.fc_answered_ct == 7  # number of keys, whatever they are


def test_malformed_fc_maps_are_ignored() -> None:
    key = [
        likert(1, "Ti_S"),
        KeyEntry(2, None, "FORCED_CHOICE_2", False, {"A": 5, "B": "Xx", "C": None}),
        KeyEntry(3, None, "FORCED_CHOICE_2", False, None),
    ]
    doc_key = {
        "1": {"tag": "Ti_S", "scale_type": "LIKERT_1_5"},
        "2": {"scale_type": "FORCED_CHOICE_2", "fc_map": "not json"},
        "3": {"scale_type": "FORCED_CHOICE_2", "fc_map": ["A", "Ti"]},
        "4": {"scale_type": "FORCED_CHOICE_2", "fc_map": '{"A": "Ne"}'},
    }
    r = score(key, [(1, 3), (2, "A"), (2, "B"), (3, "A")])
    assert r.fc_answered_ct == 0 and r.strengths["Ti"] == 3.0
    answers = [{"question_id": q, "answer_value": "A"} for q in (2, 3, 4)]
    r2 = score_input(
        {"responses": [{"question_id": 1, "answer_value": 3}, *answers], "scoringKey": doc_key}
    )
    assert r2.fc_answered_ct == 1 and r2.strengths["Ne"] == 2.5  # JSON text fc_map parsed


def test_key_entries_with_odd_types_are_cleaned() -> None:
    e = KeyEntry(1, 17, None, "yes", '{"A": "Ti"}')  # type: ignore[arg-type]
    assert (e.tag, e.scale_type, e.reverse_scored, e.fc_map) == (None, "", True, {"A": "Ti"})
    e2 = KeyEntry(2, "Ti_S", "LIKERT_1_5", 0, "[1]")  # type: ignore[arg-type]
    assert e2.reverse_scored is False and e2.fc_map is None
    r = score([e, e2], [(1, "A"), (2, 4)])
    assert r.fc_answered_ct == 1 and dict(r.strengths)["Ti"] == 4.5  # (4 + 5) / 2 blend


def test_fc_scores_not_a_mapping_counts_as_absent() -> None:
    r = score(FC_KEY, [(1, 4)], fc=[1, 2, 3])
    assert r.fc_source == "none"
    assert r.events[0].name == "fc_fallback_legacy"
    assert r.events[0].fields["reason"] == "invalid_fc_scores"


# --- config -------------------------------------------------------------------------


def test_zero_or_missing_config_values_fall_back_to_defaults() -> None:
    key = [likert(1, "Ti_S"), likert(2, "Ne_S"), likert(3, "Fe_S")]
    answers = [(1, 5), (2, 4), (3, 2)]
    base = score(key, answers, config=SPEC_CONFIG)
    zeros = {
        "softmax_temp": 0,
        "conf_raw_params": {"a": 0, "b": 0, "c": 0},
        "fit_band_thresholds": {"high_fit": 0, "moderate_fit": 0},
        "fc_expected_min": 0,
        "results_version": "",
    }
    assert score(key, answers, config=zeros) == base
    assert score(key, answers, config={}) == base
    assert score(key, answers, config={"softmax_temp": None, "conf_raw_params": "x"}) == base
    cfg = EngineConfig.from_mapping(zeros)
    assert (cfg.softmax_temp, cfg.conf_raw_params.a, cfg.fit_band_thresholds.high_fit) == (
        1.0,
        0.25,
        10.0,
    )


def test_config_values_are_used() -> None:
    key = [likert(1, "Ti_S"), likert(2, "Ne_S")]
    answers = [(1, 5), (2, 4)]
    # LII = 5 + 0.7*4 = 7.8 ; ILE = 0.7*5 + 4 = 7.5
    hot = score(key, answers, config={"softmax_temp": 2})
    cold = score(key, answers, config={"softmax_temp": 0.5})
    assert hot.top_types[0].share < cold.top_types[0].share
    assert hot.top_types[1].share / hot.top_types[0].share == pytest.approx(math.exp(-0.3 / 2))
    assert (
        score(key, answers, config={"fit_band_thresholds": {"high_fit": 7.8}}).fit_band
        == "high_fit"
    )
    assert (
        score(key, answers, config={"fit_band_thresholds": {"high_fit": 7.81}}).fit_band
        == "moderate_fit"
    )
    assert (
        score(key, answers, config={"fit_band_thresholds": {"moderate_fit": 7.9}}).fit_band
        == "low_fit"
    )


def test_real_config_thresholds_give_low_fit_and_low_coverage(
    real_config_map: dict[str, object],
) -> None:
    # the seeded v1.2.0-scale values: fit bands 60/45, fc_expected_min 24
    r = score([likert(1, "Ti_S")], [(1, 5)], fc={f: 50 for f in FUNCTIONS}, config=real_config_map)
    assert r.fit_band == "low_fit"
    assert r.fc_answered_ct == 8 and r.fc_coverage_bucket == "low"
    r2 = score(
        [likert(1, "Ti_S")], [(1, 5)], fc={f: 50 for f in FUNCTIONS}, config={"fc_expected_min": 8}
    )
    assert r2.fc_coverage_bucket == "full"


def test_engine_version_override_event() -> None:
    r = score([likert(1, "Ti_S")], [(1, 5)], config={"results_version": "v1.3.0"})
    assert r.version == r.results_version == ENGINE_VERSION
    ev = r.events[0]
    assert ev.name == "engine_version_override"
    assert dict(ev.fields) == {"config_version": "v1.3.0", "engine_version": "v1.2.1"}
    assert "engine_version_override" not in names(score([likert(1, "Ti_S")], [(1, 5)]))


def test_events_carry_session_id_and_render_as_log_lines() -> None:
    r = Scorer([likert(1, "Ti_S")], SPEC_CONFIG).score([Response(1, 5)], session_id="abc")
    assert (
        r.events[0].to_log_line()
        == "evt:fc_fallback_legacy,session_id:abc,reason:no_fc_infrastructure"
    )
    assert r.events[-1].fields["session_id"] == "abc"
    assert r.events[-1].fields["type_code"] == r.type_code


# --- prototypes ---------------------------------------------------------------------


def test_config_type_prototypes_are_used() -> None:
    table = {t: dict(MODEL_A[t]) for t in TYPES}
    table["LIE"] = dict(MODEL_A["LII"])  # LIE now looks like LII and wins the tie
    key = [likert(1, "Ti_S"), likert(2, "Ne_S")]
    r = score(key, [(1, 5), (2, 4)], config={"type_prototypes": table})
    assert r.type_code == "LIE" and r.base_func == "Ti" and r.creative_func == "Ne"
    assert [t.code for t in r.top_types[:2]] == ["LIE", "LII"]
    assert score(key, [(1, 5), (2, 4)]).type_code == "LII"


def test_config_type_prototypes_shapes_and_abbreviations() -> None:
    by_block = {t: {b: f for f, b in MODEL_A[t].items()} for t in TYPES}  # {block: func}
    abbreviated = {
        t: {f: b[:4] if b != "creative" else "creat" for f, b in MODEL_A[t].items()} for t in TYPES
    }
    assert Prototypes.from_mapping(by_block) == Prototypes.builtin()
    assert Prototypes.from_mapping(abbreviated).weights == Prototypes.builtin().weights
    partial = Prototypes.from_mapping({"LIE": {"Ti": "BASE"}})
    assert partial.weights[0] == (1.0,) + (0.2,) * 7  # missing entries weigh 0.2
    assert partial.base_funcs[0] == "Ti" and partial.creative_funcs[0] is None
    assert all(w == (0.2,) * 8 for w in partial.weights[1:])


def test_bad_config_type_prototypes_fall_back_to_builtin() -> None:
    key = [likert(1, "Ti_S"), likert(2, "Ne_S")]
    one_row = [{"type_code": "LIE", "func": "Ti", "block": "base"}]
    cases = [
        (one_row, "row_count_not_128"),
        ("nope", "not_a_table"),
        ({"LIE": "x"}, "no_valid_entries"),
    ]
    for bad, reason in cases:
        r = score(key, [(1, 5), (2, 4)], config={"type_prototypes": bad})
        assert r.type_code == "LII"
        assert r.events[0].name == "type_prototypes_fallback"
        assert r.events[0].fields["reason"] == reason


def test_prototype_table_rule_exactly_128_rows() -> None:
    import csv

    rows = list(csv.DictReader((DATA / "type_prototypes.csv").open()))
    assert len(rows) == 128
    protos = prototypes_from_table_rows(rows)
    assert protos is not None and protos == Prototypes.builtin()
    assert prototypes_from_table_rows(rows[:127]) is None
    assert prototypes_from_table_rows([*rows, rows[0]]) is None
    # explicit prototypes win over the config's
    swapped = [dict(r, block="base" if r["func"] == "Se" else "role") for r in rows]
    table = prototypes_from_table_rows(swapped)
    assert table is not None
    r = Scorer([likert(1, "Ti_S")], {"type_prototypes": {"LIE": {"Ti": "base"}}}, table).score(
        [Response(1, 5)]
    )
    assert r.base_func == "Se" and r.creative_func is None
    assert r.fits["LIE"] == 1.0  # Ti is "role" everywhere: 0.2 * 5


def test_builtin_prototypes_match_the_csv_table() -> None:
    import csv

    for row in csv.DictReader((DATA / "type_prototypes.csv").open()):
        assert MODEL_A[row["type_code"]][row["func"]] == row["block"]


# --- unscorable and overflow ----------------------------------------------------------


def assert_spec_empty_profile(r: EngineResult) -> None:
    """scoring.md section 6: the profile of a session with nothing to score."""
    assert r.no_scorable_answers is True
    assert dict(r.strengths) == dict.fromkeys(FUNCTIONS, 0)
    assert r.type_fits == (0,) * 16
    assert r.type_shares == (1 / 16,) * 16
    assert [t.code for t in r.top_types] == list(TYPES[:3]) == ["LIE", "ILI", "ESE"]
    assert (r.type_code, r.base_func, r.creative_func) == ("LIE", "Te", "Ni")
    assert r.close_call is True and r.top_gap == 0 and r.fit_band == "low_fit"
    assert r.score_fit_raw == 0 and r.likert_items == 0 and r.fc_source == "none"
    # the rest follows the rules: H16 = 4 bits, fit_gap = share_gap = 0
    want_conf = float(f"{sigmoid(-SPEC_CONFIG['conf_raw_params']['c'] * 4):.4f}")  # type: ignore[index]
    assert r.conf_raw == r.conf_calibrated == want_conf
    assert r.confidence == "Low"


def test_empty_session_gets_the_spec_profile() -> None:
    r = score([likert(1, "Ti_S")], [])
    assert_spec_empty_profile(r)
    assert r.fc_answered_ct == 0
    assert names(r) == ["fc_fallback_legacy", "scoring_complete"]
    assert r.events[-1].fields["likert_items"] == 0


def test_no_likert_contribution_and_no_fc_gets_the_spec_profile() -> None:
    key = [likert(1, "Ti_S"), KeyEntry(2, "N", "LIKERT_1_7")]
    r = score(key, [(1, "Agree"), (2, 5), (3, 1), (1, None)])
    assert_spec_empty_profile(r)
    # FC scores that are not a mapping are no FC component either
    assert_spec_empty_profile(score(key, [(1, "Agree")], fc=[10, 20]))
    # the same profile, whatever the softmax temperature's sign
    negative = score(key, [], config={**SPEC_CONFIG, "softmax_temp": -2})
    assert negative.type_code == "LIE" and negative.no_scorable_answers


def test_one_scorable_answer_or_fc_scores_clear_no_scorable_answers() -> None:
    key = [likert(1, "Ti_S")]
    assert score(key, [(1, "4")]).no_scorable_answers is False
    assert score(key, [], fc={}).no_scorable_answers is False  # an FC component, all zero
    assert score(FC_KEY, [(10, "D")]).no_scorable_answers is False  # FC derived from fc_map


def test_golden_shape_of_an_empty_session_is_the_scored_shape() -> None:
    empty = score([likert(1, "Ti_S")], []).to_dict()
    scored = score([likert(1, "Ti_S")], [(1, 4)]).to_dict()
    assert list(empty) == list(scored)  # no extra key: the flag is not part of the output


def test_fc_component_alone_is_scorable() -> None:
    r = score([likert(1, "Ti_S")], [], fc={})
    # all strengths 0 -> all fits 0 -> 16 equal shares; type order decides
    assert [t.code for t in r.top_types] == ["LIE", "ILI", "ESE"]
    assert all(s == 1 / 16 for s in r.type_shares)
    assert r.conf_raw == 0.31  # sigmoid(-0.2 * 4 bits) = 0.3100255...
    assert (r.fit_band, r.close_call, r.top_gap) == ("low_fit", True, 0.0)
    derived = score(FC_KEY, [(10, "D")])
    assert derived.type_code in ("ILE", "IEE") and derived.strengths["Ne"] == 2.5


def test_overflowing_answers_raise_unscorable() -> None:
    with pytest.raises(UnscorableSession) as exc:
        score([likert(1, "Ti_S"), likert(2, "Ti_D")], [(1, "1e308"), (2, 1e308)])
    assert exc.value.reason == "non_finite_result"


def test_huge_finite_answers_still_score() -> None:
    r = score([likert(1, "Ti_S"), likert(2, "Fe_S")], [(1, 1000), (2, 1)])
    assert r.type_code in ("LII", "LSI")
    assert sum(r.type_shares) == pytest.approx(1.0)
    assert min(r.type_shares) == 0.0  # exp underflow: 0*log2(0) counts as 0
    assert 0 <= r.conf_raw <= 1


def test_negative_temperature_ranks_by_share() -> None:
    key = [likert(1, "Ti_S"), likert(2, "Ne_S")]
    r = score(key, [(1, 5), (2, 4)], config={"softmax_temp": -1})
    shares = r.type_shares
    assert r.top_types[0].share == max(shares)
    assert r.fits[r.type_code] == min(r.type_fits)
    tops = [t.share for t in r.top_types]
    assert tops == sorted(tops, reverse=True)


def test_score_session_convenience_and_to_dict_shape() -> None:
    r = score_session([Response(1, 5)], [likert(1, "Ti_S")], SPEC_CONFIG)
    d = r.to_dict()
    assert d["type_code"] == r.type_code == "LII"
    assert d["dims_highlights"] == {"coherent": [], "unique": []}
    assert d["overlay_neuro"] == d["overlay_state"] == "none" and d["overlay"] == "0"
    assert d["validity_status"] == "valid"
    assert "events" not in d and "type_fits" not in d


def test_parse_input_rejects_non_objects() -> None:
    with pytest.raises(ValueError):
        parse_input([1, 2])
    with pytest.raises(ValueError):
        parse_input({"responses": "x"})
    inp = parse_input({"responses": [1, {"question_id": True, "answer_value": 3}]})
    assert inp.responses == () and inp.fc_function_scores is None
