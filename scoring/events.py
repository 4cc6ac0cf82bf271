"""Events the engine returns with its results, for callers to record (never printed)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .jsnum import js_string

__all__ = ["Event", "make_event"]


@dataclass(frozen=True, slots=True)
class Event:
    """A pipeline event such as `fc_fallback_legacy`, with its key/value fields."""

    name: str
    fields: Mapping[str, object]

    def to_log_line(self) -> str:
        """Render as the pipeline's `evt:<name>,key:value,...` log line."""
        parts = [f"evt:{self.name}"]
        parts.extend(f"{k}:{_fmt(v)}" for k, v in self.fields.items())
        return ",".join(parts)

    def to_dict(self) -> dict[str, object]:
        """Return `{"name": ..., **fields}` as a plain dict."""
        return {"name": self.name, **self.fields}


def _fmt(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return js_string(value)


_new = object.__new__
_set = object.__setattr__


def make_event(name: str, session_id: object = None, /, **fields: object) -> Event:
    """Build an Event, putting `session_id` first when one is known."""
    if session_id is not None:
        fields = {"session_id": session_id, **fields}
    ev = _new(Event)  # the frozen dataclass __init__, minus its overhead (hot path)
    _set(ev, "name", name)
    _set(ev, "fields", MappingProxyType(fields))
    return ev
