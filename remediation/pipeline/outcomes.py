"""What happened to a session: the outcome of a write (or a dry run), and its results link."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from remediation.pipeline.errors import DbErrorInfo
from scoring import Event


@dataclass
class WriteResult:
    """What happened to one session (committed or, for a diagnosis, rolled back)."""

    session_id: str
    outcome: str  # created, rescored, existing
    profile_id: str | None
    share_token: str
    results_url: str
    type_code: str = ""
    results_version: str = ""
    events: list[Event] = field(default_factory=list)


def results_url(session_id: str, share_token: str) -> str:
    """<RESULTS_BASE_URL>/results/<session_id>?t=<share_token>, as finalizeAssessment builds it."""
    return f"{settings.RESULTS_BASE_URL}/results/{session_id}?t={share_token}"


@dataclass
class SessionOutcome:
    """What happened to one session of a batch (committed, or rolled back for a dry run)."""

    session_id: str
    outcome: str  # created, rescored, existing, failed, skipped (dry run), busy
    reason: str = ""
    explanation: str = ""
    error: DbErrorInfo | None = None
    profile_id: str | None = None
    share_token: str = ""
    results_url: str = ""
    type_code: str = ""
    results_version: str = ""
    events: list[Event] = field(default_factory=list)
    pre_image: dict[str, Any] | None = None
    post_fingerprint: dict[str, Any] | None = None
    notes: dict[str, Any] | None = None
    # Set when the outcome is in the run ledger (remediation/jobs/ledger.py): its entry's
    # seq, and the batch time the entry carries.
    ledger_seq: int | None = None
    recorded_at: Any = None

    def refuse(self, reason: str, explanation: str) -> SessionOutcome:
        self.outcome, self.reason, self.explanation = "failed", reason, explanation
        return self
