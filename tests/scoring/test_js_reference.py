"""Cross-check against a literal JavaScript reading of the spec, run on Node's V8.

`js/reference_engine.js` is a second, independent implementation written straight
from scoring.md with JavaScript's own Number(), String(), toFixed, Math.exp/log2 and
Array.prototype.sort. Agreement on hundreds of generated sessions (string answers,
reverse scoring, fc_map derivation, ties, odd configs, negative temperatures) checks
that the Python engine reproduces the JavaScript semantics, not just the six goldens.
Node is part of this machine image; the test is skipped where it is not installed.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import subprocess

import pytest

from scoring import FUNCTIONS, UnscorableSession, score_input

from .conftest import HERE, load_json

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

ANSWERS: list[object] = [
    1,
    2,
    3,
    4,
    5,
    "1",
    "2",
    "3",
    "4",
    "5",
    " 4 ",
    "4.0",
    "1e0",
    "0x3",
    "0b10",
    "",
    "Agree",
    "A",
    "B",
    "C",
    "D",
    None,
    2.5,
    3.25,
    "Infinity",
    "-1",
    7,
    "0o4",
    [3],
    [],
    True,
    "\u00a05",
]
FC_POOL: list[object] = [None, {}, {"Ti": 60, "Ne": 40}, {"Te": "70", "Si": 30.5, "Fi": "x"}]
CONFIGS: list[dict[str, object]] = [
    {},
    {"softmax_temp": 0, "conf_raw_params": {"a": 0, "b": 0.5}, "fc_expected_min": 3},
    {"softmax_temp": 0.5, "fit_band_thresholds": {"high_fit": 7, "moderate_fit": 3}},
    {"softmax_temp": 2.5, "conf_raw_params": {"a": 1, "b": 1, "c": 1}},
    {"softmax_temp": -1},
    {"softmax_temp": "2", "fit_band_thresholds": {"high_fit": 60, "moderate_fit": 45}},
]


def make_inputs(n: int, seed: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    real = load_json(HERE / "goldens" / "g1.input.json")
    assert isinstance(real, dict)
    docs = []
    for _ in range(n):
        key: dict[str, object] = {}
        nq = rng.randint(1, 30)
        for q in range(1, nq + 1):
            kind = rng.random()
            if kind < 0.6:
                tag = rng.choice(FUNCTIONS) + rng.choice(["_S", "_D"])
                key[str(q)] = {
                    "tag": tag,
                    "scale_type": "LIKERT_1_5",
                    "reverse_scored": rng.random() < 0.3,
                }
            elif kind < 0.8:
                letters = "ABCD"[: rng.randint(2, 4)]
                fc_map = {ch: rng.choice(FUNCTIONS) for ch in letters}
                if rng.random() < 0.3:
                    fc_map["5"] = rng.choice(FUNCTIONS)
                key[str(q)] = {"scale_type": "FORCED_CHOICE_4", "fc_map": fc_map}
            else:
                key[str(q)] = {
                    "tag": rng.choice(["N", "N_R", "Core", ""]),
                    "scale_type": rng.choice(["LIKERT_1_7", "META"]),
                }
        responses = [
            {"question_id": rng.randint(1, nq + 2), "answer_value": rng.choice(ANSWERS)}
            for _ in range(rng.randint(0, nq + 5))
        ]
        if rng.random() < 0.2:  # all-equal answers: many exact ties
            responses = [{"question_id": q, "answer_value": 3} for q in range(1, nq + 1)]
        doc = {"sessionId": "s", "responses": responses, "scoringKey": key}
        doc.update(config=rng.choice(CONFIGS), fcFunctionScores=rng.choice(FC_POOL))
        docs.append(doc)
    return docs


def python_output(doc: dict[str, object]) -> dict[str, object]:
    try:
        return score_input(doc).to_dict()
    except UnscorableSession:
        return {"error": "unscorable"}


def test_python_engine_matches_the_javascript_reading() -> None:
    docs = make_inputs(400, seed=1917)
    proc = subprocess.run(
        [str(NODE), str(HERE / "js" / "reference_engine.js")],
        input=json.dumps(docs),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    js_outputs = json.loads(proc.stdout)
    scored = 0
    for doc, js in zip(docs, js_outputs, strict=True):
        py = python_output(doc)
        if "error" in js:
            assert py == js, doc
            continue
        scored += 1
        for field, want in js.items():
            got = py[field]
            if field == "top_3_fits":
                assert [t["code"] for t in got] == [t["code"] for t in want], doc  # type: ignore[union-attr]
                for g, w in zip(got, want, strict=True):  # type: ignore[call-overload]
                    assert g["fit"] == w["fit"]
                    assert math.isclose(g["share"], w["share"], rel_tol=0, abs_tol=1e-12)
            else:
                assert got == want, (field, doc)
    assert scored > 250  # most generated sessions are scorable
