"""A fix that refuses to run: nothing was changed, and the reason is data, not a traceback.

A migration raises FixRefused (e.g. Fix D's rollback when profiles written since would
violate the stored constraints); the executor translates a lock timeout (55P03) into one.
Either way the migration's transaction is rolled back, so the database and the recorded
fixes are exactly as before. services/fixes.py catches it, the runbook page and
`manage.py fix` show it and record it (RunbookRecord + AuditEvent outcome "refused").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Violation:
    """Rows that block a fix: the constraint, its definition, how many, the first few."""

    constraint: str
    definition: str
    total: int
    # (profile id, session id) of the first rows, at most ROW_CAP.
    rows: list[tuple[str, str | None]] = field(default_factory=list)


ROW_CAP = 20


class FixRefused(Exception):
    """Fix `name` refused; `message` says why; `violations` name the offending rows."""

    def __init__(
        self,
        name: str,
        message: str,
        *,
        reason: str = "refused",
        violations: list[Violation] | None = None,
    ) -> None:
        super().__init__(message)
        self.name = name
        self.message = message
        self.reason = reason
        self.violations = list(violations or [])

    @property
    def total(self) -> int:
        return sum(v.total for v in self.violations)

    def as_dict(self) -> dict[str, Any]:
        """JSON for the runbook record and the audit detail."""
        return {
            "fix": self.name,
            "reason": self.reason,
            "message": self.message,
            "total": self.total,
            "violations": [
                {**asdict(v), "rows": [list(r) for r in v.rows]} for v in self.violations
            ],
        }
