"""Engine configuration read from `scoring_config` (key -> JSON value)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .constants import ENGINE_VERSION
from .jsnum import js_number, js_string, js_truthy
from .prototypes import Prototypes, prototypes_from_table_rows

__all__ = [
    "ConfBandCuts",
    "ConfRawParams",
    "EngineConfig",
    "FitBandThresholds",
]


def _num(value: object, default: float) -> float:
    """A config number: 0, missing, null, "" or non-numeric fall back to the default.

    This is JavaScript's `cfg.x || default` followed by numeric use, except that a
    truthy value that is not a number (e.g. "abc") also falls back instead of turning
    every result into NaN.
    """
    if not js_truthy(value):
        return default
    x = js_number(value)
    return default if x != x else x


def _sub(mapping: Mapping[str, object], key: str) -> Mapping[str, object]:
    value = mapping.get(key)
    return value if isinstance(value, Mapping) else {}


@dataclass(frozen=True, slots=True)
class ConfRawParams:
    """Weights of the confidence sigmoid: sigmoid(a*fit_gap + b*share_gap - c*H)."""

    a: float = 0.25
    b: float = 0.35
    c: float = 0.20


@dataclass(frozen=True, slots=True)
class FitBandThresholds:
    """Top fit at or above `high_fit` is 'high_fit', at or above `moderate_fit` 'moderate_fit'."""

    high_fit: float = 10.0
    moderate_fit: float = 5.0


@dataclass(frozen=True, slots=True)
class ConfBandCuts:
    """Stored-confidence cuts: 'High' at or above `high`, 'Moderate' at or above `moderate`."""

    high: float = 0.75
    moderate: float = 0.55


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """The scoring_config values the v1.2.1 engine reads, with the spec's defaults."""

    results_version: str = ENGINE_VERSION
    softmax_temp: float = 1.0
    conf_raw_params: ConfRawParams = field(default_factory=ConfRawParams)
    fit_band_thresholds: FitBandThresholds = field(default_factory=FitBandThresholds)
    fc_expected_min: float = 0.0
    conf_band_cuts: ConfBandCuts = field(default_factory=ConfBandCuts)
    type_prototypes: Prototypes | None = None
    # Why a `type_prototypes` value in the config was not used (None: absent or used).
    type_prototypes_issue: str | None = None

    @classmethod
    def from_mapping(cls, config: Mapping[str, object] | None) -> EngineConfig:
        """Read a `scoring_config` key -> value mapping; unknown keys are ignored."""
        if not isinstance(config, Mapping):
            return cls()
        rv = config.get("results_version")
        results_version = js_string(rv) if js_truthy(rv) else ENGINE_VERSION
        crp = _sub(config, "conf_raw_params")
        fbt = _sub(config, "fit_band_thresholds")
        cbc = _sub(config, "conf_band_cuts")
        protos, issue = _read_prototypes(config.get("type_prototypes"))
        return cls(
            results_version=results_version,
            softmax_temp=_num(config.get("softmax_temp"), 1.0),
            conf_raw_params=ConfRawParams(
                a=_num(crp.get("a"), 0.25),
                b=_num(crp.get("b"), 0.35),
                c=_num(crp.get("c"), 0.20),
            ),
            fit_band_thresholds=FitBandThresholds(
                high_fit=_num(fbt.get("high_fit"), 10.0),
                moderate_fit=_num(fbt.get("moderate_fit"), 5.0),
            ),
            fc_expected_min=_num(config.get("fc_expected_min"), 0.0),
            conf_band_cuts=ConfBandCuts(
                high=_num(cbc.get("high"), 0.75),
                moderate=_num(cbc.get("moderate"), 0.55),
            ),
            type_prototypes=protos,
            type_prototypes_issue=issue,
        )


def _read_prototypes(value: object) -> tuple[Prototypes | None, str | None]:
    if value is None:
        return None, None
    if isinstance(value, Prototypes):
        return value, None
    if isinstance(value, Mapping):
        protos = Prototypes.from_mapping(value)
        if any(protos.blocks.values()):
            return protos, None
        return None, "no_valid_entries"
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        rows = [r for r in value if isinstance(r, Mapping)]
        protos_or_none = prototypes_from_table_rows(rows) if len(rows) == len(value) else None
        if protos_or_none is None:
            return None, "row_count_not_128"
        return protos_or_none, None
    return None, "not_a_table"
