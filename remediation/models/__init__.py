"""The models: `pipeline` (unmanaged, over the Supabase tables), `portal`, `backfill` and
`notifications` (the portal's own state)."""

from remediation.models.backfill import BackfillItem, BackfillRun
from remediation.models.canary import AutoHeal, CanaryResult
from remediation.models.notifications import ResultsNotification, SuppressedAddress
from remediation.models.pipeline import (
    AssessmentResponse,
    AssessmentSession,
    CalibrationModel,
    FcBlock,
    FcOption,
    FcResponse,
    FcScore,
    OrphanedSession,
    OrphanLedgerRow,
    Profile,
    ScoringConfig,
    ScoringKey,
    TypePrototype,
)
from remediation.models.portal import (
    Alert,
    AuditEvent,
    FcChange,
    FinalizeAttempt,
    MetricSnapshot,
    RunbookRecord,
    SessionDiagnosis,
)

__all__ = [
    "Alert",
    "AssessmentResponse",
    "AssessmentSession",
    "AuditEvent",
    "AutoHeal",
    "BackfillItem",
    "BackfillRun",
    "CalibrationModel",
    "CanaryResult",
    "FcBlock",
    "FcChange",
    "FcOption",
    "FcResponse",
    "FcScore",
    "FinalizeAttempt",
    "MetricSnapshot",
    "OrphanLedgerRow",
    "OrphanedSession",
    "Profile",
    "ResultsNotification",
    "RunbookRecord",
    "ScoringConfig",
    "ScoringKey",
    "SessionDiagnosis",
    "SuppressedAddress",
    "TypePrototype",
]
