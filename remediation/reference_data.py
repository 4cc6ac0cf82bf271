"""The pipeline's reference data as seeded by its migrations.

The engine's own tables (scoring key, config, type prototypes) ship with the engine in
scoring/data (ENGINE_DATA_DIR); the FC block set ships here, in remediation/data (DATA_DIR).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import scoring

DATA_DIR = Path(__file__).resolve().parent / "data"
ENGINE_DATA_DIR = scoring.DATA_DIR


@dataclass(frozen=True)
class KeyRow:
    question_id: int
    tag: str | None
    scale_type: str
    reverse_scored: bool
    fc_map: dict[str, str] | None
    pair_group: str | None
    social_desirability: bool
    weight: float
    section: str | None


@cache
def scoring_key_rows() -> tuple[KeyRow, ...]:
    """The 246 rows of assessment_scoring_key."""
    rows = []
    with (ENGINE_DATA_DIR / "scoring_key.csv").open(newline="", encoding="utf-8") as fh:
        for rec in csv.DictReader(fh):
            rows.append(
                KeyRow(
                    question_id=int(rec["question_id"]),
                    tag=rec["tag"] or None,
                    scale_type=rec["scale_type"],
                    reverse_scored=rec["reverse_scored"] == "true",
                    fc_map=json.loads(rec["fc_map"]) if rec["fc_map"] else None,
                    pair_group=rec["pair_group"] or None,
                    social_desirability=rec["social_desirability"] == "true",
                    weight=float(rec["weight"] or 1),
                    section=rec["section"] or None,
                )
            )
    return tuple(rows)


@cache
def scoring_config() -> dict[str, Any]:
    """The 29 scoring_config keys as seeded (results_version v1.2.1)."""
    data: dict[str, Any] = json.loads((ENGINE_DATA_DIR / "scoring_config.json").read_text("utf-8"))
    return data


@cache
def type_prototypes() -> tuple[tuple[str, str, str], ...]:
    """The 128 Model A rows (type_code, func, block)."""
    with (ENGINE_DATA_DIR / "type_prototypes.csv").open(newline="", encoding="utf-8") as fh:
        return tuple((r["type_code"], r["func"], r["block"]) for r in csv.DictReader(fh))


def fc_seed_path(version: str = "v1.2") -> Path:
    """Path of the shipped FC block set for `version`."""
    return DATA_DIR / f"fc_seed_{version}.json"
