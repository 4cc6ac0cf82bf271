"""`python -m scoring`: single file, JSONL, errors and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from scoring import FUNCTIONS, score_input

from .conftest import GOLDENS, HERE, load_json

ROOT = HERE.parent.parent


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scoring", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


def golden_line(case: str) -> str:
    return json.dumps(load_json(GOLDENS / f"{case}.input.json"))


def test_jsonl_scores_each_line_in_order_and_reports_bad_lines(tmp_path: Path) -> None:
    lines = [
        golden_line("g1"),
        "{not json",
        golden_line("g3"),
        json.dumps({"responses": []}),
        "[1, 2]",
        "",
        golden_line("g5"),
    ]
    f = tmp_path / "in.jsonl"
    f.write_text("\n".join(lines) + "\n")
    proc = run("--jsonl", str(f))
    assert proc.returncode == 1
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(out) == len(lines)
    assert out[0]["type_code"] == load_json(GOLDENS / "g1.output.json")["type_code"]  # type: ignore[index]
    assert out[1]["error"] == "invalid_input" and out[1]["reason"] == "invalid_json"
    assert out[2]["type_code"] == "SEE"
    assert out[3]["type_code"] == "LIE" and out[3]["strengths"] == dict.fromkeys(FUNCTIONS, 0)
    assert "error" not in out[3]  # no answers: the spec's profile, not an error
    assert out[4]["error"] == "invalid_input"
    assert out[5]["reason"] == "empty_line"
    assert out[6]["type_code"] == "EII"
    assert "3 of 7 lines failed" in proc.stderr


def test_jsonl_from_stdin_all_good_exits_zero() -> None:
    proc = run("--jsonl", "-", stdin=golden_line("g2") + "\n" + golden_line("g4") + "\n")
    assert proc.returncode == 0, proc.stderr
    outs = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [o["type_code"] for o in outs] == ["IEE", "LII"]
    assert outs[1]["conf_raw"] == load_json(GOLDENS / "g4.output.json")["conf_raw"]  # type: ignore[index]


def test_missing_file_and_invalid_json_exit_2(tmp_path: Path) -> None:
    proc = run(str(tmp_path / "nope.json"))
    assert proc.returncode == 2 and "cannot read" in proc.stderr and proc.stdout == ""
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    proc = run(str(bad))
    assert proc.returncode == 2 and "not valid JSON" in proc.stderr
    proc = run("--jsonl", str(tmp_path / "nope.jsonl"))
    assert proc.returncode == 2
    assert run().returncode == 2  # no input given: usage error


def test_no_scorable_answer_prints_the_spec_profile_and_exits_0(tmp_path: Path) -> None:
    f = tmp_path / "in.json"
    doc = {
        "responses": [{"question_id": 1, "answer_value": "Agree"}],
        "scoringKey": {"1": {"tag": "Ti_S", "scale_type": "LIKERT_1_5"}},
    }
    f.write_text(json.dumps(doc))
    proc = run(str(f))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out == score_input(doc).to_dict()  # the library's result, printed as is
    assert out["strengths"] == dict.fromkeys(FUNCTIONS, 0)
    assert [t["share"] for t in out["top_3_fits"]] == [1 / 16] * 3
    assert [t["code"] for t in out["top_types"]] == ["LIE", "ILI", "ESE"]
    assert (out["type_code"], out["close_call"], out["fit_band"]) == ("LIE", True, "low_fit")
    assert all(t["fit"] == 0 for t in out["top_3_fits"])


def test_unscorable_single_file_exits_1(tmp_path: Path) -> None:
    f = tmp_path / "in.json"
    responses = [{"question_id": q, "answer_value": "1e308"} for q in (1, 2)]
    key = {"1": {"tag": "Ti_S", "scale_type": "LIKERT_1_5"}}
    key["2"] = {"tag": "Ti_D", "scale_type": "LIKERT_1_5"}
    doc = {"responses": responses, "scoringKey": key}
    f.write_text(json.dumps(doc))
    proc = run(str(f))
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["reason"] == "non_finite_result"
    assert "non_finite_result" in proc.stderr
