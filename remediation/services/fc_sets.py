"""FC block sets: the document format, its validation, reading it from a file.

A set is a JSON document `{version, blocks: [{id, code, title, description, order_index,
is_active, options: [{id, option_code, prompt, order_index, weights}]}]}` (the shipped
v1.2 set is remediation/data/fc_seed_v1.2.json). Ids are stable, so loading is an upsert
and loading twice changes nothing.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import scoring

FUNCTIONS = set(scoring.FUNCTIONS)


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
    return errors


def validate_set(data: Any) -> list[str]:
    """Every problem of a set document, with where it is."""
    if not isinstance(data, dict):
        return ["the set must be a JSON object"]
    errors = []
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
        if not isinstance(block.get("order_index"), int):
            errors.append(f"{where}: order_index must be an integer")
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
            if not isinstance(option.get("order_index"), int):
                errors.append(f"{owhere}: order_index must be an integer")
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


def read_set(path: Path | str) -> dict[str, Any]:
    """A set document from a file, with a clear error for a missing or malformed file."""
    try:
        data: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise FcSetInvalid([f"cannot read {path}: {exc.strerror}"]) from exc
    except ValueError as exc:
        raise FcSetInvalid([f"{path} is not JSON: {exc}"]) from exc
    return data


# --- Loading -------------------------------------------------------------------------------
