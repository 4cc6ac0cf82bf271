"""Secrets stay secret in logs and error reports; logins are throttled."""

from __future__ import annotations

import json
import logging
from typing import Any

MASK = "[redacted]"


def secret_values() -> list[str]:
    """Every configured secret value long enough to recognise (keys, tokens, passwords)."""
    from django.conf import settings

    values = [settings.SECRET_KEY]
    for name in ("SUPABASE_SERVICE_ROLE_KEY", "METRICS_TOKEN", "SENTRY_DSN"):
        secret = getattr(settings, name, None)
        if secret:
            values.append(secret.reveal())
    for db in settings.DATABASES.values():
        if db.get("PASSWORD"):
            values.append(str(db["PASSWORD"]))
    return [v for v in values if v and len(v) >= 6]


def redact(text: str) -> str:
    for value in secret_values():
        if value in text:
            text = text.replace(value, MASK)
    return text


class RedactSecretsFilter(logging.Filter):
    """Replaces any secret value in a log record (message, arguments, exception text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is logged as it is
            return True
        clean = redact(message)
        if record.exc_info:
            formatted = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(formatted)
        if clean != message or record.args:
            record.msg, record.args = clean, ()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str))


def scrub_event(event: dict[str, Any], hint: Any = None) -> dict[str, Any]:
    """Sentry before_send: every secret value replaced wherever it appears."""
    return json.loads(redact(json.dumps(event, default=str)))


def init_sentry(dsn: str, environment: str) -> None:
    try:
        import sentry_sdk
    except ImportError:  # optional dependency: pip install sentry-sdk
        logging.getLogger("opsportal").warning("SENTRY_DSN is set but sentry-sdk is not installed")
        return
    sentry_sdk.init(
        dsn=dsn, environment=environment, send_default_pii=False, before_send=scrub_event
    )
