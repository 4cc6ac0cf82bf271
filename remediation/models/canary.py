"""The write-path canary's results and the auto-heal switch (database `default`)."""

from __future__ import annotations

from django.db import models

from remediation import display


class CanaryResult(models.Model):
    """One canary pass: the pipeline's write for a new session, tried and rolled back."""

    class Outcome(models.TextChoices):
        OK = "ok", "ok: the write path accepts a new session's profile"
        FAILED = "failed", "failed: the database refused the write"
        BUSY = "busy", "busy: a lock was not granted within the lock timeout (not a verdict)"
        ERROR = "error", "error: the pass could not be made (no scoring key, no database)"

    at = models.DateTimeField(db_index=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, db_index=True)
    duration_ms = models.FloatField()
    statement = models.CharField(
        max_length=30, blank=True, help_text="session insert, profile write, session update"
    )
    category = models.CharField(max_length=20, blank=True, help_text="rls, grant, check, trigger…")
    sqlstate = models.CharField(max_length=5, blank=True)
    constraint_name = models.CharField(max_length=200, blank=True)
    trigger_name = models.CharField(max_length=200, blank=True)
    table_name = models.CharField(max_length=200, blank=True)
    message = models.TextField(blank=True)
    explanation = models.TextField(blank=True)
    case = models.CharField(
        max_length=200, blank=True, help_text="Which engine row was refused (how it was answered)"
    )
    rows_written = models.PositiveSmallIntegerField(
        default=0, help_text="Engine rows written (and rolled back) in this pass"
    )
    source = models.CharField(max_length=20, default="schedule", help_text="schedule or cli")
    heal_run_id = models.BigIntegerField(
        null=True, blank=True, help_text="The auto-heal run this pass started"
    )

    class Meta:
        ordering = ["-at"]
        verbose_name = "canary result"

    def __str__(self) -> str:
        return f"{display.when(self.at)} {self.outcome}"

    @property
    def cause(self) -> str:
        """The refusal in one line: "23514 on profiles_fc_coverage_bucket_check"."""
        if self.outcome == self.Outcome.OK:
            return ""
        code = self.sqlstate or "no SQLSTATE"
        table = self.table_name or "profiles"
        if self.constraint_name:
            return f"{code} on {self.constraint_name}"
        if self.trigger_name:
            return f"{code} in trigger {self.trigger_name}"
        if self.category == "rls":
            return f"{code} row-level security on {table}"
        if self.category == "grant":
            return f"{code} permission denied on {table}"
        return f"{code} {self.category}".rstrip() + (
            f" on {self.table_name}" if self.table_name else ""
        )


class AutoHeal(models.Model):
    """The auto-heal switch (one row, pk 1): who turned it on or off, and the breaker's trip."""

    enabled = models.BooleanField(default=False)
    changed_at = models.DateTimeField(null=True, blank=True)
    changed_by = models.CharField(max_length=150, blank=True)
    tripped_at = models.DateTimeField(
        null=True, blank=True, help_text="When the circuit breaker last switched it off"
    )
    trip_reason = models.TextField(blank=True)
    last_sent_run_id = models.BigIntegerField(
        null=True, blank=True, help_text="The last heal run whose results were sent"
    )

    class Meta:
        verbose_name = "auto-heal switch"
        permissions = [("manage_auto_heal", "Can switch auto-heal on and off")]

    def __str__(self) -> str:
        return f"auto-heal {'on' if self.enabled else 'off'}"
