"""Runs of the job engine (remediation.jobs): a strict state machine and one item per session.

A run has a kind: "finalize" (a backfill: give orphans their profiles), "rollback" (restore
the rows a finalize run changed, from its items' pre-images) or "diagnosis" (why has each
session no profile). Items carry each session's outcome, and for finalize runs the rows as
they were before (pre-image) and a fingerprint of what the run wrote.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class BackfillRun(models.Model):
    class State(models.TextChoices):
        ENQUEUED = "enqueued", "enqueued"
        RUNNING = "running", "running"
        PAUSING = "pausing", "pausing"
        PAUSED = "paused", "paused"
        CANCELLING = "cancelling", "cancelling"
        CANCELLED = "cancelled", "cancelled"
        INTERRUPTED = "interrupted", "interrupted"
        # The three ends of a run that went through its items; the engine decides which
        # (remediation/jobs/engine.py, end_state): no session failed / some did / all did.
        SUCCEEDED = "succeeded", "succeeded"
        FINISHED_WITH_FAILURES = "finished_with_failures", "finished with failures"
        FAILED = "failed", "all failed"
        ERRORED = "errored", "errored"

    class Kind(models.TextChoices):
        FINALIZE = "finalize", "backfill (finalize)"
        ROLLBACK = "rollback", "roll back a run"
        DIAGNOSIS = "diagnosis", "bulk diagnosis"
        NOTIFY = "notify", "send results notifications"

    class Selection(models.TextChoices):
        WINDOW = "window", "completion-date window"
        IDS = "ids", "explicit session ids"
        CSV = "csv", "uploaded CSV of ids"
        FILTER = "filter", "all orphans matching a filter"
        RUN = "run", "the sessions another run changed"

    ACTIVE_STATES = (State.ENQUEUED, State.RUNNING, State.PAUSING, State.CANCELLING)

    kind = models.CharField(
        max_length=10, choices=Kind.choices, default=Kind.FINALIZE, db_index=True
    )
    state = models.CharField(
        max_length=24, choices=State.choices, default=State.ENQUEUED, db_index=True
    )
    source_run = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="follow_up_runs",
        help_text="For a rollback: the run whose changes it restores",
    )
    selection = models.CharField(max_length=10, choices=Selection.choices)
    selection_params = models.JSONField(default=dict, blank=True)
    backend = models.CharField(max_length=10, default="local")
    batch_size = models.PositiveIntegerField(default=200)
    throttle_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Sessions per minute; empty = as fast as possible"
    )
    dry_run = models.BooleanField(default=False)
    rescore = models.BooleanField(default=False, help_text="Re-score sessions that have a profile")
    cursor = models.PositiveIntegerField(
        default=0, help_text="Items with ordinal < cursor are done"
    )
    batch_token = models.CharField(
        max_length=200,
        blank=True,
        help_text="The task allowed to run next, one per lane (space-separated)",
    )
    lanes = models.PositiveSmallIntegerField(
        default=1,
        help_text="Batches in flight at once: item n belongs to lane n % lanes, each lane "
        "is one chain of tasks (BACKFILL_LANES)",
    )
    estimated_total = models.PositiveIntegerField(default=0)
    # The headline figures say what is true now, over every round: each session counts
    # once, by its latest outcome (a session that failed and was created on retry counts as
    # created, not failed). What each round did is kept in `rounds`.
    processed = models.PositiveIntegerField(default=0, help_text="Sessions with an outcome now")
    created = models.PositiveIntegerField(default=0)
    rescored = models.PositiveIntegerField(default=0)
    existing = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0, help_text="Sessions whose latest try failed")
    skipped = models.PositiveIntegerField(default=0, help_text="Dry run, or busy elsewhere")
    failed_by_reason = models.JSONField(default=dict, blank=True)
    counts = models.JSONField(default=dict, blank=True, help_text="Items per outcome")
    rounds = models.JSONField(
        default=list,
        blank=True,
        help_text="One entry per round (the first pass, then each retry of failed sessions): "
        "its outcomes, failures by reason, start, end and the run's state at its end",
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_by_name = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    state_changed_at = models.DateTimeField(null=True, blank=True)
    message = models.TextField(
        blank=True, help_text="Why the run is paused, errored or interrupted"
    )
    rolled_back_at = models.DateTimeField(null=True, blank=True)
    # The run's key in the run ledger of the pipeline database (remediation/jobs/ledger.py):
    # unique across portal databases and restores, unlike the id.
    ledger_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    rollback_report = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "run"
        permissions = [
            ("run_backfill", "Can start, pause, resume and cancel backfills"),
            ("rollback_backfill", "Can roll back a backfill run"),
            ("run_large_backfill", "Can start backfills larger than SUPPORT_MAX_BACKFILL"),
        ]

    def __str__(self) -> str:
        noun = {
            "finalize": "Backfill",
            "rollback": "Rollback",
            "diagnosis": "Diagnosis",
            "notify": "Notification run",
        }
        return f"{noun.get(self.kind, 'Run')} #{self.pk} ({self.get_state_display()})"

    @property
    def is_active(self) -> bool:
        return self.state in self.ACTIVE_STATES


class BackfillItem(models.Model):
    """One session of a run, its outcome, and the rows it changed (pre- and post-images)."""

    class Outcome(models.TextChoices):
        PENDING = "pending"
        CREATED = "created"
        RESCORED = "rescored"
        EXISTING = "existing"
        FAILED = "failed"
        SKIPPED = "skipped"  # dry run: would be written
        BUSY = "busy"  # another worker held the session: retried at the end
        # The edge function got the request and no answer came back whole (read timeout,
        # connection lost) and no profile yet: not a success; "retry failed" reads the
        # database first and posts again only for sessions still without a profile.
        UNKNOWN = "unknown"
        RESTORED = "restored"  # rollback: the pre-image is back
        CONFLICT = "conflict"  # rollback: changed since the run, left alone
        DIAGNOSED = "diagnosed"  # diagnosis: stored (the reason says what it found)
        SENT = "sent"  # notify: the SMTP server accepted the message

    run = models.ForeignKey(BackfillRun, on_delete=models.CASCADE, related_name="items")
    ordinal = models.PositiveIntegerField()
    session_id = models.UUIDField()
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.PENDING)
    reason = models.CharField(max_length=40, blank=True)
    sqlstate = models.CharField(max_length=5, blank=True)
    constraint_name = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    profile_id = models.UUIDField(null=True, blank=True)
    type_code = models.CharField(max_length=3, blank=True)
    results_url = models.CharField(max_length=500, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    tries = models.PositiveSmallIntegerField(default=0)
    # A busy session (held by another transaction) is not tried again before this time:
    # the engine backs off, over at most BACKFILL_BUSY_RETRY_SECONDS in all.
    not_before = models.DateTimeField(null=True, blank=True)
    # Rows as they were before the run touched them ({} = the row did not exist), and
    # fingerprints of the rows the run wrote, to detect later changes by someone else.
    pre_image = models.JSONField(null=True, blank=True)
    post_fingerprint = models.JSONField(null=True, blank=True)
    rolled_back = models.BooleanField(default=False)
    # What the item's work could not do exactly (e.g. a rollback: columns a trigger rewrote).
    notes = models.JSONField(null=True, blank=True)
    # The run-ledger entry this outcome came from: an entry is applied once.
    ledger_seq = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["run", "ordinal"]
        constraints = [
            models.UniqueConstraint(fields=["run", "ordinal"], name="backfill_item_ordinal"),
            models.UniqueConstraint(fields=["run", "session_id"], name="backfill_item_session"),
        ]
        indexes = [models.Index(fields=["run", "outcome"])]

    def __str__(self) -> str:
        return f"#{self.run_id}/{self.ordinal} {self.session_id} {self.outcome}"
