"""Typed, frozen inputs and outputs of the engine."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral
from types import MappingProxyType
from typing import Any

from .constants import ENGINE_VERSION, FUNCTIONS, TYPES
from .events import Event
from .jsnum import js_truthy

__all__ = [
    "EngineResult",
    "KeyEntry",
    "RankedType",
    "Response",
    "ScoreRequest",
    "key_from_csv",
    "key_from_mapping",
]


@dataclass(frozen=True, slots=True)
class Response:
    """One answer: `answer_value` is raw (text from the database, or any JSON value)."""

    question_id: int
    answer_value: object


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """One `assessment_scoring_key` row, as far as the engine reads it."""

    question_id: int
    tag: str | None
    scale_type: str
    reverse_scored: bool = False
    fc_map: Mapping[str, object] | None = None

    def __post_init__(self) -> None:
        # Whatever a row carried, the engine sees clean types: a non-text tag is no tag,
        # reverse_scored follows JavaScript truthiness, and an fc_map given as JSON text
        # (the CSV export) is parsed; anything but an object is no fc_map.
        if not isinstance(self.tag, str):
            object.__setattr__(self, "tag", None)
        if not isinstance(self.scale_type, str):
            object.__setattr__(self, "scale_type", "")
        if type(self.reverse_scored) is not bool:
            object.__setattr__(self, "reverse_scored", js_truthy(self.reverse_scored))
        fc_map: object = self.fc_map
        if isinstance(fc_map, str):
            try:
                fc_map = json.loads(fc_map) if fc_map.strip() else None
            except ValueError:
                fc_map = None
        if not isinstance(fc_map, Mapping):
            fc_map = None
        object.__setattr__(self, "fc_map", fc_map)

    @classmethod
    def from_mapping(cls, question_id: int, row: Mapping[str, object]) -> KeyEntry:
        """Build from a JSON/DB row; `reverse_scored` uses JavaScript truthiness."""
        return cls(
            question_id=question_id,
            tag=row.get("tag"),  # type: ignore[arg-type]
            scale_type=row.get("scale_type"),  # type: ignore[arg-type]
            reverse_scored=row.get("reverse_scored"),  # type: ignore[arg-type]
            fc_map=row.get("fc_map"),  # type: ignore[arg-type]
        )


# String(n) of a JavaScript number that is an integer.
_QID_TEXT = re.compile(r"0|-?[1-9][0-9]*")


def _canonical_qid(value: object) -> int | None:
    """The key row a question id finds: like a JavaScript object key lookup, or None.

    Integral floats and canonical integer strings ("17", not "017") match as in
    JavaScript. Bools count as 0/1 here, as Python ints (a JSON `true` question id is
    dropped earlier, by `parse_input`).
    """
    if isinstance(value, int):
        return int(value)
    if isinstance(value, Integral):  # numpy integers
        return int(value)
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str) and _QID_TEXT.fullmatch(value):
        return int(value)
    return None


def all_int_qids(qids: list[object]) -> bool:
    """True when every question id is a plain int (bools count as their int value).

    `sum` is the cheapest full type check: its C fast path accepts only ints and bools,
    a float makes the total a float, anything else raises TypeError.
    """
    try:
        return type(sum(qids)) is int  # type: ignore[arg-type]
    except TypeError:
        return False


def key_from_mapping(key: Mapping[Any, object] | Iterable[object]) -> dict[int, KeyEntry]:
    """Build a scoring key from `{"17": {...}}` (golden shape) or rows with `question_id`."""
    out: dict[int, KeyEntry] = {}
    if isinstance(key, Mapping):
        for qid, row in key.items():
            if isinstance(row, KeyEntry):
                out[row.question_id] = row
                continue
            q = _canonical_qid(qid)
            if q is not None and isinstance(row, Mapping):
                out[q] = KeyEntry.from_mapping(q, row)
        return out
    for row in key:
        if isinstance(row, KeyEntry):
            out[row.question_id] = row
        elif isinstance(row, Mapping):
            q = _canonical_qid(row.get("question_id"))
            if q is not None:
                out[q] = KeyEntry.from_mapping(q, row)
    return out


def key_from_csv(text: str) -> dict[int, KeyEntry]:
    """Parse the `assessment_scoring_key` CSV export (fc_map as JSON text)."""
    rows: list[dict[str, object]] = []
    for r in csv.DictReader(io.StringIO(text)):
        row: dict[str, object] = dict(r)
        row["reverse_scored"] = str(r.get("reverse_scored", "")).strip().lower() in (
            "true",
            "t",
            "1",
        )
        row["tag"] = r.get("tag") or None
        rows.append(row)
    return key_from_mapping(rows)


@dataclass(frozen=True, slots=True)
class AnswerColumns:
    """A session's answers as two parallel columns: the cheapest input for large batches.

    `question_ids[i]` was answered `answer_values[i]`; a later duplicate of a question wins,
    as with a list of Response. Scores exactly like the equivalent list of Response.
    """

    question_ids: Sequence[int]
    answer_values: Sequence[object]

    def __post_init__(self) -> None:
        if len(self.question_ids) != len(self.answer_values):
            raise ValueError("question_ids and answer_values must have the same length")

    def __len__(self) -> int:
        return len(self.question_ids)

    def __iter__(self) -> Iterator[Response]:
        return (Response(q, v) for q, v in zip(self.question_ids, self.answer_values, strict=True))


@dataclass(frozen=True, slots=True)
class ScoreRequest:
    """One item of a batch: a session's responses and its optional FC function scores."""

    responses: Sequence[Response] | AnswerColumns
    fc_function_scores: object = None
    session_id: object = None


@dataclass(frozen=True, slots=True)
class RankedType:
    """A ranked type with its rounded fit and unrounded share."""

    code: str
    fit: float
    share: float


