"""System checks: invalid configuration fails at start with a clear message."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured


def development_key_with_debug_off() -> bool:
    return not settings.DEBUG and settings.SECRET_KEY == settings.DEV_SECRET_KEY


def refuse_development_key() -> None:
    """For the WSGI/ASGI entry points, which run no system checks: the same rule as E001."""
    if development_key_with_debug_off():
        raise ImproperlyConfigured(
            "SECRET_KEY is the development key while DEBUG is off (opsportal.E001): "
            "set SECRET_KEY in the environment (see .env.example)."
        )


def _is_http_url(value: str) -> bool:
    parsed = urlparse(value)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


@register(Tags.compatibility)
def check_portal_settings(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """Refuse settings the portal cannot run with, naming the variable to fix."""
    errors: list[Any] = []
    if development_key_with_debug_off():
        errors.append(
            Error(
                "SECRET_KEY is the development key while DEBUG is off.",
                hint="Set SECRET_KEY in the environment (see .env.example).",
                id="opsportal.E001",
            )
        )
    for name in ("SUPABASE_URL", "RESULTS_BASE_URL"):
        value = getattr(settings, name)
        if not _is_http_url(value):
            errors.append(
                Error(
                    f"{name} must be an http(s) URL, got {value!r}.",
                    hint=f"Set {name} in the environment (see .env.example).",
                    id="opsportal.E002",
                )
            )
    for alias in ("default", "pipeline"):
        engine = settings.DATABASES.get(alias, {}).get("ENGINE", "")
        if engine != "django.db.backends.postgresql":
            errors.append(
                Error(
                    f"Database {alias!r} must be PostgreSQL, got engine {engine!r}.",
                    hint="DATABASE_URL / PIPELINE_DATABASE_URL take postgres:// URLs.",
                    id="opsportal.E003",
                )
            )
    errors.extend(_check_q_cluster(settings.Q_CLUSTER))
    if settings.Q_BROKER not in ("orm", "redis"):
        errors.append(
            Error(
                f"Q_BROKER must be 'orm' or 'redis', got {settings.Q_BROKER!r}.",
                id="opsportal.E005",
            )
        )
    for name in ("EDGE_CONNECT_TIMEOUT", "EDGE_READ_TIMEOUT"):
        if getattr(settings, name) <= 0:
            errors.append(Error(f"{name} must be positive.", id="opsportal.E006"))
    if settings.EDGE_MAX_RETRIES < 0:
        errors.append(Error("EDGE_MAX_RETRIES must be 0 or more.", id="opsportal.E006"))
    errors.extend(_check_batch_budget(settings.Q_CLUSTER.get("timeout")))
    errors.extend(_check_task_budget(settings.Q_CLUSTER.get("timeout")))
    if not settings.SUPABASE_SERVICE_ROLE_KEY:
        errors.append(
            Warning(
                "SUPABASE_SERVICE_ROLE_KEY is not set: the edge finalizer cannot authenticate.",
                hint="Set it in the environment; the local finalizer does not need it.",
                id="opsportal.W001",
            )
        )
    return errors


def _check_q_cluster(conf: dict[str, Any]) -> list[Any]:
    """django-q2: a task must time out before it is retried, and attempts are finite."""
    errors: list[Any] = []
    timeout, retry = conf.get("timeout"), conf.get("retry")
    if not isinstance(timeout, int) or timeout <= 0:
        errors.append(Error("Q_TIMEOUT must be a positive number of seconds.", id="opsportal.E004"))
    elif not isinstance(retry, int) or retry <= timeout:
        errors.append(
            Error(
                f"Q_RETRY ({retry}) must be greater than Q_TIMEOUT ({timeout}): otherwise "
                "django-q2 hands a task still running to a second worker.",
                id="opsportal.E004",
            )
        )
    attempts = conf.get("max_attempts")
    if not isinstance(attempts, int) or attempts <= 0:
        errors.append(
            Error(
                f"Q_MAX_ATTEMPTS must be a positive integer, got {attempts!r} "
                "(0 means retry forever).",
                id="opsportal.E004",
            )
        )
    if not isinstance(conf.get("workers"), int) or conf["workers"] <= 0:
        errors.append(Error("Q_WORKERS must be a positive integer.", id="opsportal.E004"))
    return errors


def slowest_edge_call() -> float:
    """Seconds one edge call can take at most: every try connecting and reading to its
    timeout, with the longest Retry-After wait between tries."""
    tries = settings.EDGE_MAX_RETRIES + 1
    return (
        settings.EDGE_CONNECT_TIMEOUT + settings.EDGE_READ_TIMEOUT
    ) * tries + settings.EDGE_RETRY_AFTER_CAP * settings.EDGE_MAX_RETRIES


def _check_task_budget(timeout: Any) -> list[Any]:
    """A task runs batches until BACKFILL_TASK_SECONDS has passed; the last one (an edge
    batch's budget ends with the task's) may start one more edge call just before: all of
    it must end before django-q2 kills the task (Q_TIMEOUT). EDGE_CONCURRENCY at least 1."""
    errors = []
    if settings.EDGE_CONCURRENCY < 1:
        errors.append(Error("EDGE_CONCURRENCY must be at least 1.", id="opsportal.E008"))
    if not 1 <= settings.BACKFILL_LANES <= 8:  # 8 tokens fit BackfillRun.batch_token
        errors.append(Error("BACKFILL_LANES must be between 1 and 8.", id="opsportal.E008"))
    budget = settings.BACKFILL_TASK_SECONDS
    if budget <= 0:
        return [*errors, Error("BACKFILL_TASK_SECONDS must be positive.", id="opsportal.E008")]
    if not isinstance(timeout, int) or timeout <= 0:
        return errors  # E004 says it
    slowest = slowest_edge_call()
    if budget + slowest >= timeout:
        errors.append(
            Error(
                f"BACKFILL_TASK_SECONDS ({budget:g}) plus the slowest edge call "
                f"({slowest:g} s) must stay below Q_TIMEOUT ({timeout}): otherwise "
                "django-q2 kills the task that runs a run's batches.",
                hint="Lower the task budget or the edge timeouts, or raise Q_TIMEOUT (and Q_RETRY).",
                id="opsportal.E008",
            )
        )
    return errors


def _check_batch_budget(timeout: Any) -> list[Any]:
    """A batch must end before django-q2 kills its task (Q_TIMEOUT): its budget plus the one
    edge call that may start just before the budget runs out."""
    budget = settings.BACKFILL_BATCH_SECONDS
    if budget <= 0:
        return [Error("BACKFILL_BATCH_SECONDS must be positive.", id="opsportal.E007")]
    if not isinstance(timeout, int) or timeout <= 0:
        return []  # E004 says it
    slowest = slowest_edge_call()
    if budget + slowest >= timeout:
        return [
            Error(
                f"BACKFILL_BATCH_SECONDS ({budget:g}) plus the slowest edge call "
                f"({slowest:g} s: EDGE_CONNECT_TIMEOUT + EDGE_READ_TIMEOUT per try, "
                f"EDGE_MAX_RETRIES + 1 tries, EDGE_RETRY_AFTER_CAP between them) must stay "
                f"below Q_TIMEOUT ({timeout}): otherwise django-q2 kills edge batches.",
                hint="Lower the budget or the edge timeouts, or raise Q_TIMEOUT (and Q_RETRY).",
                id="opsportal.E007",
            )
        ]
    return []
