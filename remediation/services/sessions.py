"""Finalize one session, diagnose it: each call owns its pipeline transaction and its record."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, transaction
from django.utils import timezone

from remediation import pipeline as pw
from remediation.models import FinalizeAttempt, SessionDiagnosis
from remediation.services.audit import audit_record

logger = logging.getLogger("remediation.finalize")


def event_dicts(events: list[Any]) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in e.to_dict().items()} for e in events]


def _plain(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)


def actor_fields(actor: Any) -> dict[str, Any]:
    if actor is not None and getattr(actor, "is_authenticated", False):
        return {"requested_by": actor, "requested_by_name": actor.get_username()}
    return {"requested_by": None, "requested_by_name": str(actor or "system")[:150]}


class InvalidSessionId(ValueError):
    """A session id that is not a UUID."""


def normalize_session_id(session_id: Any) -> str:
    """The canonical text of a session UUID, or InvalidSessionId with a clear message."""
    import uuid

    try:
        return str(uuid.UUID(str(session_id).strip()))
    except ValueError:
        raise InvalidSessionId(f"{session_id!r} is not a session id (a UUID)") from None


EDGE_PERMISSION = "remediation.use_edge_backend"  # the Engineer role's


class EdgeNotAllowed(PermissionError):
    """The edge backend was asked for by a user without the Engineer role."""


def edge_allowed(actor: Any) -> bool:
    """Whether `actor` may use the edge backend: users need use_edge_backend (the Engineer
    role); the command line and the system (not users) may."""
    return not getattr(actor, "is_authenticated", False) or actor.has_perm(EDGE_PERMISSION)


def session_finalize(
    *,
    session_id: str,
    backend: str = "local",
    actor: Any = None,
    rescore: bool = False,
    source: str = "admin",
    context: pw.PipelineContext | None = None,
    run_id: int | None = None,
) -> FinalizeAttempt:
    """Give one session its profile with the chosen backend; record and return the attempt."""
    session_id = normalize_session_id(session_id)
    if backend == "edge":
        from remediation.services.edge import edge_finalize

        if not edge_allowed(actor):
            raise EdgeNotAllowed("the edge backend needs the Engineer role (use_edge_backend)")

        attempt = edge_finalize(
            session_id=session_id, actor=actor, rescore=rescore, source=source, run_id=run_id
        )
        _audit_attempt(actor, attempt)
        return attempt
    if backend != "local":
        raise ValueError(f"unknown backend {backend!r} (local or edge)")
    started = timezone.now()
    t0 = time.perf_counter()
    attempt = FinalizeAttempt(
        session_id=session_id,
        backend="local",
        source=source,
        rescore=rescore,
        started_at=started,
        run_id=run_id,
        **actor_fields(actor),
    )
    _write_locally(attempt, context, rescore=rescore, now=started)
    attempt.finished_at = timezone.now()
    attempt.duration_ms = (time.perf_counter() - t0) * 1000
    attempt.save()
    _audit_attempt(actor, attempt)
    logger.info(
        "finalize session=%s backend=local outcome=%s reason=%s sqlstate=%s",
        session_id,
        attempt.outcome,
        attempt.reason,
        attempt.sqlstate,
    )
    return attempt


def _write_locally(
    attempt: FinalizeAttempt, context: pw.PipelineContext | None, *, rescore: bool, now: Any
) -> None:
    """The pipeline write in its own transaction; the attempt records what happened."""
    try:
        ctx = context or pw.load_context()
        with pw.pipeline_transaction():
            result = pw.write_session(ctx, str(attempt.session_id), rescore=rescore, now=now)
    except pw.ProfileWriteFailed as exc:
        _fill_failure(attempt, exc.info)
        attempt.events = event_dicts(exc.events)
    except pw.FinalizeRefused as exc:
        attempt.outcome = FinalizeAttempt.Outcome.FAILED
        attempt.reason = exc.reason
        attempt.explanation = exc.explanation
        attempt.error_message = exc.explanation
    except DatabaseError as exc:  # before the write: lock or statement timeout, lost connection
        _fill_failure(attempt, pw.classify_error(exc))
    else:
        attempt.outcome = result.outcome
        attempt.profile_id = result.profile_id
        attempt.results_url = result.results_url
        attempt.type_code = result.type_code
        attempt.results_version = result.results_version
        attempt.events = event_dicts(result.events)


def _audit_attempt(actor: Any, attempt: FinalizeAttempt) -> None:
    audit_record(
        actor or attempt.requested_by_name,
        "finalize",
        target=str(attempt.session_id),
        sessions=[attempt.session_id],
        outcome=attempt.outcome,
        detail={
            "backend": attempt.backend,
            "source": attempt.source,
            "rescore": attempt.rescore,
            "reason": attempt.reason,
            "sqlstate": attempt.sqlstate,
            "attempt": attempt.pk,
        },
    )


def _fill_failure(attempt: FinalizeAttempt, info: pw.DbErrorInfo) -> None:
    attempt.outcome = FinalizeAttempt.Outcome.FAILED
    attempt.reason = info.category
    attempt.sqlstate = info.sqlstate
    attempt.constraint_name = info.constraint
    attempt.table_name = info.table
    attempt.failed_statement = info.statement
    attempt.error_message = info.message
    attempt.explanation = info.explanation


@dataclass(frozen=True)
class Diagnosis:
    """Why a session has no profile, decided by trying the write and rolling it back."""

    session_id: str
    category: str  # has_profile, would_succeed, no_answers, unscorable, rls, grant, check, trigger, other, …
    explanation: str
    sqlstate: str = ""
    constraint: str = ""
    table: str = ""
    value: str = ""
    message: str = ""
    events: tuple[dict[str, Any], ...] = ()

    @property
    def blocking(self) -> bool:
        return self.category not in ("has_profile", "would_succeed")


def session_diagnose(
    *, session_id: str, context: pw.PipelineContext | None = None, save: bool = True
) -> Diagnosis:
    """Try the profile write as service_role in a transaction that is always rolled back."""
    session_id = normalize_session_id(session_id)
    ctx = context or pw.load_context()
    now = timezone.now()
    diagnosis: Diagnosis
    try:
        with pw.pipeline_transaction():
            result = pw.write_session(ctx, session_id, now=now, honour_maintenance=False)
            transaction.set_rollback(True, using="pipeline")
    except pw.ProfileWriteFailed as exc:
        i = exc.info
        diagnosis = Diagnosis(
            session_id,
            i.category,
            i.explanation,
            i.sqlstate,
            i.constraint,
            i.table,
            i.value,
            i.message,
            tuple(event_dicts(exc.events)),
        )
    except pw.FinalizeRefused as exc:
        diagnosis = Diagnosis(session_id, exc.reason, exc.explanation)
    except DatabaseError as exc:
        i = pw.classify_error(exc)
        diagnosis = Diagnosis(session_id, i.category, i.explanation, i.sqlstate, message=i.message)
    else:
        if result.outcome == "existing":
            diagnosis = Diagnosis(
                session_id,
                "has_profile",
                f"The session has a profile ({result.type_code} {result.results_version}).",
            )
        else:
            diagnosis = Diagnosis(
                session_id,
                "would_succeed",
                "Nothing blocks the write now: a finalize would create a "
                f"{result.type_code} profile ({result.results_version}).",
                events=tuple(event_dicts(result.events)),
            )
    if save and diagnosis.category != "unknown_session":
        _store(diagnosis, now)
    return diagnosis


def _store(diagnosis: Diagnosis, now: Any) -> None:
    """The session's latest diagnosis (one row per session), with its time."""
    SessionDiagnosis.objects.update_or_create(
        session_id=diagnosis.session_id,
        defaults={
            "checked_at": now,
            "category": diagnosis.category,
            "sqlstate": diagnosis.sqlstate,
            "constraint_name": diagnosis.constraint,
            "table_name": diagnosis.table,
            "value": diagnosis.value,
            "error_message": diagnosis.message,
            "explanation": diagnosis.explanation,
            "events": list(diagnosis.events),
        },
    )
