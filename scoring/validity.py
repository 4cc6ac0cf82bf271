"""The stored profile's validity: the one rule that flags a profile no Likert answer supports.

The v1.2.1 engine (scoring.md section 6) always reports `validity_status` 'valid' and the
placeholder `validity` {attention 0, inconsistency 0, sd_index 0}; the goldens pin that, so
the engine's result keeps it. What is *stored* is a later step, like the stored confidence
of section 7: the portal's write path (remediation.pipeline.profiles.profile_row) stores
`stored_validity(result)` in the profile's `validity_status` and `validity` columns.

The rule: a Likert answer is usable when it parses to a finite number and is not blank.
A session none of whose Likert function items has a usable answer (every one 'NaN',
'Infinity', an emoji, text, null, "" or whitespace, or no Likert answer at all) still gets
the profile the spec computes, from its forced-choice component alone (or, with no FC
component either, the all-zero profile the portal writes only with
WRITE_UNSCORABLE_PROFILES), but that profile is not a valid personality profile:

- `validity_status` 'flagged' (the engine's 'valid' otherwise);
- `validity` keeps the engine's placeholders and adds `flags: ["no_usable_likert"]` and
  `likert_usable: 0`.

Blank answers are scored as 0 (JavaScript `Number("")`, the spec), so they count in
`EngineResult.likert_items`; the engine also counts them (`likert_blank`), which is how
this rule tells them from real answers without changing a single score.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .model import EngineResult

__all__ = ["FLAGGED", "NO_USABLE_LIKERT", "StoredValidity", "stored_validity"]

FLAGGED = "flagged"
NO_USABLE_LIKERT = "no_usable_likert"


@dataclass(frozen=True)
class StoredValidity:
    """What the profile row stores in `validity_status` and `validity`."""

    validity_status: str
    validity: Mapping[str, object]
    flags: tuple[str, ...] = field(default=())

    @property
    def flagged(self) -> bool:
        return bool(self.flags)


def usable_likert_answers(result: EngineResult) -> int:
    """Likert function items with a finite, non-blank answer."""
    return result.likert_items - result.likert_blank


def stored_validity(result: EngineResult) -> StoredValidity:
    """The validity to store for an engine result (see the module docstring)."""
    if usable_likert_answers(result) > 0:
        return StoredValidity(result.validity_status, dict(result.validity))
    flags = (NO_USABLE_LIKERT,)
    return StoredValidity(
        FLAGGED,
        {**result.validity, "flags": list(flags), "likert_usable": 0},
        flags,
    )
