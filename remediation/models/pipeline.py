"""Unmanaged models over the Supabase tables of the PRISM pipeline (spec: pipeline.md).

Django never creates, alters or deletes these tables (`managed = False`); the router
sends them to the `pipeline` database. Tables whose real key spans several columns
(type_prototypes, fc_responses, fc_scores) declare one of those columns as the Django
primary key because the admin cannot register composite keys; they are only ever
listed read-only and queried by their real key columns.
"""

from __future__ import annotations

import uuid

from django.db import models


class LiveColumnsManager(models.Manager):
    """Leaves out (defers) the fields whose column the live table lacks: a real pipeline
    database may not have every optional column the emulation has (finalized_at,
    share_token_expires_at, profiles.share_token, ...). The live shape is read from
    information_schema, at most every PIPELINE_SCHEMA_TTL seconds."""

    def get_queryset(self) -> models.QuerySet:
        from remediation.pipeline.schema import missing_fields

        queryset = super().get_queryset()
        missing = missing_fields(self.model)
        return queryset.defer(*missing) if missing else queryset


class PipelineModel(models.Model):
    """Base for the pipeline's tables: unmanaged, routed to the `pipeline` database."""

    PIPELINE = True

    objects = LiveColumnsManager()

    class Meta:
        abstract = True
        managed = False
        base_manager_name = "objects"


class AssessmentSession(PipelineModel):
    STATUS_IN_PROGRESS = "in_progress"
    STATUS_COMPLETED = "completed"
    STATUS_ABANDONED = "abandoned"
    STATUS_CHOICES = [
        (STATUS_IN_PROGRESS, "in progress"),
        (STATUS_COMPLETED, "completed"),
        (STATUS_ABANDONED, "abandoned"),
    ]

    id = models.UUIDField(primary_key=True)
    user_id = models.UUIDField(null=True, blank=True)
    session_type = models.TextField(default="prism")
    started_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    total_questions = models.IntegerField(null=True, blank=True)
    completed_questions = models.IntegerField(null=True, blank=True)
    metadata = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    email = models.TextField(null=True, blank=True)
    status = models.TextField(null=True, blank=True, choices=STATUS_CHOICES)
    share_token = models.TextField(unique=True)
    share_token_expires_at = models.DateTimeField(null=True, blank=True)
    finalized_at = models.DateTimeField(null=True, blank=True)

    class Meta(PipelineModel.Meta):
        db_table = "assessment_sessions"
        verbose_name = "session"
        ordering = ["-created_at"]
        permissions = [("finalize_session", "Can finalize a session")]

    def __str__(self) -> str:
        return str(self.id)


class OrphanedSession(AssessmentSession):
    """A completed session without a profile: the incident's orphans (a proxy)."""

    class Meta:
        proxy = True
        verbose_name = "orphaned session"
        ordering = ["-completed_at"]


class OrphanLedgerRow(models.Model):
    """One row of the portal's orphan ledger (`<PIPELINE_PORTAL_SCHEMA>.orphan_ledger` in the
    pipeline database, found through the connection's search_path): a session that was an
    orphan at the ledger's last refresh, with the sort keys it had then. Only a keyed,
    indexed walk for the orphan list; every row is checked live before it is shown
    (remediation/selectors/orphan_ledger.py). Created from the runbook, never by a migration.
    """

    PIPELINE = True

    session_id = models.UUIDField(primary_key=True)
    completed_at = models.DateTimeField(null=True)
    email = models.TextField(null=True)

    class Meta:
        managed = False
        db_table = "orphan_ledger"
        verbose_name = "orphan ledger row"

    def __str__(self) -> str:
        return str(self.session_id)


class AssessmentResponse(PipelineModel):
    id = models.UUIDField(primary_key=True)
    session = models.ForeignKey(
        AssessmentSession,
        on_delete=models.DO_NOTHING,
        db_column="session_id",
        related_name="responses",
    )
    question_id = models.IntegerField()
    question_text = models.TextField()
    question_type = models.TextField()
    question_section = models.TextField()
    answer_value = models.TextField(null=True, blank=True)
    answer_numeric = models.IntegerField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta(PipelineModel.Meta):
        db_table = "assessment_responses"
        verbose_name = "answer"
        ordering = ["session_id", "question_id"]

    def __str__(self) -> str:
        return f"{self.session_id} q{self.question_id}"

    @property
    def effective_answer(self) -> str | None:
        """coalesce(answer_value, answer_numeric::text), as the portal scores it."""
        if self.answer_value is not None:
            return self.answer_value
        return None if self.answer_numeric is None else str(self.answer_numeric)


class ScoringKey(PipelineModel):
    question_id = models.IntegerField(primary_key=True)
    tag = models.TextField(null=True, blank=True)
    scale_type = models.TextField()
    reverse_scored = models.BooleanField(default=False)
    fc_map = models.JSONField(null=True, blank=True)
    pair_group = models.TextField(null=True, blank=True)
    social_desirability = models.BooleanField(default=False)
    weight = models.DecimalField(max_digits=12, decimal_places=4, default=1)
    section = models.TextField(null=True, blank=True, default="core")

    class Meta(PipelineModel.Meta):
        db_table = "assessment_scoring_key"
        verbose_name = "scoring key row"
        ordering = ["question_id"]

    def __str__(self) -> str:
        return f"q{self.question_id} {self.tag or ''} {self.scale_type}".strip()


