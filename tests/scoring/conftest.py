"""Shared fixtures of the scoring tests: the reference data shipped with the engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scoring import DATA_DIR, EngineConfig, KeyEntry, Scorer, key_from_csv

HERE = Path(__file__).resolve().parent
GOLDENS = HERE / "goldens"
DATA = DATA_DIR  # scoring/data: scoring key, config, type prototypes
# The FC block set is the portal's data (remediation/data), read here as a plain file.
FC_SEED = HERE.parent.parent / "remediation" / "data" / "fc_seed_v1.2.json"


def load_json(path: Path) -> object:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def real_key() -> dict[int, KeyEntry]:
    return key_from_csv((DATA / "scoring_key.csv").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def real_config_map() -> dict[str, object]:
    cfg = load_json(DATA / "scoring_config.json")
    assert isinstance(cfg, dict)
    return cfg


@pytest.fixture(scope="session")
def real_scorer(real_key: dict[int, KeyEntry], real_config_map: dict[str, object]) -> Scorer:
    return Scorer(real_key, EngineConfig.from_mapping(real_config_map))
