"""Forced-choice session scoring (scoring.md section 8, the score_fc_session function)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .constants import FC_VERSION
from .events import Event, make_event
from .jsnum import js_number, to_fixed

__all__ = [
    "FcOption",
    "FcResponse",
    "FcSessionScore",
    "fc_options_from_seed",
    "score_fc_session",
]

BASES = ("functions", "types")


@dataclass(frozen=True, slots=True)
class FcOption:
    """An `fc_options` row: id, block, option letter and `weights_json` (key -> number)."""

    id: str
    block_id: str
    option_code: str
    weights: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class FcResponse:
    """An `fc_responses` row: the option picked in one block."""

    block_id: str
    option_id: str


@dataclass(frozen=True, slots=True)
class FcSessionScore:
    """Scores to upsert into `fc_scores`, the blocks answered, and the events."""

    scores: Mapping[str, float]
    blocks_answered: int
    basis: str
    events: tuple[Event, ...]
    version: str = FC_VERSION

    @property
    def fc_kind(self) -> str:
        """The `fc_scores.fc_kind` value ('functions' or 'types')."""
        return self.basis

    @property
    def should_write(self) -> bool:
        """Whether an `fc_scores` row should be upserted (at least one block answered)."""
        return self.blocks_answered > 0

    def scores_json(self) -> dict[str, float]:
        """The `scores_json` value as a plain dict."""
        return dict(self.scores)


def _weight(value: object) -> float | None:
    """A finite number from a weights_json entry; anything else is ignored (None)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    x = js_number(value)
    return x if x - x == 0.0 else None


def score_fc_session(
    responses: Iterable[FcResponse],
    options_by_id: Mapping[str, FcOption] | Iterable[FcOption],
    basis: str = "functions",
    *,
    session_id: object = None,
) -> FcSessionScore:
    """Tally the picked options' weights; basis 'functions' scales to 0..100, 'types' to shares.

    With no responses (or none whose option exists) nothing should be written:
    `blocks_answered` is 0, `should_write` is False and an `fc_no_responses` event is
    returned.
    """
    if basis not in BASES:
        raise ValueError(f"basis must be one of {BASES}, not {basis!r}")
    if not isinstance(options_by_id, Mapping):
        options_by_id = {o.id: o for o in options_by_id}
    events: list[Event] = []
    tally: dict[str, float] = {}
    answered = 0
    seen = 0
    for r in responses:
        seen += 1
        option = options_by_id.get(r.option_id)
        if option is None:
            events.append(
                make_event(
                    "fc_option_not_found", session_id, block_id=r.block_id, option_id=r.option_id
                )
            )
            continue
        answered += 1
        for k, v in option.weights.items():
            w = _weight(v)
            if w is not None:
                tally[k] = tally.get(k, 0) + w
    if answered == 0:
        reason = "no_rows" if seen == 0 else "no_matching_options"
        events.append(make_event("fc_no_responses", session_id, reason=reason))
        return FcSessionScore(MappingProxyType({}), 0, basis, tuple(events))

    if basis == "functions":
        top = max(1e-9, max(tally.values(), default=-float("inf")))
        scores = {k: to_fixed(v / top * 100, 2) for k, v in tally.items()}
    else:
        total = 0.0
        for v in tally.values():
            total += v
        # An all-zero tally would divide 0 by 0; its shares are reported as 0.
        scores = {k: (to_fixed(v / total, 4) if total else 0.0) for k, v in tally.items()}
    events.append(
        make_event("fc_scoring_complete", session_id, basis=basis, blocks_answered=answered)
    )
    return FcSessionScore(MappingProxyType(scores), answered, basis, tuple(events))


def fc_options_from_seed(seed: Mapping[str, object]) -> dict[str, FcOption]:
    """Options by id from the `fc_seed_v1.2.json` shape ({version, blocks: [{id, options}]})."""
    out: dict[str, FcOption] = {}
    blocks = seed.get("blocks")
    if not isinstance(blocks, list):
        return out
    for b in blocks:
        if not isinstance(b, Mapping):
            continue
        options = b.get("options")
        if not isinstance(options, list):
            continue
        for o in options:
            if not isinstance(o, Mapping):
                continue
            weights = o.get("weights", o.get("weights_json"))
            out[str(o.get("id"))] = FcOption(
                id=str(o.get("id")),
                block_id=str(b.get("id")),
                option_code=str(o.get("option_code")),
                weights=MappingProxyType(dict(weights)) if isinstance(weights, Mapping) else {},
            )
    return out
