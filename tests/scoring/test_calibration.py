"""Stored confidence (section 7) and the profile row."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from scoring import (
    ENGINE_VERSION,
    CalibrationModel,
    EngineConfig,
    EngineResult,
    StoredConfidence,
    build_profile_row,
    calibrate,
    score_input,
    select_calibration_model,
    stored_confidence,
)

from .conftest import GOLDENS, load_json


@pytest.fixture(scope="module")
def g1() -> EngineResult:
    return score_input(load_json(GOLDENS / "g1.input.json"))


def model(
    band: str = "moderate_fit",
    overlay: str = "minus",
    knots: object = None,
    trained_at: object = "2025-09-01T00:00:00Z",
    version: str = ENGINE_VERSION,
    id: int | None = None,
) -> CalibrationModel:
    if knots is None:
        knots = [{"x": 0.0, "y": 0.1}, {"x": 0.5, "y": 0.6}, {"x": 1.0, "y": 0.9}]
    return CalibrationModel(version, {"dim_band": band, "overlay": overlay}, knots, trained_at, id)  # type: ignore[arg-type]


def test_g1_worked_example_without_a_model(g1: EngineResult) -> None:
    s = stored_confidence(g1, EngineConfig(), [])
    assert (s.conf_raw, s.conf_calibrated, s.confidence) == (0.4563, 0.5119, "Low")
    assert s.model is None and s.method == "fallback_curve"
    # raw is over the top three shares only (the engine's 0.3952 used all sixteen)
    top = g1.top_3_fits
    h3 = -sum(t.share * math.log2(t.share) for t in top)
    x = 0.25 * (top[0].fit - top[1].fit) + 0.35 * (top[0].share - top[1].share) - 0.2 * h3
    assert s.raw == pytest.approx(1 / (1 + math.exp(-x)), abs=1e-15)
    assert s.calibrated == pytest.approx(1 / (1 + math.exp(0.5 - 1.2 * s.raw)), abs=1e-15)


def test_interpolation_with_a_matching_model(g1: EngineResult) -> None:
    assert g1.fit_band == "moderate_fit" and g1.overlay == "0"
    s = stored_confidence(g1, None, [model()])
    # raw 0.45628... lies between x=0 (0.1) and x=0.5 (0.6): y = 0.1 + raw
    assert s.calibrated == pytest.approx(0.1 + s.raw, abs=1e-15)
    assert s.conf_calibrated == 0.5563 and s.confidence == "Moderate"
    assert s.model is not None and s.method == "model"


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        (-1.0, 0.2),
        (0.0, 0.2),
        (0.1, 0.2),
        (0.25, 0.35),
        (0.5, 0.6),
        (0.75, 0.7),
        (1.0, 0.8),
        (2.0, 0.8),
    ],
)
def test_interpolation_sorts_knots_and_clamps_to_end_values(raw: float, want: float) -> None:
    # unsorted knots, as [x, y] pairs and {x, y} objects
    m = model(knots=[[1.0, 0.8], {"x": 0.5, "y": 0.6}, [0.1, 0.2], {"x": "bad", "y": 1}])
    assert calibrate(raw, m) == pytest.approx(want, abs=1e-12)


def test_interpolation_clamps_to_unit_interval() -> None:
    m = model(knots=[{"x": 0, "y": -0.5}, {"x": 1, "y": 1.5}])
    assert calibrate(0.0, m) == 0.0
    assert calibrate(1.0, m) == 1.0
    assert calibrate(0.5, m) == 0.5


def test_fallback_curve_values() -> None:
    assert calibrate(0.0, None) == pytest.approx(1 / (1 + math.exp(0.5)))
    assert calibrate(1.0, None) == pytest.approx(1 / (1 + math.exp(-0.7)))


def test_model_selection_stratum_version_and_newest() -> None:
    older = model(trained_at="2025-08-01T00:00:00Z", knots=[[0, 0.1], [1, 0.1]])
    newer = model(trained_at=datetime(2025, 9, 10, tzinfo=UTC), knots=[[0, 0.2], [1, 0.2]])
    wrong_band = model(band="low_fit", trained_at="2025-09-15T00:00:00Z")
    wrong_overlay = model(overlay="plus", trained_at="2025-09-15T00:00:00Z")
    wrong_version = model(version="v1.2.0", trained_at="2025-09-15T00:00:00Z")
    pool = [older, wrong_band, newer, wrong_overlay, wrong_version]
    assert select_calibration_model(pool, "moderate_fit", "0") is newer
    assert select_calibration_model(pool, "moderate_fit", "+") is wrong_overlay
    assert select_calibration_model(pool, "high_fit", "0") is None
    # same trained_at: the higher id wins
    a = model(id=1, trained_at="2025-09-01T00:00:00Z")
    b = model(id=2, trained_at="2025-09-01T00:00:00+00:00")
    assert select_calibration_model([b, a], "moderate_fit", "0") is b


def test_model_rows_as_dicts_and_newest_without_knots(g1: EngineResult) -> None:
    rows = [
        {
            "id": 1,
            "version": "v1.2.1",
            "stratum": {"dim_band": "moderate_fit", "overlay": "minus"},
            "knots": [{"x": 0, "y": 1}, {"x": 1, "y": 1}],
            "trained_at": "2025-09-01T00:00:00Z",
        },
    ]
    assert stored_confidence(g1, None, rows).conf_calibrated == 1.0
    rows.append({**rows[0], "id": 2, "knots": [], "trained_at": "2025-09-02T00:00:00Z"})
    s = stored_confidence(g1, None, rows)
    assert s.conf_calibrated == 0.5119 and s.model is None  # newest row unusable: fallback


def test_band_uses_conf_band_cuts_with_defaults(g1: EngineResult) -> None:
    assert (
        stored_confidence(g1, {"conf_band_cuts": {"high": 0.5, "moderate": 0.3}}).confidence
        == "High"
    )
    assert (
        stored_confidence(g1, {"conf_band_cuts": {"high": 0.9, "moderate": 0.5}}).confidence
        == "Moderate"
    )
    assert stored_confidence(g1, {"conf_band_cuts": {"high": 0, "moderate": 0}}).confidence == "Low"


def test_profile_row_new_and_existing(g1: EngineResult) -> None:
    stored = StoredConfidence(0.4563, 0.5119, "Low", 0.45, 0.51)
    now = datetime(2025, 9, 17, 12, 0, tzinfo=UTC)
    row = build_profile_row(g1, stored, "sess-1", now)
    assert row["session_id"] == "sess-1"
    assert (row["conf_raw"], row["conf_calibrated"], row["confidence"], row["conf_band"]) == (
        0.4563,
        0.5119,
        "Low",
        "Low",
    )
    assert row["results_version"] == row["version"] == "v1.2.1"
    assert row["submitted_at"] == now and row["recomputed_at"] is None
    assert row["created_at"] == row["updated_at"] == now
    assert row["top_types"] == g1.to_dict()["top_types"]
    assert row["strengths"] == dict(g1.strengths) and isinstance(row["strengths"], dict)
    assert row["dims_highlights"] == {"coherent": [], "unique": []}
    assert row["fc_coverage_bucket"] == "full" and row["overlay_neuro"] == "none"
    assert "type_scores" not in row and "blocks" not in row
    earlier = datetime(2025, 9, 1, tzinfo=UTC)
    row2 = build_profile_row(
        g1,
        stored,
        "sess-1",
        now,
        existing_submitted_at=earlier,
        had_profile=True,
        existing_created_at=earlier,
    )
    assert row2["submitted_at"] == earlier and row2["recomputed_at"] == now
    assert row2["created_at"] == earlier and row2["updated_at"] == now