_ZERO_FUNCS: Mapping[str, float] = MappingProxyType({f: 0 for f in FUNCTIONS})
_DIMS_HIGHLIGHTS: Mapping[str, tuple[str, ...]] = MappingProxyType({"coherent": (), "unique": ()})
_BLOCKS_NORM: Mapping[str, float] = MappingProxyType(
    {"Core": 0, "Critic": 0, "Hidden": 0, "Instinct": 0}
)
_VALIDITY: Mapping[str, float] = MappingProxyType(
    {"attention": 0, "inconsistency": 0, "sd_index": 0}
)

# The constant placeholder fields of every v1.2.1 result.
PLACEHOLDERS: Mapping[str, object] = MappingProxyType(
    {
        "dimensions": _ZERO_FUNCS,
        "dims_highlights": _DIMS_HIGHLIGHTS,
        "blocks_norm": _BLOCKS_NORM,
        "neuro_mean": 0,
        "neuro_z": 0,
        "overlay_neuro": "none",
        "overlay_state": "none",
        "state_index": 0,
        "overlay": "0",
        "validity_status": "valid",
        "validity": _VALIDITY,
        "version": ENGINE_VERSION,
        "results_version": ENGINE_VERSION,
    }
)


@dataclass(frozen=True, kw_only=True)
class EngineResult:
    """The engine's output for one session (scoring.md sections 1-6) plus its events."""

    # No __slots__: the engine builds instances from a complete field dict (see
    # `_from_fields`), which is several times cheaper than the generated frozen __init__.

    type_code: str
    base_func: str | None
    creative_func: str | None
    top_types: tuple[RankedType, ...]
    top_3_fits: tuple[RankedType, ...]
    score_fit_raw: float
    score_fit_calibrated: float
    fit_band: str
    top_gap: float
    close_call: bool
    strengths: Mapping[str, float]
    confidence: str
    conf_raw: float
    conf_calibrated: float
    fc_answered_ct: int
    fc_coverage_bucket: str
    # Constant placeholders of v1.2.1.
    dimensions: Mapping[str, float] = field(default_factory=lambda: _ZERO_FUNCS)
    dims_highlights: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: _DIMS_HIGHLIGHTS)
    blocks_norm: Mapping[str, float] = field(default_factory=lambda: _BLOCKS_NORM)
    neuro_mean: float = 0
    neuro_z: float = 0
    overlay_neuro: str = "none"
    overlay_state: str = "none"
    state_index: float = 0
    overlay: str = "0"
    validity_status: str = "valid"
    validity: Mapping[str, float] = field(default_factory=lambda: _VALIDITY)
    version: str = ENGINE_VERSION
    results_version: str = ENGINE_VERSION
    # Not part of the golden output.
    type_fits: tuple[float, ...] = field(default=(), repr=False)
    type_shares: tuple[float, ...] = field(default=(), repr=False)
    share_gap: float = 0.0
    fit_gap: float = 0.0
    fc_source: str = "none"  # 'scores' | 'derived' | 'none' (the legacy fallback)
    likert_items: int = 0
    # Of those, the items whose answer was "" or whitespace (Number() gives 0, so the spec
    # scores them as 0). `likert_items - likert_blank` is the number of usable Likert answers:
    # scoring.validity flags a profile that has none.
    likert_blank: int = 0
    # True when no answer was scorable and there was no FC component: the profile is the
    # spec's all-zero one (equal shares, type order). The engine returns it as the original
    # engine did; whether to store it is the caller's decision.
    no_scorable_answers: bool = False
    events: tuple[Event, ...] = ()

    @classmethod
    def _from_fields(cls, values: dict[str, object]) -> EngineResult:
        """Build from a dict holding every field (internal fast path, no validation)."""
        obj = object.__new__(cls)
        object.__setattr__(obj, "__dict__", values)
        return obj

    def to_dict(self) -> dict[str, object]:
        """Return the golden output shape (plain dicts and lists, in the goldens' key order)."""
        return {
            "type_code": self.type_code,
            "base_func": self.base_func,
            "creative_func": self.creative_func,
            "top_types": [{"code": t.code, "share": t.share} for t in self.top_types],
            "top_3_fits": [
                {"code": t.code, "fit": t.fit, "share": t.share} for t in self.top_3_fits
            ],
            "score_fit_raw": self.score_fit_raw,
            "score_fit_calibrated": self.score_fit_calibrated,
            "fit_band": self.fit_band,
            "top_gap": self.top_gap,
            "close_call": self.close_call,
            "strengths": dict(self.strengths),
            "dimensions": dict(self.dimensions),
            "dims_highlights": {k: list(v) for k, v in self.dims_highlights.items()},
            "blocks_norm": dict(self.blocks_norm),
            "neuro_mean": self.neuro_mean,
            "neuro_z": self.neuro_z,
            "overlay_neuro": self.overlay_neuro,
            "overlay_state": self.overlay_state,
            "state_index": self.state_index,
            "overlay": self.overlay,
            "validity_status": self.validity_status,
            "validity": dict(self.validity),
            "confidence": self.confidence,
            "conf_raw": self.conf_raw,
            "conf_calibrated": self.conf_calibrated,
            "fc_answered_ct": self.fc_answered_ct,
            "fc_coverage_bucket": self.fc_coverage_bucket,
            "version": self.version,
            "results_version": self.results_version,
        }

    @property
    def fits(self) -> dict[str, float]:
        """Rounded fit of every type, in type order."""
        return dict(zip(TYPES, self.type_fits, strict=True))

    @property
    def shares(self) -> dict[str, float]:
        """Softmax share of every type, in type order."""
        return dict(zip(TYPES, self.type_shares, strict=True))
