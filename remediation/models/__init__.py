from remediation.models.backfill import BackfillItem, BackfillRun
from remediation.models.pipeline import (
    AssessmentResponse,
    AssessmentSession,
    CalibrationModel,
    FcBlock,
    FcOption,
    FcResponse,
    FcScore,
    OrphanedSession,
    Profile,
    ScoringConfig,
    ScoringKey,
    TypePrototype,
)
from remediation.models.portal import (
    Alert,
    FinalizeAttempt,
    MetricSnapshot,
    RunbookRecord,
    SessionDiagnosis,
)

__all__ = [
    "Alert",
    "AssessmentResponse",
    "AssessmentSession",
    "BackfillItem",
    "BackfillRun",
    "CalibrationModel",
    "FcBlock",
    "FcOption",
    "FcResponse",
    "FcScore",
    "FinalizeAttempt",
    "MetricSnapshot",
    "OrphanedSession",
    "Profile",
    "RunbookRecord",
    "ScoringConfig",
    "ScoringKey",
    "SessionDiagnosis",
    "TypePrototype",
]
