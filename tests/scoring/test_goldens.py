"""Parity with the six golden vectors: every field exact, shares within 1e-12."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from scoring import Scorer, ScoreRequest, parse_input, score_input

from .conftest import GOLDENS, HERE, load_json

CASES = sorted(p.name.split(".")[0] for p in GOLDENS.glob("g*.input.json"))
SHARE_TOL = 1e-12


def assert_matches_golden(actual: object, expected: object, path: str = "") -> None:
    """Exact JSON-number equality (4 == 4.0), except `share` within 1e-12."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        assert list(actual) == list(expected), f"{path}: keys/order differ"
        for k in expected:
            assert_matches_golden(actual[k], expected[k], f"{path}.{k}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), path
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_matches_golden(a, e, f"{path}[{i}]")
    elif isinstance(expected, bool) or expected is None or isinstance(expected, str):
        assert actual == expected and type(actual) is type(expected), path
    else:
        assert isinstance(actual, (int, float)) and not isinstance(actual, bool), path
        if path.endswith(".share"):
            assert math.isclose(actual, expected, rel_tol=0, abs_tol=SHARE_TOL), path
        else:
            assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def test_there_are_six_goldens() -> None:
    assert CASES == ["g1", "g2", "g3", "g4", "g5", "g6"]


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    doc = load_json(GOLDENS / f"{case}.input.json")
    expected = load_json(GOLDENS / f"{case}.output.json")
    assert_matches_golden(score_input(doc).to_dict(), expected)


@pytest.mark.parametrize("case", CASES)
def test_golden_through_batch(case: str) -> None:
    inp = parse_input(load_json(GOLDENS / f"{case}.input.json"))
    scorer = Scorer(inp.key, inp.config)
    reqs = [ScoreRequest(inp.responses, inp.fc_function_scores)] * 10
    single = scorer.score(inp.responses, inp.fc_function_scores)
    results = scorer.score_batch(reqs)
    assert all(r == single for r in results)
    assert_matches_golden(results[0].to_dict(), load_json(GOLDENS / f"{case}.output.json"))  # type: ignore[union-attr]


def test_golden_through_cli() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "scoring", str(GOLDENS / "g1.input.json")],
        capture_output=True,
        text=True,
        cwd=HERE.parent.parent,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert_matches_golden(json.loads(proc.stdout), load_json(GOLDENS / "g1.output.json"))
    # JSON.stringify prints 4, not 4.0
    assert '"Ti": 4,' in proc.stdout
