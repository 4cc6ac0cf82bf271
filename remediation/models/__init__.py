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
from remediation.models.portal import FinalizeAttempt, RunbookRecord, SessionDiagnosis

__all__ = [
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
    "OrphanedSession",
    "Profile",
    "RunbookRecord",
    "ScoringConfig",
    "ScoringKey",
    "SessionDiagnosis",
    "TypePrototype",
]
