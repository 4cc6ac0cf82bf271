"""Forced-choice session scoring (section 8) with the v1.2 seed."""

from __future__ import annotations

import pytest

from scoring import FcOption, FcResponse, fc_options_from_seed, score_fc_session

from .conftest import FC_SEED, load_json


@pytest.fixture(scope="module")
def options() -> dict[str, FcOption]:
    seed = load_json(FC_SEED)
    assert isinstance(seed, dict)
    return fc_options_from_seed(seed)


def picks(options: dict[str, FcOption], code: str) -> list[FcResponse]:
    return [FcResponse(o.block_id, o.id) for o in options.values() if o.option_code == code]


def test_seed_shape(options: dict[str, FcOption]) -> None:
    assert len(options) == 24
    assert len({o.block_id for o in options.values()}) == 6


def test_seed_example_option_a_everywhere(options: dict[str, FcOption]) -> None:
    r = score_fc_session(picks(options, "A"), options, "functions", session_id="s")
    assert dict(r.scores) == {
        "Te": 90,
        "Ti": 90,
        "Fe": 50,
        "Fi": 60,
        "Ne": 80,
        "Ni": 100,
        "Se": 70,
        "Si": 50,
    }
    assert r.blocks_answered == 6 and r.should_write and r.fc_kind == "functions"
    assert r.version == "v1.2"
    assert r.scores_json() == dict(r.scores)


def test_types_basis_shares(options: dict[str, FcOption]) -> None:
    r = score_fc_session(picks(options, "A"), list(options.values()), "types")
    # tally Ni 10, Te 9, Ti 9, Ne 8, Se 7, Fi 6, Fe 5, Si 5: total 59
    assert r.scores["Ni"] == round(10 / 59, 4) == 0.1695
    assert r.scores["Fe"] == 0.0847  # 5/59 = 0.084745...
    assert r.blocks_answered == 6


def test_functions_basis_rounds_to_two_decimals() -> None:
    opts = {
        "o1": FcOption("o1", "b1", "A", {"Ti": 2, "Te": 1, "Fi": 0}),
        "o2": FcOption("o2", "b2", "A", {"Ti": 1, "Te": "1", "Fe": "x", "Ni": True}),
    }
    r = score_fc_session([FcResponse("b1", "o1"), FcResponse("b2", "o2")], opts)
    # tally Ti 3, Te 2 (numeric string counts), Fi 0; non-numeric weights ignored
    assert dict(r.scores) == {"Ti": 100.0, "Te": 66.67, "Fi": 0.0}


def test_option_not_found_is_skipped_with_event(options: dict[str, FcOption]) -> None:
    resp = [*picks(options, "B")[:2], FcResponse("blk", "missing-option")]
    r = score_fc_session(resp, options, session_id="s")
    assert r.blocks_answered == 2
    missing = [e for e in r.events if e.name == "fc_option_not_found"]
    assert len(missing) == 1 and missing[0].fields["option_id"] == "missing-option"
    assert missing[0].fields["session_id"] == "s"


def test_no_responses_writes_nothing(options: dict[str, FcOption]) -> None:
    r = score_fc_session([], options, session_id="s")
    assert r.blocks_answered == 0 and not r.should_write and dict(r.scores) == {}
    assert [e.name for e in r.events] == ["fc_no_responses"]
    assert r.events[0].fields["reason"] == "no_rows"
    r2 = score_fc_session([FcResponse("b", "nope")], options)
    assert not r2.should_write
    assert [e.name for e in r2.events] == ["fc_option_not_found", "fc_no_responses"]


def test_all_zero_weights() -> None:
    opts = {"o": FcOption("o", "b", "A", {"Ti": 0, "Te": 0})}
    assert dict(score_fc_session([FcResponse("b", "o")], opts).scores) == {"Ti": 0, "Te": 0}
    assert dict(score_fc_session([FcResponse("b", "o")], opts, "types").scores) == {
        "Ti": 0,
        "Te": 0,
    }


def test_bad_basis() -> None:
    with pytest.raises(ValueError):
        score_fc_session([], {}, "bogus")
