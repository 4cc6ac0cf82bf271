"""Results notifications: the message that tells a person their results are ready.

One row per session, message kind and generation. A person is sent a kind of message once:
every ordinary send reuses the session's latest row (sent stays sent), and only an explicit
resend adds a new generation. The row is claimed ("sending", committed) before the SMTP
call, so a worker killed mid-send leaves a row that says so; it becomes "unknown" (needs a
check) and is never sent again automatically.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ResultsNotification(models.Model):
    class Kind(models.TextChoices):
        RESULTS = "results", "results ready"

    class State(models.TextChoices):
        QUEUED = "queued", "queued"
        SENDING = "sending", "sending (claimed, SMTP call in progress)"
        SENT = "sent", "sent"
        FAILED = "failed", "failed"
        SKIPPED = "skipped", "skipped"
        # Claimed, and the worker stopped before the SMTP server's answer was recorded: the
        # message may or may not have gone out. Never sent again automatically.
        UNKNOWN = "unknown", "unknown (interrupted mid-send: check before resending)"

    class Reason(models.TextChoices):
        NONE = "", "–"
        NO_EMAIL = "no_email", "no email address"
        INVALID_ADDRESS = "invalid_address", "invalid address"
        SUPPRESSED = "suppressed", "on the suppression list"
        NO_PROFILE = "no_profile", "no profile"
        TOKEN_EXPIRED = "token_expired", "share token expired"
        MAINTENANCE = "maintenance", "pipeline in maintenance"
        NO_SESSION = "no_session", "no such session"
        TEMPORARY = "temporary", "temporary SMTP failure (retries used up)"
        PERMANENT = "permanent", "permanent SMTP failure"
        INTERRUPTED = "interrupted", "worker stopped mid-send"
        LOST_REPLY = "lost_reply", "connection lost after the message, before the reply"

    session_id = models.UUIDField(db_index=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.RESULTS)
    generation = models.PositiveSmallIntegerField(
        default=1, help_text="1 for the first message; each explicit resend adds one"
    )
    state = models.CharField(
        max_length=10, choices=State.choices, default=State.QUEUED, db_index=True
    )
    reason = models.CharField(max_length=20, choices=Reason.choices, blank=True)
    recipient = models.CharField(max_length=320, blank=True, help_text="The session's email")
    results_url = models.CharField(max_length=500, blank=True)
    type_code = models.CharField(max_length=3, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="SMTP transactions tried")
    smtp_reply = models.TextField(blank=True, help_text="The SMTP server's reply or the error")
    message_id = models.CharField(max_length=200, blank=True)
    run = models.ForeignKey(
        "remediation.BackfillRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="notifications",
        help_text="The notify run that last took it",
    )
    source_run_id = models.BigIntegerField(
        null=True, blank=True, help_text="The backfill whose profiles it announces"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_name = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True, db_index=True)
    settled_at = models.DateTimeField(
        null=True,
        blank=True,
        db_index=True,
        help_text="When it last reached sent/failed/skipped/unknown",
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "results notification"
        constraints = [
            models.UniqueConstraint(
                fields=["session_id", "kind", "generation"], name="notification_generation"
            )
        ]
        permissions = [("send_results", "Can send (and resend) results notifications")]

    def __str__(self) -> str:
        return f"{self.session_id} {self.kind} #{self.generation} {self.state}"


class SuppressedAddress(models.Model):
    """An address that is never sent results (unsubscribed, bounced, asked not to be)."""

    address = models.CharField(max_length=320, unique=True, help_text="Stored lower-case")
    reason = models.CharField(max_length=200, blank=True)
    added_by = models.CharField(max_length=150, blank=True)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["address"]
        verbose_name = "suppressed address"
        verbose_name_plural = "suppression list"

    def __str__(self) -> str:
        return self.address

    def save(self, *args: object, **kwargs: object) -> None:
        self.address = self.address.strip().lower()
        super().save(*args, **kwargs)  # type: ignore[arg-type]
