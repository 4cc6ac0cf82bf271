"""Type prototypes (Model A blocks per type and function) and their fit weights."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .constants import (
    BLOCK_ALIASES,
    BLOCKS,
    FUNCTIONS,
    MODEL_A,
    TYPES,
    W_BASE,
    W_CREATIVE,
    W_OTHER,
)

__all__ = ["EXPECTED_PROTOTYPE_ROWS", "Prototypes", "prototypes_from_table_rows"]

EXPECTED_PROTOTYPE_ROWS = len(TYPES) * len(FUNCTIONS)  # 128


def _norm_block(block: object) -> str | None:
    if not isinstance(block, str):
        return None
    b = block.strip().lower()
    return BLOCK_ALIASES.get(b, b) or None


def _weight(block: str | None) -> float:
    if block == "base":
        return W_BASE
    if block == "creative":
        return W_CREATIVE
    return W_OTHER  # any other block, and a missing entry


@dataclass(frozen=True, slots=True)
class Prototypes:
    """A prototype table: type code -> function -> block; missing entries weigh 0.2."""

    blocks: Mapping[str, Mapping[str, str]]
    weights: tuple[tuple[float, ...], ...] = field(init=False, repr=False, compare=False)
    base_funcs: tuple[str | None, ...] = field(init=False, repr=False, compare=False)
    creative_funcs: tuple[str | None, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        clean: dict[str, Mapping[str, str]] = {}
        for t in TYPES:
            row = self.blocks.get(t) or {}
            norm = {f: b for f in FUNCTIONS if (b := _norm_block(row.get(f))) is not None}
            clean[t] = MappingProxyType(norm)
        object.__setattr__(self, "blocks", MappingProxyType(clean))
        weights = tuple(tuple(_weight(clean[t].get(f)) for f in FUNCTIONS) for t in TYPES)
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "base_funcs", tuple(_find(clean[t], "base") for t in TYPES))
        object.__setattr__(
            self, "creative_funcs", tuple(_find(clean[t], "creative") for t in TYPES)
        )

    @classmethod
    def builtin(cls) -> Prototypes:
        """Return the built-in Model A table."""
        return _BUILTIN

    @classmethod
    def from_mapping(cls, table: Mapping[str, Mapping[str, object]]) -> Prototypes:
        """Build from `{type: {func: block}}` (or `{type: {block: func}}`); unknowns ignored."""
        rows: dict[str, dict[str, str]] = {}
        for t, row in table.items():
            if isinstance(t, str) and isinstance(row, Mapping):
                pairs = {k: v for k, v in row.items() if isinstance(k, str) and isinstance(v, str)}
                if pairs and all(
                    _norm_block(k) in BLOCKS and v in FUNCTIONS for k, v in pairs.items()
                ):
                    pairs = {v: k for k, v in pairs.items()}  # block -> func orientation
                rows[t] = pairs
        return cls(rows)

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, object]]) -> Prototypes:
        """Build from `type_prototypes` rows `{type_code, func, block}` (later rows win)."""
        table: dict[str, dict[str, str]] = {}
        for r in rows:
            t, f, b = r.get("type_code"), r.get("func"), r.get("block")
            if isinstance(t, str) and isinstance(f, str) and isinstance(b, str):
                table.setdefault(t, {})[f] = b
        return cls(table)

    def to_mapping(self) -> dict[str, dict[str, str]]:
        """Return the table as plain nested dicts."""
        return {t: dict(row) for t, row in self.blocks.items()}


def _find(row: Mapping[str, str], block: str) -> str | None:
    for f in FUNCTIONS:
        if row.get(f) == block:
            return f
    return None


_BUILTIN = Prototypes(MODEL_A)


def prototypes_from_table_rows(rows: Iterable[Mapping[str, object]]) -> Prototypes | None:
    """Apply the pipeline's rule: use the `type_prototypes` table only with exactly 128 rows.

    Returns None (meaning: use the built-in copy) for any other row count.
    """
    materialized = list(rows)
    if len(materialized) != EXPECTED_PROTOTYPE_ROWS:
        return None
    return Prototypes.from_rows(materialized)
