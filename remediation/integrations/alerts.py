"""Alert delivery: a webhook (JSON POST, Slack-compatible `text`) and email.

The webhook is retried by urllib3's `Retry` (connection errors and 5xx answers, with
backoff); every failure is returned as text for the alert's record, never raised.
"""

from __future__ import annotations

import logging
from typing import Any

import requests
from django.conf import settings
from django.core.mail import send_mail
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

logger = logging.getLogger("remediation.alerts")


def _webhook_session() -> requests.Session:
    retry = Retry(
        total=settings.ALERT_WEBHOOK_RETRIES,
        allowed_methods=frozenset({"POST"}),
        status_forcelist=frozenset({429, 500, 502, 503, 504}),
        backoff_factor=settings.ALERT_WEBHOOK_BACKOFF,
        raise_on_status=False,
        redirect=0,
        raise_on_redirect=False,
    )
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    return session


def post_webhook(payload: dict[str, Any]) -> tuple[bool, int, str]:
    """POST the payload to ALERT_WEBHOOK_URL: (delivered, tries, error text)."""
    try:
        resp = _webhook_session().post(
            settings.ALERT_WEBHOOK_URL, json=payload, timeout=5, allow_redirects=False
        )
    except requests.RequestException as exc:
        return False, settings.ALERT_WEBHOOK_RETRIES + 1, f"webhook: {type(exc).__name__}"
    retries = getattr(resp.raw, "retries", None)
    tries = len(getattr(retries, "history", ()) or ()) + 1
    if 200 <= resp.status_code < 300:
        return True, tries, ""
    return False, tries, f"webhook: HTTP {resp.status_code} after {tries} tries"


def send_email(subject: str, text: str, recipients: list[str]) -> str:
    """Send an alert email; returns the error text ("" when sent)."""
    try:
        send_mail(subject[:150], text, None, recipients)
    except Exception as exc:  # mail transport errors are recorded, not raised
        return f"email: {type(exc).__name__}"
    return ""
