"""Stored confidence (scoring.md section 7) and the `profiles` row score_prism upserts."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .config import EngineConfig
from .constants import ENGINE_VERSION
from .engine import entropy_bits, sigmoid
from .jsnum import js_number, to_fixed
from .model import EngineResult

__all__ = [
    "CalibrationModel",
    "StoredConfidence",
    "build_profile_row",
    "calibrate",
    "select_calibration_model",
    "stored_confidence",
]


def _to_float(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float, str)):
        x = js_number(value)
        return x if x - x == 0.0 else None
    return None


def _parse_knots(knots: object) -> tuple[tuple[float, float], ...]:
    """Knots `[{x, y}]` (or `[[x, y]]`) with finite numbers, sorted by x (stable)."""
    out: list[tuple[float, float]] = []
    if isinstance(knots, Sequence) and not isinstance(knots, (str, bytes)):
        for k in knots:
            if isinstance(k, Mapping):
                x, y = _to_float(k.get("x")), _to_float(k.get("y"))
            elif isinstance(k, Sequence) and not isinstance(k, (str, bytes)) and len(k) == 2:
                x, y = _to_float(k[0]), _to_float(k[1])
            else:
                continue
            if x is not None and y is not None:
                out.append((x, y))
    out.sort(key=lambda p: p[0])
    return tuple(out)


def _as_datetime(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    return None


@dataclass(frozen=True, slots=True)
class CalibrationModel:
    """A `calibration_model` row: version, stratum {dim_band, overlay}, knots [{x, y}]."""

    version: str
    stratum: Mapping[str, object]
    knots: object
    trained_at: datetime | str | None = None
    id: int | None = None
    points: tuple[tuple[float, float], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "points", _parse_knots(self.knots))

    @classmethod
    def from_row(cls, row: Mapping[str, object]) -> CalibrationModel:
        """Build from a database row (extra columns such as `method` are ignored)."""
        stratum = row.get("stratum")
        trained = row.get("trained_at")
        rid = row.get("id")
        return cls(
            version=str(row.get("version") or ""),
            stratum=stratum if isinstance(stratum, Mapping) else {},
            knots=row.get("knots"),
            trained_at=trained if isinstance(trained, (datetime, str)) else None,
            id=rid if isinstance(rid, int) and not isinstance(rid, bool) else None,
        )

    def interpolate(self, raw: float) -> float:
        """Piecewise-linear over the knots sorted by x, clamped to the end values and [0, 1]."""
        pts = self.points
        if not pts:
            raise ValueError("calibration model has no usable knots")
        if raw <= pts[0][0]:
            y = pts[0][1]
        elif raw >= pts[-1][0]:
            y = pts[-1][1]
        else:
            i = bisect_right([p[0] for p in pts], raw) - 1  # x_i <= raw < x_(i+1)
            (x0, y0), (x1, y1) = pts[i], pts[i + 1]
            y = y0 + (y1 - y0) * (raw - x0) / (x1 - x0)
        return min(1.0, max(0.0, y))


@dataclass(frozen=True, slots=True)
class StoredConfidence:
    """The three stored fields, plus the unrounded values and which model was used."""

    conf_raw: float
    conf_calibrated: float
    confidence: str
    raw: float
    calibrated: float
    model: CalibrationModel | None = None

    @property
    def method(self) -> str:
        """'model' when a calibration_model row was used, else 'fallback_curve'."""
        return "model" if self.model is not None else "fallback_curve"


def select_calibration_model(
    models: Iterable[CalibrationModel | Mapping[str, object]],
    fit_band: str,
    overlay: str,
    version: str = ENGINE_VERSION,
) -> CalibrationModel | None:
    """The newest model (by trained_at, then id) for version, dim_band and overlay stratum."""
    want_overlay = "plus" if overlay == "+" else "minus"
    best: CalibrationModel | None = None
    best_key: tuple[datetime, int] | None = None
    floor = datetime.min.replace(tzinfo=UTC)
    for m in models:
        model = m if isinstance(m, CalibrationModel) else CalibrationModel.from_row(m)
        if model.version != version:
            continue
        if model.stratum.get("dim_band") != fit_band:
            continue
        if model.stratum.get("overlay") != want_overlay:
            continue
        key = (_as_datetime(model.trained_at) or floor, model.id if model.id is not None else -1)
        if best_key is None or key > best_key:
            best, best_key = model, key
    return best


def calibrate(raw: float, model: CalibrationModel | None) -> float:
    """Interpolate over the model's knots, or use the fallback curve sigmoid(-0.5 + 1.2*raw)."""
    if model is not None and model.points:
        return model.interpolate(raw)
    return min(1.0, max(0.0, sigmoid(-0.5 + 1.2 * raw)))