class ScoringConfig(PipelineModel):
    key = models.TextField(primary_key=True)
    value = models.JSONField()
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta(PipelineModel.Meta):
        db_table = "scoring_config"
        verbose_name = "scoring config value"
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class TypePrototype(PipelineModel):
    # Real key: (type_code, func).
    type_code = models.TextField(primary_key=True)
    func = models.TextField()
    block = models.TextField()

    class Meta(PipelineModel.Meta):
        db_table = "type_prototypes"
        verbose_name = "type prototype"
        ordering = ["type_code", "func"]

    def __str__(self) -> str:
        return f"{self.type_code}.{self.func} = {self.block}"


class CalibrationModel(PipelineModel):
    id = models.BigAutoField(primary_key=True)
    version = models.TextField()
    method = models.TextField(default="isotonic")
    stratum = models.JSONField()
    knots = models.JSONField()
    trained_at = models.DateTimeField()

    class Meta(PipelineModel.Meta):
        db_table = "calibration_model"
        verbose_name = "calibration model"
        ordering = ["-trained_at"]

    def __str__(self) -> str:
        return f"{self.version} {self.stratum}"


class Profile(PipelineModel):
    id = models.UUIDField(primary_key=True)
    session = models.OneToOneField(
        AssessmentSession,
        on_delete=models.DO_NOTHING,
        db_column="session_id",
        related_name="profile",
    )
    user_id = models.UUIDField(null=True, blank=True)
    share_token = models.TextField(unique=True)
    type_code = models.TextField(null=True, blank=True)
    base_func = models.TextField(null=True, blank=True)
    creative_func = models.TextField(null=True, blank=True)
    top_types = models.JSONField(null=True, blank=True)
    top_3_fits = models.JSONField(null=True, blank=True)
    type_scores = models.JSONField(null=True, blank=True)
    score_fit_raw = models.DecimalField(max_digits=30, decimal_places=15, null=True)
    score_fit_calibrated = models.DecimalField(max_digits=30, decimal_places=15, null=True)
    fit_band = models.TextField(null=True, blank=True)
    top_gap = models.DecimalField(max_digits=30, decimal_places=15, null=True)
    close_call = models.BooleanField(null=True, default=False)
    strengths = models.JSONField(null=True, blank=True)
    dimensions = models.JSONField(null=True, blank=True)
    dims_highlights = models.JSONField(null=True, blank=True)
    blocks = models.JSONField(null=True, blank=True)
    blocks_norm = models.JSONField(null=True, blank=True)
    neuro_mean = models.DecimalField(max_digits=30, decimal_places=15, null=True)
    neuro_z = models.DecimalField(max_digits=30, decimal_places=15, null=True)
    state_index = models.DecimalField(max_digits=30, decimal_places=15, null=True)
    overlay_neuro = models.TextField(null=True, blank=True)
    overlay_state = models.TextField(null=True, blank=True)
    overlay = models.TextField(null=True, blank=True)
    validity = models.JSONField(null=True, blank=True)
    validity_status = models.TextField(null=True, blank=True)
    confidence = models.TextField(null=True, blank=True)
    conf_raw = models.DecimalField(max_digits=30, decimal_places=15, null=True)
    conf_calibrated = models.DecimalField(max_digits=30, decimal_places=15, null=True)
    conf_band = models.TextField(null=True, blank=True)
    fc_answered_ct = models.IntegerField(null=True, default=0)
    fc_coverage_bucket = models.TextField(null=True, blank=True)
    results_version = models.TextField(null=True, blank=True)
    version = models.TextField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    recomputed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta(PipelineModel.Meta):
        db_table = "profiles"
        verbose_name = "profile"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.type_code or '?'} {self.results_version or ''} ({self.session_id})"


class FcBlock(PipelineModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    version = models.TextField()
    code = models.TextField()
    title = models.TextField()
    description = models.TextField(null=True, blank=True)
    order_index = models.IntegerField()
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(null=True, blank=True)

    class Meta(PipelineModel.Meta):
        db_table = "fc_blocks"
        verbose_name = "FC block"
        ordering = ["version", "order_index"]

    def __str__(self) -> str:
        return f"{self.version}/{self.code}"


class FcOption(PipelineModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    block = models.ForeignKey(
        FcBlock, on_delete=models.DO_NOTHING, db_column="block_id", related_name="options"
    )
    option_code = models.TextField()
    prompt = models.TextField()
    weights_json = models.JSONField()
    order_index = models.IntegerField()
    created_at = models.DateTimeField(null=True, blank=True)

    class Meta(PipelineModel.Meta):
        db_table = "fc_options"
        verbose_name = "FC option"
        ordering = ["block_id", "order_index"]

    def __str__(self) -> str:
        return f"{self.block_id}/{self.option_code}"


class FcResponse(PipelineModel):
    # Real key: (session_id, block_id).
    session_id = models.UUIDField(primary_key=True)
    block_id = models.UUIDField()
    option_id = models.UUIDField()
    answered_at = models.DateTimeField()

    class Meta(PipelineModel.Meta):
        db_table = "fc_responses"
        verbose_name = "FC response"
        ordering = ["session_id", "block_id"]

    def __str__(self) -> str:
        return f"{self.session_id} {self.block_id}"


class FcScore(PipelineModel):
    # Real key: (session_id, version, fc_kind).
    session_id = models.UUIDField(primary_key=True)
    version = models.TextField()
    fc_kind = models.TextField()
    scores_json = models.JSONField()
    blocks_answered = models.IntegerField()
    created_at = models.DateTimeField()

    class Meta(PipelineModel.Meta):
        db_table = "fc_scores"
        verbose_name = "FC score"
        ordering = ["session_id", "version", "fc_kind"]

    def __str__(self) -> str:
        return f"{self.session_id} {self.version}/{self.fc_kind}"
