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
    "OrphanedSession",
    "Profile",
    "ScoringConfig",
    "ScoringKey",
    "TypePrototype",
]
