"""Sending one results message through Django's email framework (EMAIL_URL), and what the
SMTP server answered, classified:

- "sent": the server accepted the message (its reply is kept, e.g. "250 2.0.0 queued as …");
- "temporary": a 4xx reply, or the connection failed before the message was handed over:
  nothing was delivered, trying again later is right;
- "permanent": a 5xx reply (unknown mailbox, refused sender, policy): trying again is not;
- "unknown": the connection broke after the message body was sent and before the server's
  answer: it may have been delivered, so it must not be sent again automatically.

With an SMTP EMAIL_URL the transaction is driven step by step (MAIL, RCPT, DATA) so that the
reply and the "unknown" case can be told apart; any other backend (console, file, memory)
is used as it is and a message it takes counts as sent.
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend
from django.core.mail.message import sanitize_address

DJANGO_SMTP = "django.core.mail.backends.smtp.EmailBackend"


@dataclass
class Delivery:
    status: str  # sent, temporary, permanent, unknown
    reply: str  # the server's reply or the error, without credentials


def _text(resp: Any) -> str:
    return resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp)


def _classify(code: int) -> str:
    return "permanent" if code >= 500 else "temporary"


class StepwiseSmtpBackend(SmtpBackend):
    """Django's SMTP backend, sending MAIL, RCPT and DATA one by one and keeping the reply."""

    last_reply = ""
    body_sent = False

    def _send(self, email_message: EmailMessage) -> bool:
        if not email_message.recipients():
            return False
        assert self.connection is not None
        encoding = email_message.encoding or settings.DEFAULT_CHARSET
        sender = sanitize_address(email_message.from_email, encoding)
        recipients = [sanitize_address(a, encoding) for a in email_message.recipients()]
        body = email_message.message().as_bytes(linesep="\r\n")
        conn = self.connection
        conn.ehlo_or_helo_if_needed()
        code, resp = conn.mail(sender)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, resp, sender)
        for rcpt in recipients:
            code, resp = conn.rcpt(rcpt)
            if code not in (250, 251):
                raise smtplib.SMTPRecipientsRefused({rcpt: (code, resp)})
        # From here on a lost connection may come after the server took the message.
        self.body_sent = True
        code, resp = conn.data(body)
        self.last_reply = f"{code} {_text(resp)}"
        if code != 250:  # smtplib returns the final reply; only the 354 step raises itself
            raise smtplib.SMTPDataError(code, resp)
        return True


def send(message: EmailMessage) -> Delivery:
    """Send one message; never raises for a delivery problem (the Delivery says what)."""
    backend = settings.EMAIL_BACKEND
    if backend == DJANGO_SMTP:
        conn: Any = StepwiseSmtpBackend(fail_silently=False)
    else:
        conn = get_connection(backend=backend, fail_silently=False)
    try:
        conn.send_messages([message])
    except smtplib.SMTPRecipientsRefused as exc:
        code, resp = next(iter(exc.recipients.values()))
        return Delivery(_classify(code), f"{code} {_text(resp)}")
    except smtplib.SMTPResponseException as exc:
        # A reply: definitive whatever the step (a DATA refusal means nothing was taken).
        if exc.smtp_code < 400:
            return Delivery("temporary", f"{exc.smtp_code} {_text(exc.smtp_error)}")
        return Delivery(_classify(exc.smtp_code), f"{exc.smtp_code} {_text(exc.smtp_error)}")
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        words = f"{type(exc).__name__}: {exc}"[:500]
        if getattr(conn, "body_sent", False):
            return Delivery("unknown", f"connection lost after the message was sent ({words})")
        return Delivery("temporary", words)
    except smtplib.SMTPException as exc:  # e.g. STARTTLS or AUTH not supported: configuration
        return Delivery("permanent", f"{type(exc).__name__}: {exc}"[:500])
    return Delivery("sent", getattr(conn, "last_reply", "") or "accepted by the mail backend")
