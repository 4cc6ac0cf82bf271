"""The portal's own state (database `default`): finalize attempts and diagnoses."""

from __future__ import annotations

import pgtrigger
from django.conf import settings
from django.db import models

from remediation import display


class FinalizeAttempt(models.Model):
    """One try at giving a session its profile, with what really happened."""

    class Backend(models.TextChoices):
        LOCAL = "local", "local (Python engine, service_role write)"
        EDGE = "edge", "edge function (finalizeAssessment)"

    class Outcome(models.TextChoices):
        CREATED = "created", "profile created"
        RESCORED = "rescored", "profile re-scored"
        EXISTING = "existing", "already had a profile"
        FAILED = "failed", "failed"
        OK_WITHOUT_PROFILE = "ok_without_profile", "edge said ok, no profile written"
        UNKNOWN = "unknown", "unknown (timed out, not settled)"

    session_id = models.UUIDField(db_index=True)
    backend = models.CharField(max_length=10, choices=Backend.choices)
    source = models.CharField(
        max_length=20, default="admin", help_text="admin, cli, backfill, runbook"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_name = models.CharField(max_length=150, blank=True)
    rescore = models.BooleanField(default=False)
    started_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, db_index=True)
    reason = models.CharField(
        max_length=40, blank=True, help_text="Machine-readable failure category (rls, check, …)"
    )
    sqlstate = models.CharField(max_length=5, blank=True, db_index=True)
    constraint_name = models.CharField(max_length=200, blank=True)
    table_name = models.CharField(max_length=200, blank=True)
    failed_statement = models.CharField(
        max_length=20, blank=True, help_text="profile write, session update, FC score write"
    )
    error_message = models.TextField(blank=True)
    explanation = models.TextField(blank=True, help_text="The failure in plain words")
    http_status = models.IntegerField(null=True, blank=True)
    events = models.JSONField(default=list, blank=True)
    profile_id = models.UUIDField(null=True, blank=True)
    type_code = models.CharField(max_length=3, blank=True)
    results_version = models.CharField(max_length=20, blank=True)
    results_url = models.CharField(max_length=500, blank=True)
    run_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    # The deployed edge function overwrites completed_at (pipeline.md §3): the portal puts
    # the pre-image's value back and records it: {"from": what the function wrote, "to":
    # the value put back}, or {"error": ...} when it could not.
    completed_at_restored = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["session_id", "-started_at"])]
        permissions = [
            ("use_edge_backend", "Can finalize and backfill through the edge function"),
        ]

    def __str__(self) -> str:
        return f"{self.session_id} {self.backend} {self.outcome}"

    @property
    def succeeded(self) -> bool:
        return self.outcome in (self.Outcome.CREATED, self.Outcome.RESCORED, self.Outcome.EXISTING)


class SessionDiagnosis(models.Model):
    """The latest answer to "why has this session no profile?" (a rolled-back write)."""

    session_id = models.UUIDField(unique=True)
    checked_at = models.DateTimeField()
    category = models.CharField(max_length=40, db_index=True)
    sqlstate = models.CharField(max_length=5, blank=True)
    constraint_name = models.CharField(max_length=200, blank=True)
    table_name = models.CharField(max_length=200, blank=True)
    value = models.TextField(blank=True, help_text="The offending value, for a CHECK failure")
    error_message = models.TextField(blank=True)
    explanation = models.TextField()
    events = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-checked_at"]
        verbose_name_plural = "session diagnoses"

    def __str__(self) -> str:
        return f"{self.session_id}: {self.category}"


class RunbookRecord(models.Model):
    """A saved run of the IR-07 runbook: checks, probe, verification or a change, with evidence."""

    class Kind(models.TextChoices):
        CHECKS = "checks", "checks"
        PROBE = "probe", "write-path probe"
        VERIFICATION = "verification", "verification"
        CHANGE = "change", "change"

    kind = models.CharField(max_length=20, choices=Kind.choices, db_index=True)
    label = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_name = models.CharField(max_length=150, blank=True)
    results = models.JSONField(default=dict)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "IR-07 runbook record"
        permissions = [
            ("run_runbook", "Can run the IR-07 runbook: checks, fixes, rollbacks and gates")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"


class MetricSnapshot(models.Model):
    """The health figures at one moment (the scheduled check stores one every few minutes)."""

    taken_at = models.DateTimeField(db_index=True)
    window = models.CharField(max_length=8)
    figures = models.JSONField()

    class Meta:
        ordering = ["-taken_at"]

    def __str__(self) -> str:
        return f"{display.when(self.taken_at)} ({self.window})"


class Alert(models.Model):
    """One alert per rule while it fires (deduplicated); resolved automatically when it stops."""

    class State(models.TextChoices):
        OPEN = "open"
        RESOLVED = "resolved"

    rule = models.CharField(max_length=40, db_index=True)
    severity = models.CharField(max_length=20)
    state = models.CharField(
        max_length=10, choices=State.choices, default=State.OPEN, db_index=True
    )
    message = models.TextField()
    value = models.FloatField(null=True, blank=True)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=150, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    notify_attempts = models.PositiveIntegerField(default=0)
    notified_at = models.DateTimeField(null=True, blank=True)
    last_notify_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-first_seen"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule"], condition=models.Q(state="open"), name="one_open_alert_per_rule"
            )
        ]

    def __str__(self) -> str:
        return f"{self.rule} ({self.severity}, {self.state})"


class FcChange(models.Model):
    """A load or rollback of an FC block set; a rollback keeps every removed row for undo."""

    class Kind(models.TextChoices):
        LOAD = "load"
        ROLLBACK = "rollback"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    version = models.CharField(max_length=20)
    at = models.DateTimeField(auto_now_add=True)
    actor = models.CharField(max_length=150, blank=True)
    summary = models.JSONField(default=dict)
    pre_images = models.JSONField(default=dict)
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-at"]
        verbose_name = "FC set change"
        permissions = [("manage_fc", "Can load, roll back and recompute forced-choice sets")]

    def __str__(self) -> str:
        return f"{self.kind} {self.version} #{self.pk}"


class AuditEvent(models.Model):
    """One immutable record per action: who, when, what, on which sessions, with what outcome.

    The table refuses UPDATE and DELETE at the database level (a django-pgtrigger `Protect`
    trigger), and the admin offers neither.
    """

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(max_length=150, db_index=True)
    action = models.CharField(max_length=60, db_index=True)
    target = models.CharField(max_length=200, blank=True)
    sessions = models.JSONField(default=list, blank=True)
    session_count = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=60, blank=True, db_index=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at"]
        triggers = [
            pgtrigger.Protect(name="audit_immutable", operation=pgtrigger.Update | pgtrigger.Delete)
        ]

    def __str__(self) -> str:
        return f"{display.when(self.at)} {self.actor} {self.action} {self.outcome}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None:
            raise PermissionError("audit records are immutable")
        super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise PermissionError("audit records are immutable")
