"""Fixed orders, the engine version and the built-in Model A prototype table."""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

ENGINE_VERSION: Final = "v1.2.1"
"""The results version this engine implements (and always writes)."""

FC_VERSION: Final = "v1.2"
"""The forced-choice set version that `fc_scores` rows are read from and written to."""

# The fixed orders matter: they are the summation orders and the last tie-breaker.
FUNCTIONS: Final[tuple[str, ...]] = ("Ti", "Te", "Fi", "Fe", "Ni", "Ne", "Si", "Se")
TYPES: Final[tuple[str, ...]] = (
    "LIE",
    "ILI",
    "ESE",
    "SEI",
    "LII",
    "ILE",
    "ESI",
    "SEE",
    "LSE",
    "SLI",
    "EIE",
    "IEI",
    "LSI",
    "SLE",
    "EII",
    "IEE",
)

FUNCTION_INDEX: Final = MappingProxyType({f: i for i, f in enumerate(FUNCTIONS)})
TYPE_INDEX: Final = MappingProxyType({t: i for i, t in enumerate(TYPES)})

BLOCKS: Final[tuple[str, ...]] = (
    "base",
    "creative",
    "role",
    "vulnerable",
    "suggestive",
    "mobilizing",
    "ignoring",
    "demonstrative",
)

# Abbreviations used by the spec's table; accepted wherever block names are read.
BLOCK_ALIASES: Final = MappingProxyType(
    {
        "creat": "creative",
        "vuln": "vulnerable",
        "mob": "mobilizing",
        "sugg": "suggestive",
        "ign": "ignoring",
        "demo": "demonstrative",
    }
)

W_BASE: Final = 1.0
W_CREATIVE: Final = 0.7
W_OTHER: Final = 0.2

# Model A (scoring.md section 5), in FUNCTIONS order per type.
_MODEL_A_ROWS: Final[dict[str, tuple[str, ...]]] = {
    "LIE": ("mob", "base", "vuln", "demo", "creat", "sugg", "ign", "role"),
    "ILI": ("sugg", "creat", "role", "ign", "base", "mob", "demo", "vuln"),
    "ESE": ("vuln", "ign", "mob", "base", "sugg", "role", "creat", "demo"),
    "SEI": ("role", "demo", "sugg", "creat", "mob", "vuln", "base", "ign"),
    "LII": ("base", "mob", "ign", "vuln", "role", "creat", "sugg", "demo"),
    "ILE": ("creat", "sugg", "demo", "role", "vuln", "base", "mob", "ign"),
    "ESI": ("ign", "vuln", "base", "mob", "role", "sugg", "demo", "creat"),
    "SEE": ("demo", "role", "creat", "sugg", "vuln", "mob", "ign", "base"),
    "LSE": ("mob", "base", "vuln", "demo", "ign", "sugg", "creat", "role"),
    "SLI": ("sugg", "creat", "role", "ign", "mob", "demo", "base", "vuln"),
    "EIE": ("vuln", "ign", "mob", "base", "creat", "role", "sugg", "demo"),
    "IEI": ("role", "demo", "sugg", "creat", "base", "vuln", "mob", "ign"),
    "LSI": ("base", "mob", "ign", "vuln", "role", "sugg", "demo", "creat"),
    "SLE": ("creat", "sugg", "demo", "role", "vuln", "mob", "ign", "base"),
    "EII": ("demo", "vuln", "base", "mob", "role", "creat", "sugg", "ign"),
    "IEE": ("demo", "role", "creat", "sugg", "vuln", "base", "mob", "ign"),
}

MODEL_A: Final = MappingProxyType(
    {
        t: MappingProxyType(
            {f: BLOCK_ALIASES.get(b, b) for f, b in zip(FUNCTIONS, _MODEL_A_ROWS[t], strict=True)}
        )
        for t in TYPES
    }
)
"""The built-in Model A table: type code -> function -> block name (128 entries)."""
