"""The engine's typed error."""

from __future__ import annotations

__all__ = ["UnscorableSession"]


class UnscorableSession(ValueError):
    """The session cannot be scored; `reason` is a machine-readable code, `message` is for people.

    A session with no scorable answer is not an error: the engine returns the spec's
    profile with `EngineResult.no_scorable_answers` set.

    Reason codes:
    - ``non_finite_result``: answers so large that a strength, fit or share overflowed.
    - ``invalid_item``: a batch item that is not a scoring request.
    """

    def __init__(self, reason: str, message: str, session_id: object = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.session_id = session_id

    def to_dict(self) -> dict[str, object]:
        """Return the CLI's error shape: `{"error": "unscorable", "reason", "message"}`."""
        return {"error": "unscorable", "reason": self.reason, "message": self.message}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, UnscorableSession):
            return NotImplemented
        return (self.reason, self.message, self.session_id) == (
            other.reason,
            other.message,
            other.session_id,
        )

    def __hash__(self) -> int:
        return hash((self.reason, self.message))

    def __repr__(self) -> str:
        return f"UnscorableSession(reason={self.reason!r}, message={self.message!r})"

    def __reduce__(self) -> tuple[type[UnscorableSession], tuple[str, str, object]]:
        return (UnscorableSession, (self.reason, self.message, self.session_id))
