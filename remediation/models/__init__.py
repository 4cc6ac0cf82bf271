from remediation.models.portal import FinalizeAttempt, SessionDiagnosis
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

__all__ = [
    "AssessmentResponse",
    "AssessmentSession",
    "CalibrationModel",
    "FcBlock",
    "FcOption",
    "FcResponse",
    "FcScore",
    "FinalizeAttempt",
    "SessionDiagnosis",
    "OrphanedSession",
    "Profile",
    "ScoringConfig",
    "ScoringKey",
    "TypePrototype",
]
