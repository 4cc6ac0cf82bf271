"""Secrets stay secret in logs and error reports; logins are throttled."""

from __future__ import annotations

import ipaddress
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


def client_ip(request: Any) -> str | None:
    """The client's address for login throttling (settings.AXES_CLIENT_IP_CALLABLE).

    With TRUSTED_PROXY_COUNT = n > 0 each trusted proxy appended the address it received
    the request from to X-Forwarded-For, so the client is the n-th entry from the right;
    entries further left came from the client and are not believed. A request with
    fewer entries did not come through the proxies: its REMOTE_ADDR is used.
    """
    from django.conf import settings

    remote = request.META.get("REMOTE_ADDR") or None
    count = settings.TRUSTED_PROXY_COUNT
    if count <= 0:
        return remote
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    hops = [h for h in hops if h]
    if len(hops) < count:
        return remote
    candidate = hops[-count]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote
