"""A string wrapper that never shows its value by accident."""

from __future__ import annotations


class Secret:
    """Holds a secret; str(), repr() and f-strings show a mask, `.reveal()` the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None) -> None:
        self._value = value or ""

    def reveal(self) -> str:
        """The secret itself: only for the one place that must send it."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        # Never pickled into a task argument or a cache with its value.
        raise TypeError("Secret values cannot be pickled")
