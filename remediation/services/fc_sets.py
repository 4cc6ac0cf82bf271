"""FC block sets: the document format, its validation, reading it from a file.

A set is a JSON document `{version, blocks: [{id, code, title, description, order_index,
is_active, options: [{id, option_code, prompt, order_index, weights}]}]}` (the shipped
v1.2 set is remediation/data/fc_seed_v1.2.json). Ids are stable, so loading is an upsert
and loading twice changes nothing.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from pathlib import Path
from typing import Any

import scoring

FUNCTIONS = set(scoring.FUNCTIONS)
# A set document's limits: the shipped v1.2 set is about 60 kB and 5 levels deep.
MAX_SET_BYTES = 2_000_000
MAX_DEPTH = 20
INT_MIN, INT_MAX = -(2**31), 2**31 - 1  # PostgreSQL int (order_index)


class FcSetInvalid(ValueError):
    """The set does not validate; `errors` lists every problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__(
            "; ".join(errors[:10]) + (f" (and {len(errors) - 10} more)" if len(errors) > 10 else "")
        )
        self.errors = errors


def validate_weights(weights: Any) -> list[str]:
    """Weight keys are the eight functions; values are numbers."""
    if not isinstance(weights, dict) or not weights:
        return ["weights must be a non-empty object of function -> number"]
    errors = []
    for key, value in weights.items():
        if key not in FUNCTIONS:
            errors.append(f"weight key {key!r} is not one of {', '.join(scoring.FUNCTIONS)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append(f"weight {key} = {value!r} is not a number")
        elif not math.isfinite(value):
            errors.append(f"weight {key} = {value!r} is not a finite number")
    return errors


def _int_errors(value: Any, where: str) -> list[str]:
    """order_index: an integer (a boolean is not one) within PostgreSQL's int range."""
    if isinstance(value, bool) or not isinstance(value, int):
        return [f"{where}: order_index must be an integer, not {value!r}"[:200]]
    if not INT_MIN <= value <= INT_MAX:
        return [f"{where}: order_index {value} is outside {INT_MIN}..{INT_MAX}"[:200]]
    return []


def _nul_errors(data: Any) -> list[str]:
    """Every string (keys included) that holds a NUL byte, which PostgreSQL text refuses."""
    found, stack = [], [("the set", data)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and "\x00" in key:
                    found.append(f"{where}: key {key!r} contains a NUL byte")
                stack.append((f"{where}.{key}"[:120], item))
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]"[:120], item) for i, item in enumerate(value))
        elif isinstance(value, str) and "\x00" in value:
            found.append(f"{where} contains a NUL byte")
    return sorted(found)


def validate_set(data: Any) -> list[str]:
    """Every problem of a set document, with where it is."""
    if not isinstance(data, dict):
        return ["the set must be a JSON object"]
    errors = _nul_errors(data)
    version = data.get("version")
    if not isinstance(version, str) or not version:
        errors.append("version is missing")
    blocks = data.get("blocks")
    if not isinstance(blocks, list) or not blocks:
        return [*errors, "blocks must be a non-empty list"]
    seen_ids: set[str] = set()
    seen_codes: set[Any] = set()
    for i, block in enumerate(blocks, start=1):
        where = f"block {i}"
        if not isinstance(block, dict):
            errors.append(f"{where} is not an object")
            continue
        where = f"block {i} ({block.get('code', '?')})"
        for name in ("id", "code", "title"):
            if not isinstance(block.get(name), str) or not block.get(name):
                errors.append(f"{where}: {name} is missing")
        errors += _int_errors(block.get("order_index"), where)
        if not isinstance(block.get("is_active", True), bool):
            errors.append(f"{where}: is_active must be true or false")
        if not isinstance(block.get("description") or "", str):
            errors.append(f"{where}: description must be text")
        errors += _id_errors(block.get("id"), where, seen_ids)
        if block.get("code") in seen_codes:
            errors.append(f"{where}: code appears twice in the version")
        seen_codes.add(block.get("code"))
        options = block.get("options")
        if not isinstance(options, list) or not options:
            errors.append(f"{where}: options must be a non-empty list")
            continue
        codes: set[Any] = set()
        for j, option in enumerate(options, start=1):
            owhere = f"{where} option {j}"
            if not isinstance(option, dict):
                errors.append(f"{owhere} is not an object")
                continue
            code = option.get("option_code")
            if not isinstance(code, str) or not code:
                errors.append(f"{owhere}: option_code is missing")
            elif code in codes:
                errors.append(f"{owhere}: option code {code!r} appears twice in the block")
            codes.add(code)
            if not isinstance(option.get("prompt"), str) or not option.get("prompt"):
                errors.append(f"{owhere}: prompt is missing")
            errors += _int_errors(option.get("order_index"), owhere)
            errors += _id_errors(option.get("id"), owhere, seen_ids)
            errors += [f"{owhere}: {e}" for e in validate_weights(option.get("weights"))]
    return errors


def _id_errors(value: Any, where: str, seen: set[str]) -> list[str]:
    try:
        canonical = str(uuid.UUID(str(value)))
    except ValueError:
        return [f"{where}: id {value!r} is not a UUID"]
    if canonical in seen:
        return [f"{where}: id {canonical} is used twice"]
    seen.add(canonical)
    return []


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _depth(text: str) -> int:
    """How deeply the document's arrays and objects nest (brackets inside strings aside)."""
    depth = deepest = 0
    outside_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)
    for match in re.finditer(r"[\[\]{}]", outside_strings):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def parse_set(raw: bytes | str, source: str = "the set") -> Any:
    """A set document from bytes or text: at most MAX_SET_BYTES, UTF-8, strict JSON (no NaN
    or Infinity), nested at most MAX_DEPTH deep. Validate it with validate_set."""
    size = len(raw.encode("utf-8") if isinstance(raw, str) else raw)
    if size > MAX_SET_BYTES:
        raise FcSetInvalid([f"{source} is larger than the limit of {MAX_SET_BYTES:,} bytes"])
    try:
        text = raw if isinstance(raw, str) else raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FcSetInvalid([f"{source} is not UTF-8 text (byte {exc.start})"]) from None
    if _depth(text) > MAX_DEPTH:
        raise FcSetInvalid([f"{source} is nested too deeply (more than {MAX_DEPTH} levels)"])
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise FcSetInvalid([f"{source} is nested too deeply"]) from None
    except ValueError as exc:
        raise FcSetInvalid([f"{source} is not JSON: {exc}"]) from None


def read_set(path: Path | str) -> dict[str, Any]:
    """A set document from a file, with a clear error for a missing, oversized or malformed
    file."""
    try:
        with Path(path).open("rb") as f:
            raw = f.read(MAX_SET_BYTES + 1)
    except OSError as exc:
        raise FcSetInvalid([f"cannot read {path}: {exc.strerror}"]) from exc
    data: dict[str, Any] = parse_set(raw, str(path))
    return data


# --- Loading -------------------------------------------------------------------------------