def stored_confidence(
    result: EngineResult,
    config: EngineConfig | Mapping[str, object] | None = None,
    calibration_models: Iterable[CalibrationModel | Mapping[str, object]] = (),
) -> StoredConfidence:
    """Section 7: raw confidence over the top three, calibrated, banded and rounded."""
    if not isinstance(config, EngineConfig):
        config = EngineConfig.from_mapping(config)
    top = result.top_3_fits
    fit_gap = top[0].fit - top[1].fit
    margin = top[0].share - top[1].share
    h3 = entropy_bits(t.share for t in top)
    p = config.conf_raw_params
    raw = min(1.0, max(0.0, sigmoid(p.a * fit_gap + p.b * margin - p.c * h3)))
    model = select_calibration_model(calibration_models, result.fit_band, result.overlay)
    if model is not None and not model.points:
        model = None  # the newest row has no usable knots: use the fallback curve
    calibrated = calibrate(raw, model)
    cuts = config.conf_band_cuts
    if calibrated >= cuts.high:
        band = "High"
    elif calibrated >= cuts.moderate:
        band = "Moderate"
    else:
        band = "Low"
    return StoredConfidence(
        conf_raw=to_fixed(raw, 4),
        conf_calibrated=to_fixed(calibrated, 4),
        confidence=band,
        raw=raw,
        calibrated=calibrated,
        model=model,
    )


def build_profile_row(
    result: EngineResult,
    stored: StoredConfidence,
    session_id: object,
    now: datetime,
    existing_submitted_at: datetime | None = None,
    had_profile: bool = False,
    existing_created_at: datetime | None = None,
) -> dict[str, object]:
    """The `profiles` row score_prism upserts on session_id (jsonb values as dicts/lists).

    Columns the v1.2.1 engine does not produce (`type_scores`, `blocks`, `user_id`,
    `share_token`, `id`) are left out so an upsert does not overwrite them.
    """
    d = result.to_dict()
    return {
        "session_id": session_id,
        "type_code": d["type_code"],
        "base_func": d["base_func"],
        "creative_func": d["creative_func"],
        "top_types": d["top_types"],
        "top_3_fits": d["top_3_fits"],
        "score_fit_raw": d["score_fit_raw"],
        "score_fit_calibrated": d["score_fit_calibrated"],
        "fit_band": d["fit_band"],
        "top_gap": d["top_gap"],
        "close_call": d["close_call"],
        "strengths": d["strengths"],
        "dimensions": d["dimensions"],
        "dims_highlights": d["dims_highlights"],
        "blocks_norm": d["blocks_norm"],
        "neuro_mean": d["neuro_mean"],
        "neuro_z": d["neuro_z"],
        "state_index": d["state_index"],
        "overlay_neuro": d["overlay_neuro"],
        "overlay_state": d["overlay_state"],
        "overlay": d["overlay"],
        "validity": d["validity"],
        "validity_status": d["validity_status"],
        "confidence": stored.confidence,
        "conf_raw": stored.conf_raw,
        "conf_calibrated": stored.conf_calibrated,
        "conf_band": stored.confidence,
        "fc_answered_ct": d["fc_answered_ct"],
        "fc_coverage_bucket": d["fc_coverage_bucket"],
        "results_version": ENGINE_VERSION,
        "version": ENGINE_VERSION,
        "submitted_at": existing_submitted_at if existing_submitted_at is not None else now,
        "recomputed_at": now if had_profile else None,
        "created_at": existing_created_at if existing_created_at is not None else now,
        "updated_at": now,
    }
