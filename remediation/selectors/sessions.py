"""Sessions: the one definition of an orphan, a session's pipeline state, why it has no profile.

An orphan is a completed session without a profile: `orphaned_sessions()` (ORM) and
`ORPHAN_SQL` (raw SQL over `assessment_sessions s`) say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from remediation import display
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


# Reason codes (attempt outcomes and reasons, diagnosis categories) in words; the page shows
# the code beside them.
REASON_WORDS = {
    "rls": "row-level security refused the write",
    "grant": "a grant is missing",
    "check": "a CHECK constraint refused a value",
    "trigger": "a trigger failed",
    "schema": "a column or table is missing",
    "busy": "busy (a lock or the statement timeout)",
    "other": "the database refused the write",
    "would_succeed": "nothing blocks the write now",
    "no_answers": "no answers to score",
    "unscorable": "nothing to score",
    "maintenance": "the pipeline is in maintenance",
    "ok_without_profile": "the edge function said ok but wrote no profile",
    "unknown": "unknown (timed out, not settled)",
    "failed": "failed",
    "created": "profile created",
    "rescored": "profile re-scored",
    "existing": "already had a profile",
    "has_profile": "has a profile",
}
# What an attempt or a diagnosis said when it wrote or found a profile: on a session without a
# profile now (an orphan) it is no longer true, whatever its time.
PROFILE_FOUND = frozenset({"created", "rescored", "existing", "has_profile"})
# The reason filter's choice for orphans with no reason that holds now.
NOT_DIAGNOSED = "not_diagnosed"


@dataclass(frozen=True)
class Reason:
    """The latest known reason a session has no profile, and whether it may no longer hold."""

    source: str  # attempt or diagnosis
    category: str
    sqlstate: str
    detail: str
    at: Any
    # A fix or gate changed after `at` (remediation/selectors/changes.py): the reason may not
    # hold any more; set by orphan_reasons().
    changed_after: Any = None

    @property
    def short(self) -> str:
        return display.reason(self.category, self.sqlstate) + (
            f": {self.detail}" if self.detail else ""
        )

    @property
    def words(self) -> str:
        return REASON_WORDS.get(self.category, self.category)

    @property
    def found_profile(self) -> bool:
        """It said the session has (or got) a profile: not true of an orphan now."""
        return self.category in PROFILE_FOUND

    @property
    def stale(self) -> bool:
        return self.found_profile or self.changed_after is not None


def latest_reasons(session_ids: list[Any]) -> dict[str, Reason]:
    """For each session, the newer of its latest attempt and its diagnosis (a tie: the attempt)."""
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


def orphan_reasons(session_ids: list[Any]) -> dict[str, Reason]:
    """latest_reasons() for orphans, each marked with the fix or gate change made after it."""
    from remediation.selectors.changes import last_write_path_change

    reasons = latest_reasons(session_ids)
    change = last_write_path_change() if reasons else None
    if change is None:
        return reasons
    return {
        sid: replace(r, changed_after=change) if r.at is None or r.at < change.at else r
        for sid, r in reasons.items()
    }


def _latest_reason_sql() -> str:
    """Each attempted or diagnosed session's latest reason, as latest_reasons() picks it, in
    the portal database (where attempts and diagnoses live)."""
    from remediation.models import FinalizeAttempt, SessionDiagnosis

    return (
        "SELECT DISTINCT ON (session_id) session_id, category, sqlstate FROM ("
        " SELECT session_id, coalesce(nullif(reason, ''), outcome) AS category, sqlstate,"
        f" started_at AS at, 0 AS pri FROM {FinalizeAttempt._meta.db_table}"
        " UNION ALL SELECT session_id, category, sqlstate, checked_at, 1"
        f" FROM {SessionDiagnosis._meta.db_table}"
        ") r ORDER BY session_id, at DESC, pri"
    )


def reason_groups() -> list[tuple[str, str, list[Any]]]:
    """Every session with a reason that holds (not a profile found), grouped by its latest
    reason: (category, SQLSTATE, session ids), ordered by the words, then the SQLSTATE."""
    from django.db import connections

    from remediation.models import FinalizeAttempt

    sql = (
        f"SELECT category, sqlstate, array_agg(session_id) FROM ({_latest_reason_sql()}) latest"
        " WHERE NOT (category = ANY(%s)) GROUP BY category, sqlstate"
    )
    with connections[FinalizeAttempt.objects.db].cursor() as cur:
        cur.execute(sql, [sorted(PROFILE_FOUND)])
        rows = cur.fetchall()
    return sorted(
        ((c, code, list(ids)) for c, code, ids in rows),
        key=lambda g: (REASON_WORDS.get(g[0], g[0]), g[1]),
    )


def sessions_by_reason(
    *, category: str = "", sqlstate: str = "", holding: bool = False
) -> list[Any]:
    """The sessions whose latest reason has this category and/or this SQLSTATE; with
    holding=True, every session whose latest reason does not claim a profile (the orphans
    without them are the "not diagnosed" ones). One scan of attempts and diagnoses."""
    from django.db import connections

    from remediation.models import FinalizeAttempt

    where: list[str] = []
    params: list[Any] = []
    if holding:
        where.append("NOT (category = ANY(%s))")
        params.append(sorted(PROFILE_FOUND))
    elif category:
        where.append("category = %s")
        params.append(category)
    if sqlstate:
        where.append("sqlstate = %s")
        params.append(sqlstate)
    sql = f"SELECT session_id FROM ({_latest_reason_sql()}) latest"
    if where:
        sql += " WHERE " + " AND ".join(where)
    with connections[FinalizeAttempt.objects.db].cursor() as cur:
        cur.execute(sql, params)
        return [row[0] for row in cur.fetchall()]


def stored_diagnoses(session_ids: list[Any]) -> dict[str, Any]:
    """The latest stored diagnosis of each session (SessionDiagnosis rows), by session id."""
    from remediation.models import SessionDiagnosis

    return {
        str(d.session_id): d for d in SessionDiagnosis.objects.filter(session_id__in=session_ids)
    }


def profile_history(session_id: Any) -> list[dict[str, Any]]:
    """What runs did to the session's profile, oldest first: created or re-scored by a
    backfill, restored (rolled back) or left alone by a rollback. Dry runs wrote nothing
    and are left out. Each entry: when, what (words), the run's id and kind."""
    from remediation.models import BackfillItem, BackfillRun

    Outcome = BackfillItem.Outcome
    words: dict[tuple[str, str], str] = {
        (BackfillRun.Kind.FINALIZE, Outcome.CREATED): "profile created",
        (BackfillRun.Kind.FINALIZE, Outcome.RESCORED): "profile re-scored",
        (
            BackfillRun.Kind.ROLLBACK,
            Outcome.RESTORED,
        ): "rolled back (the rows as before run #{src})",
        (BackfillRun.Kind.ROLLBACK, Outcome.CONFLICT): "left alone by the rollback of run #{src}"
        " (changed since)",
    }
    items = (
        BackfillItem.objects.filter(
            session_id=session_id,
            run__dry_run=False,
            outcome__in=[Outcome.CREATED, Outcome.RESCORED, Outcome.RESTORED, Outcome.CONFLICT],
        )
        .select_related("run")
        .order_by("processed_at", "pk")
    )
    history = []
    for item in items:
        text = words.get((item.run.kind, item.outcome))
        if text is None:
            continue
        history.append(
            {
                "at": item.processed_at,
                "what": text.format(src=item.run.source_run_id),
                "run_id": item.run_id,
                "run": str(item.run).rsplit(" (", 1)[0],
                "profile_id": str(item.profile_id) if item.profile_id else "",
            }
        )
    return history


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
