"""Sessions: the one definition of an orphan, a session's pipeline state, why it has no profile.

An orphan is a completed session without a profile: `orphaned_sessions()` (ORM) and
`ORPHAN_SQL` (raw SQL over `assessment_sessions s`) say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from remediation.models import (
    AssessmentResponse,
    AssessmentSession,
    FcResponse,
    FcScore,
    Profile,
)

# The same definition for raw SQL over `assessment_sessions s`.
HAS_PROFILE_SQL = "EXISTS (SELECT 1 FROM profiles p WHERE p.session_id = s.id)"
ORPHAN_SQL = f"s.status = 'completed' AND NOT {HAS_PROFILE_SQL}"


def has_profile_expression() -> Exists:
    """EXISTS (a profile for this session)."""
    return Exists(Profile.objects.filter(session_id=OuterRef("pk")))


def has_fc_responses_expression() -> Exists:
    """EXISTS (an fc_responses row for this session)."""
    return Exists(FcResponse.objects.filter(session_id=OuterRef("pk")))


def sessions_with_flags() -> QuerySet[AssessmentSession]:
    """All sessions, annotated with has_profile."""
    return AssessmentSession.objects.annotate(has_profile=has_profile_expression())


def orphaned_sessions() -> QuerySet[AssessmentSession]:
    """Completed sessions without a profile: the incident's orphans."""
    return AssessmentSession.objects.filter(status=AssessmentSession.STATUS_COMPLETED).filter(
        ~has_profile_expression()
    )


def newest_orphan_id() -> str | None:
    """The orphan completed last (the runbook's test session), or None."""
    pk = orphaned_sessions().order_by("-completed_at").values_list("pk", flat=True).first()
    return str(pk) if pk else None


@dataclass(frozen=True)
class PipelineState:
    """A session's pipeline state at a glance."""

    answers: int
    answers_only_numeric: int
    answers_disagreeing: int
    fc_responses: int
    fc_scores: list[dict[str, Any]]
    profile: Profile | None


def session_pipeline_state(session_id: Any) -> PipelineState:
    """Counts and rows that tell where a session stands in the pipeline."""
    agg = AssessmentResponse.objects.filter(session_id=session_id).aggregate(
        answers=Count("id"),
        only_numeric=Count("id", filter=Q(answer_value__isnull=True, answer_numeric__isnull=False)),
    )
    disagreeing = AssessmentResponse.objects.raw(
        "SELECT id FROM assessment_responses WHERE session_id = %s AND answer_value IS NOT NULL"
        " AND answer_numeric IS NOT NULL AND btrim(answer_value) <> answer_numeric::text",
        [str(session_id)],
    )
    fc_scores: list[dict[str, Any]] = [
        dict(row)
        for row in FcScore.objects.filter(session_id=session_id).values(
            "version", "fc_kind", "blocks_answered", "scores_json", "created_at"
        )
    ]
    return PipelineState(
        answers=agg["answers"],
        answers_only_numeric=agg["only_numeric"],
        answers_disagreeing=len(list(disagreeing)),
        fc_responses=FcResponse.objects.filter(session_id=session_id).count(),
        fc_scores=fc_scores,
        profile=Profile.objects.filter(session_id=session_id).first(),
    )


@dataclass(frozen=True)
class Reason:
    """The latest known reason a session has no profile."""

    source: str  # attempt or diagnosis
    category: str
    sqlstate: str
    detail: str
    at: Any

    @property
    def short(self) -> str:
        code = f" [{self.sqlstate}]" if self.sqlstate else ""
        return f"{self.category}{code}" + (f": {self.detail}" if self.detail else "")


def latest_reasons(session_ids: list[Any]) -> dict[str, Reason]:
    """For each session, the newer of its latest failed attempt and its diagnosis."""
    from remediation.models import FinalizeAttempt, SessionDiagnosis

    if not session_ids:
        return {}
    out: dict[str, Reason] = {}
    attempts = (
        FinalizeAttempt.objects.filter(session_id__in=session_ids)
        .order_by("session_id", "-started_at")
        .distinct("session_id")
    )
    for a in attempts:
        detail = a.constraint_name or ""
        out[str(a.session_id)] = Reason(
            "attempt", a.reason or a.outcome, a.sqlstate, detail, a.started_at
        )
    for d in SessionDiagnosis.objects.filter(session_id__in=session_ids):
        key = str(d.session_id)
        current = out.get(key)
        if current is None or d.checked_at > current.at:
            detail = d.constraint_name + (f" = {d.value!r}" if d.value else "")
            out[key] = Reason("diagnosis", d.category, d.sqlstate, detail, d.checked_at)
    return out


def stored_diagnoses(session_ids: list[Any]) -> dict[str, Any]:
    """The latest stored diagnosis of each session (SessionDiagnosis rows), by session id."""
    from remediation.models import SessionDiagnosis

    return {
        str(d.session_id): d for d in SessionDiagnosis.objects.filter(session_id__in=session_ids)
    }


def unknown_session_ids(session_ids: list[str]) -> list[str]:
    """The ids (canonical UUID text) with no row in the pipeline's assessment_sessions, in
    the order given. One indexed read, whatever the list's length."""
    from django.db import connections

    from remediation.pipeline.sql import uuid_array

    if not session_ids:
        return []
    with connections["pipeline"].cursor() as cur:
        cur.execute(
            "SELECT w.id::text FROM unnest(%s::uuid[]) WITH ORDINALITY AS w(id, n)"
            " WHERE NOT EXISTS (SELECT 1 FROM assessment_sessions s WHERE s.id = w.id)"
            " ORDER BY w.n",
            [uuid_array(session_ids)],
        )
        return [row[0] for row in cur.fetchall()]
