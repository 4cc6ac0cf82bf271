"""`python -m scoring`: score golden-shaped inputs from a file, or one per line (JSONL)."""

from __future__ import annotations

import argparse
import json
import sys
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import IO, TextIO

from .engine import Scorer
from .errors import UnscorableSession
from .inputs import parse_input

__all__ = ["main", "to_json_value"]

EXIT_OK = 0
EXIT_FAILED = 1  # an input was unscorable or invalid (JSONL: at least one line)
EXIT_USAGE = 2  # bad arguments, unreadable file, or invalid JSON in single-file mode


def to_json_value(value: object) -> object:
    """Plain JSON values printed like JavaScript's JSON.stringify (4.0 -> 4, -0.0 -> 0)."""
    if isinstance(value, float):
        if value - value != 0.0:
            return None  # JSON.stringify(NaN / Infinity) is null
        if value.is_integer() and abs(value) < 2**53:
            return int(value)
        return value
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    return value


def _dumps(value: object, indent: int | None) -> str:
    separators = (",", ": ") if indent else (",", ":")
    return json.dumps(
        to_json_value(value),
        indent=indent,
        separators=separators,
        ensure_ascii=False,
        allow_nan=False,
    )


class _ScorerCache:
    """Compiled scorers by (scoring key, config), so JSONL lines sharing them compile once."""

    def __init__(self, size: int = 16) -> None:
        self._items: OrderedDict[str, Scorer] = OrderedDict()
        self._size = size

    def score(self, doc: object) -> dict[str, object]:
        inp = parse_input(doc)
        assert isinstance(doc, Mapping)
        fingerprint = json.dumps(
            [doc.get("scoringKey", doc.get("scoring_key")), doc.get("config")],
            sort_keys=True,
            default=str,
        )
        scorer = self._items.get(fingerprint)
        if scorer is None:
            scorer = Scorer(inp.key, inp.config)
            self._items[fingerprint] = scorer
            if len(self._items) > self._size:
                self._items.popitem(last=False)
        else:
            self._items.move_to_end(fingerprint)
        result = scorer.score(inp.responses, inp.fc_function_scores, session_id=inp.session_id)
        return result.to_dict()


def _error(kind: str, reason: str, message: str) -> dict[str, object]:
    return {"error": kind, "reason": reason, "message": message}


def _score_doc(cache: _ScorerCache, doc: object) -> tuple[dict[str, object], bool]:
    """(output, ok) for one decoded document; never raises for bad input."""
    try:
        return cache.score(doc), True
    except UnscorableSession as exc:
        return exc.to_dict(), False
    except ValueError as exc:  # parse_input: not an object / wrong shapes
        return _error("invalid_input", "bad_shape", str(exc)), False


def _open(path: str) -> IO[str]:
    if path == "-":
        return sys.stdin
    return open(path, encoding="utf-8")


def run_single(path: str, out: TextIO, err: TextIO) -> int:
    """Score one JSON document and print the output JSON (golden shape)."""
    try:
        with _open(path) as fh:
            text = fh.read()
    except OSError as exc:
        print(f"scoring: cannot read {path}: {exc.strerror or exc}", file=err)
        return EXIT_USAGE
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        print(f"scoring: {path} is not valid JSON: {exc}", file=err)
        return EXIT_USAGE
    if not isinstance(doc, Mapping):
        print(f"scoring: {path} must hold a JSON object (responses, scoringKey, config)", file=err)
        return EXIT_USAGE
    output, ok = _score_doc(_ScorerCache(), doc)
    print(_dumps(output, indent=2), file=out)
    if not ok:
        print(f"scoring: {output.get('reason')}: {output.get('message')}", file=err)
    return EXIT_OK if ok else EXIT_FAILED


def run_jsonl(path: str, out: TextIO, err: TextIO) -> int:
    """Score one document per line; print one output (or error) line per input line."""
    try:
        fh = _open(path)
    except OSError as exc:
        print(f"scoring: cannot read {path}: {exc.strerror or exc}", file=err)
        return EXIT_USAGE
    cache = _ScorerCache()
    failed = 0
    lineno = 0
    with fh:
        for lineno, line in enumerate(fh, start=1):  # noqa: B007 - lineno used after loop
            if not line.strip():
                output, ok = _error("invalid_input", "empty_line", "empty line"), False
            else:
                try:
                    doc = json.loads(line)
                except (ValueError, RecursionError) as exc:
                    output, ok = _error("invalid_input", "invalid_json", str(exc)), False
                else:
                    output, ok = _score_doc(cache, doc)
            if not ok:
                failed += 1
            out.write(_dumps(output, indent=None) + "\n")
    if failed:
        print(f"scoring: {failed} of {lineno} lines failed", file=err)
        return EXIT_FAILED
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m scoring`."""
    ap = argparse.ArgumentParser(
        prog="python -m scoring",
        description=(
            "Score PRISM sessions with the v1.2.1 engine. Input: a JSON object "
            "{sessionId, responses, scoringKey, config, fcFunctionScores?}; output: the "
            "engine result JSON."
        ),
    )
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("input", nargs="?", help="input JSON file ('-' for stdin)")
    group.add_argument(
        "--jsonl",
        metavar="FILE",
        help="score one input per line of FILE ('-' for stdin), one output line each",
    )
    args = ap.parse_args(argv)
    if args.jsonl is not None:
        return run_jsonl(args.jsonl, sys.stdout, sys.stderr)
    return run_single(args.input, sys.stdout, sys.stderr)
