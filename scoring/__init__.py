"""PRISM scoring engine, results version v1.2.1: a pure library (no Django).

Typical use::

    scorer = Scorer(key_entries, EngineConfig.from_mapping(config_rows))
    result = scorer.score(responses, fc_function_scores)        # EngineResult
    stored = stored_confidence(result, scorer.config, models)   # section 7
    row = build_profile_row(result, stored, session_id, now)    # `profiles` columns
    validity = stored_validity(result)  # the stored validity (flags FC-only profiles)

The reference data the engine was built for (the seeded scoring key, scoring config and
type prototypes) ships with the package in `DATA_DIR` (scoring/data).
"""

from __future__ import annotations

from pathlib import Path

from .calibration import (
    CalibrationModel,
    StoredConfidence,
    build_profile_row,
    calibrate,
    select_calibration_model,
    stored_confidence,
)
from .config import ConfBandCuts, ConfRawParams, EngineConfig, FitBandThresholds
from .constants import ENGINE_VERSION, FC_VERSION, FUNCTIONS, MODEL_A, TYPES
from .engine import Scorer, parse_answer, score_session
from .errors import UnscorableSession
from .events import Event
from .fc import (
    FcOption,
    FcResponse,
    FcSessionScore,
    fc_options_from_seed,
    score_fc_session,
)
from .inputs import ScoringInput, parse_input
from .jsnum import js_number, js_string, js_truthy, to_fixed
from .model import (
    AnswerColumns,
    EngineResult,
    KeyEntry,
    RankedType,
    Response,
    ScoreRequest,
    key_from_csv,
    key_from_mapping,
)
from .prototypes import Prototypes, prototypes_from_table_rows
from .validity import StoredValidity, stored_validity

__all__ = [
    "DATA_DIR",
    "ENGINE_VERSION",
    "FC_VERSION",
    "FUNCTIONS",
    "MODEL_A",
    "TYPES",
    "AnswerColumns",
    "CalibrationModel",
    "ConfBandCuts",
    "ConfRawParams",
    "EngineConfig",
    "EngineResult",
    "Event",
    "FcOption",
    "FcResponse",
    "FcSessionScore",
    "FitBandThresholds",
    "KeyEntry",
    "Prototypes",
    "RankedType",
    "Response",
    "ScoreRequest",
    "Scorer",
    "ScoringInput",
    "StoredConfidence",
    "StoredValidity",
    "UnscorableSession",
    "build_profile_row",
    "calibrate",
    "fc_options_from_seed",
    "js_number",
    "js_string",
    "js_truthy",
    "key_from_csv",
    "key_from_mapping",
    "parse_answer",
    "parse_input",
    "prototypes_from_table_rows",
    "score_fc_session",
    "score_input",
    "score_session",
    "select_calibration_model",
    "stored_confidence",
    "stored_validity",
    "to_fixed",
]


# scoring_key.csv, scoring_config.json and type_prototypes.csv (package data).
DATA_DIR = Path(__file__).resolve().parent / "data"


def score_input(doc: object) -> EngineResult:
    """Score a golden-shaped input document (`{sessionId, responses, scoringKey, config, ...}`)."""
    inp = parse_input(doc)
    return Scorer(inp.key, inp.config).score(
        inp.responses, inp.fc_function_scores, session_id=inp.session_id
    )
