"""The portal's tables as they were after the first ten migrations, in one (squashed).

Databases that applied 0001-0010 (before the pipeline fixes moved to their own app) treat
this one as applied; new databases apply only this. Pipeline fixes are not here: they live
in remediation/fixes/migrations and touch the pipeline database only.
"""

import uuid

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    replaces = [
        ("remediation", "0001_initial"),
        ("remediation", "0002_finalize_attempts"),
        ("remediation", "0003_backfill_runs"),
        ("remediation", "0004_runbook_records"),
        ("remediation", "0005_fix_a_service_role_policy"),
        ("remediation", "0006_health"),
        ("remediation", "0007_fix_d_check_vocabulary"),
        ("remediation", "0008_fix_e_trigger_guard"),
        ("remediation", "0009_fc_changes"),
        ("remediation", "0010_audit_and_login"),
    ]

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="AssessmentResponse",
            fields=[
                ("id", models.UUIDField(primary_key=True, serialize=False)),
                ("question_id", models.IntegerField()),
                ("question_text", models.TextField()),
                ("question_type", models.TextField()),
                ("question_section", models.TextField()),
                ("answer_value", models.TextField(blank=True, null=True)),
                ("answer_numeric", models.IntegerField(blank=True, null=True)),
                ("created_at", models.DateTimeField()),
                ("updated_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "verbose_name": "answer",
                "db_table": "assessment_responses",
                "ordering": ["session_id", "question_id"],
                "abstract": False,
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="AssessmentSession",
            fields=[
                ("id", models.UUIDField(primary_key=True, serialize=False)),
                ("user_id", models.UUIDField(blank=True, null=True)),
                ("session_type", models.TextField(default="prism")),
                ("started_at", models.DateTimeField()),
                ("completed_at", models.DateTimeField(blank=True, null=True)),
                ("total_questions", models.IntegerField(blank=True, null=True)),
                ("completed_questions", models.IntegerField(blank=True, null=True)),
                ("metadata", models.JSONField(blank=True, null=True)),
                ("created_at", models.DateTimeField()),
                ("updated_at", models.DateTimeField()),
                ("email", models.TextField(blank=True, null=True)),
                (
                    "status",
                    models.TextField(
                        blank=True,
                        choices=[
                            ("in_progress", "in progress"),
                            ("completed", "completed"),
                            ("abandoned", "abandoned"),
                        ],
                        null=True,
                    ),
                ),
                ("share_token", models.TextField(unique=True)),
                ("share_token_expires_at", models.DateTimeField(blank=True, null=True)),
                ("finalized_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "verbose_name": "session",
                "db_table": "assessment_sessions",
                "ordering": ["-created_at"],
                "permissions": [("finalize_session", "Can finalize a session")],
                "abstract": False,
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="CalibrationModel",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("version", models.TextField()),
                ("method", models.TextField(default="isotonic")),
                ("stratum", models.JSONField()),
                ("knots", models.JSONField()),
                ("trained_at", models.DateTimeField()),
            ],
            options={
                "verbose_name": "calibration model",
                "db_table": "calibration_model",
                "ordering": ["-trained_at"],
                "abstract": False,
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="FcBlock",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, primary_key=True, serialize=False)),
                ("version", models.TextField()),
                ("code", models.TextField()),
                ("title", models.TextField()),
                ("description", models.TextField(blank=True, null=True)),
                ("order_index", models.IntegerField()),
                ("is_active", models.BooleanField(default=True)),
                ("created_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "verbose_name": "FC block",
                "db_table": "fc_blocks",
                "ordering": ["version", "order_index"],
                "abstract": False,
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="FcOption",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, primary_key=True, serialize=False)),
                ("option_code", models.TextField()),
                ("prompt", models.TextField()),
                ("weights_json", models.JSONField()),
                ("order_index", models.IntegerField()),
                ("created_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "verbose_name": "FC option",
                "db_table": "fc_options",
                "ordering": ["block_id", "order_index"],
                "abstract": False,
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="FcResponse",
            fields=[
                ("session_id", models.UUIDField(primary_key=True, serialize=False)),
                ("block_id", models.UUIDField()),
                ("option_id", models.UUIDField()),
                ("answered_at", models.DateTimeField()),
            ],
            options={
                "verbose_name": "FC response",
                "db_table": "fc_responses",
                "ordering": ["session_id", "block_id"],
                "abstract": False,
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="FcScore",
            fields=[
                ("session_id", models.UUIDField(primary_key=True, serialize=False)),
                ("version", models.TextField()),
                ("fc_kind", models.TextField()),
                ("scores_json", models.JSONField()),
                ("blocks_answered", models.IntegerField()),
                ("created_at", models.DateTimeField()),
            ],
            options={
                "verbose_name": "FC score",
                "db_table": "fc_scores",
                "ordering": ["session_id", "version", "fc_kind"],
                "abstract": False,
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="Profile",
            fields=[
                ("id", models.UUIDField(primary_key=True, serialize=False)),
                ("user_id", models.UUIDField(blank=True, null=True)),
                ("share_token", models.TextField(unique=True)),
                ("type_code", models.TextField(blank=True, null=True)),
                ("base_func", models.TextField(blank=True, null=True)),
                ("creative_func", models.TextField(blank=True, null=True)),
                ("top_types", models.JSONField(blank=True, null=True)),
                ("top_3_fits", models.JSONField(blank=True, null=True)),
                ("type_scores", models.JSONField(blank=True, null=True)),
                ("score_fit_raw", models.DecimalField(decimal_places=15, max_digits=30, null=True)),
                (
                    "score_fit_calibrated",
                    models.DecimalField(decimal_places=15, max_digits=30, null=True),
                ),
                ("fit_band", models.TextField(blank=True, null=True)),
                ("top_gap", models.DecimalField(decimal_places=15, max_digits=30, null=True)),
                ("close_call", models.BooleanField(default=False, null=True)),
                ("strengths", models.JSONField(blank=True, null=True)),
                ("dimensions", models.JSONField(blank=True, null=True)),
                ("dims_highlights", models.JSONField(blank=True, null=True)),
                ("blocks", models.JSONField(blank=True, null=True)),
                ("blocks_norm", models.JSONField(blank=True, null=True)),
                ("neuro_mean", models.DecimalField(decimal_places=15, max_digits=30, null=True)),
                ("neuro_z", models.DecimalField(decimal_places=15, max_digits=30, null=True)),
                ("state_index", models.DecimalField(decimal_places=15, max_digits=30, null=True)),
                ("overlay_neuro", models.TextField(blank=True, null=True)),
                ("overlay_state", models.TextField(blank=True, null=True)),
                ("overlay", models.TextField(blank=True, null=True)),
                ("validity", models.JSONField(blank=True, null=True)),
                ("validity_status", models.TextField(blank=True, null=True)),
                ("confidence", models.TextField(blank=True, null=True)),
                ("conf_raw", models.DecimalField(decimal_places=15, max_digits=30, null=True)),
                (
                    "conf_calibrated",
                    models.DecimalField(decimal_places=15, max_digits=30, null=True),
                ),
                ("conf_band", models.TextField(blank=True, null=True)),
                ("fc_answered_ct", models.IntegerField(default=0, null=True)),
                ("fc_coverage_bucket", models.TextField(blank=True, null=True)),
                ("results_version", models.TextField(blank=True, null=True)),
                ("version", models.TextField(blank=True, null=True)),
                ("submitted_at", models.DateTimeField(blank=True, null=True)),
                ("recomputed_at", models.DateTimeField(blank=True, null=True)),
                ("created_at", models.DateTimeField(blank=True, null=True)),
                ("updated_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "verbose_name": "profile",
                "db_table": "profiles",
                "ordering": ["-created_at"],
                "abstract": False,
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="ScoringConfig",
            fields=[
                ("key", models.TextField(primary_key=True, serialize=False)),
                ("value", models.JSONField()),
                ("updated_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "verbose_name": "scoring config value",
                "db_table": "scoring_config",
                "ordering": ["key"],
                "abstract": False,
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="ScoringKey",
            fields=[
                ("question_id", models.IntegerField(primary_key=True, serialize=False)),
                ("tag", models.TextField(blank=True, null=True)),
                ("scale_type", models.TextField()),
                ("reverse_scored", models.BooleanField(default=False)),
                ("fc_map", models.JSONField(blank=True, null=True)),
                ("pair_group", models.TextField(blank=True, null=True)),
                ("social_desirability", models.BooleanField(default=False)),
                ("weight", models.DecimalField(decimal_places=4, default=1, max_digits=12)),
                ("section", models.TextField(blank=True, default="core", null=True)),
            ],
            options={
                "verbose_name": "scoring key row",
                "db_table": "assessment_scoring_key",
                "ordering": ["question_id"],
                "abstract": False,
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="TypePrototype",
            fields=[
                ("type_code", models.TextField(primary_key=True, serialize=False)),
                ("func", models.TextField()),
                ("block", models.TextField()),
            ],
            options={
                "verbose_name": "type prototype",
                "db_table": "type_prototypes",
                "ordering": ["type_code", "func"],
                "abstract": False,
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="AuditEvent",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("at", models.DateTimeField(auto_now_add=True, db_index=True)),
                ("actor", models.CharField(db_index=True, max_length=150)),
                ("action", models.CharField(db_index=True, max_length=60)),
                ("target", models.CharField(blank=True, max_length=200)),
                ("sessions", models.JSONField(blank=True, default=list)),
                ("session_count", models.PositiveIntegerField(default=0)),
                ("outcome", models.CharField(blank=True, db_index=True, max_length=60)),
                ("detail", models.JSONField(blank=True, default=dict)),
            ],
            options={
                "ordering": ["-at"],
            },
        ),
        migrations.CreateModel(
            name="FcChange",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[("load", "Load"), ("rollback", "Rollback")], max_length=10
                    ),
                ),
                ("version", models.CharField(max_length=20)),
                ("at", models.DateTimeField(auto_now_add=True)),
                ("actor", models.CharField(blank=True, max_length=150)),
                ("summary", models.JSONField(default=dict)),
                ("pre_images", models.JSONField(default=dict)),
                ("undone_at", models.DateTimeField(blank=True, null=True)),
                ("undone_by", models.CharField(blank=True, max_length=150)),
            ],
            options={
                "verbose_name": "FC set change",
                "ordering": ["-at"],
                "permissions": [
                    ("manage_fc", "Can load, roll back and recompute forced-choice sets")
                ],
            },
        ),
        migrations.CreateModel(
            name="LoginFailure",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("username", models.CharField(db_index=True, max_length=150)),
                ("address", models.CharField(blank=True, db_index=True, max_length=64)),
                ("at", models.DateTimeField(auto_now_add=True, db_index=True)),
            ],
        ),
        migrations.CreateModel(
            name="MetricSnapshot",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("taken_at", models.DateTimeField(db_index=True)),
                ("window", models.CharField(max_length=8)),
                ("figures", models.JSONField()),
            ],
            options={
                "ordering": ["-taken_at"],
            },
        ),
        migrations.CreateModel(
            name="SessionDiagnosis",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("session_id", models.UUIDField(unique=True)),
                ("checked_at", models.DateTimeField()),
                ("category", models.CharField(db_index=True, max_length=40)),
                ("sqlstate", models.CharField(blank=True, max_length=5)),
                ("constraint_name", models.CharField(blank=True, max_length=200)),
                ("table_name", models.CharField(blank=True, max_length=200)),
                (
                    "value",
                    models.TextField(
                        blank=True, help_text="The offending value, for a CHECK failure"
                    ),
                ),
                ("error_message", models.TextField(blank=True)),
                ("explanation", models.TextField()),
                ("events", models.JSONField(blank=True, default=list)),
            ],
            options={
                "verbose_name_plural": "session diagnoses",
                "ordering": ["-checked_at"],
            },
        ),
        migrations.CreateModel(
            name="OrphanedSession",
            fields=[],
            options={
                "verbose_name": "orphaned session",
                "ordering": ["-completed_at"],
                "proxy": True,
                "indexes": [],
                "constraints": [],
            },
            bases=("remediation.assessmentsession",),
        ),
        migrations.CreateModel(
            name="Alert",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("rule", models.CharField(db_index=True, max_length=40)),
                ("severity", models.CharField(max_length=20)),
                (
                    "state",
                    models.CharField(
                        choices=[("open", "Open"), ("resolved", "Resolved")],
                        db_index=True,
                        default="open",
                        max_length=10,
                    ),
                ),
                ("message", models.TextField()),
                ("value", models.FloatField(blank=True, null=True)),
                ("first_seen", models.DateTimeField()),
                ("last_seen", models.DateTimeField()),
                ("resolved_at", models.DateTimeField(blank=True, null=True)),
                ("acknowledged_by", models.CharField(blank=True, max_length=150)),
                ("acknowledged_at", models.DateTimeField(blank=True, null=True)),
                ("notify_attempts", models.PositiveIntegerField(default=0)),
                ("notified_at", models.DateTimeField(blank=True, null=True)),
                ("last_notify_error", models.TextField(blank=True)),
            ],
            options={
                "ordering": ["-first_seen"],
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("state", "open")),
                        fields=("rule",),
                        name="one_open_alert_per_rule",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="BackfillRun",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("enqueued", "Enqueued"),
                            ("running", "Running"),
                            ("pausing", "Pausing"),
                            ("paused", "Paused"),
                            ("cancelling", "Cancelling"),
                            ("cancelled", "Cancelled"),
                            ("interrupted", "Interrupted"),
                            ("succeeded", "Succeeded"),
                            ("errored", "Errored"),
                        ],
                        db_index=True,
                        default="enqueued",
                        max_length=12,
                    ),
                ),
                (
                    "selection",
                    models.CharField(
                        choices=[
                            ("window", "completion-date window"),
                            ("ids", "explicit session ids"),
                            ("csv", "uploaded CSV of ids"),
                            ("filter", "all orphans matching a filter"),
                        ],
                        max_length=10,
                    ),
                ),
                ("selection_params", models.JSONField(blank=True, default=dict)),
                ("backend", models.CharField(default="local", max_length=10)),
                ("batch_size", models.PositiveIntegerField(default=200)),
                (
                    "throttle_per_minute",
                    models.PositiveIntegerField(
                        blank=True,
                        help_text="Sessions per minute; empty = as fast as possible",
                        null=True,
                    ),
                ),
                ("dry_run", models.BooleanField(default=False)),
                (
                    "rescore",
                    models.BooleanField(
                        default=False, help_text="Re-score sessions that have a profile"
                    ),
                ),
                (
                    "cursor",
                    models.PositiveIntegerField(
                        default=0, help_text="Items with ordinal < cursor are done"
                    ),
                ),
                (
                    "batch_token",
                    models.CharField(
                        blank=True, help_text="The batch task allowed to run next", max_length=32
                    ),
                ),
                ("estimated_total", models.PositiveIntegerField(default=0)),
                ("processed", models.PositiveIntegerField(default=0)),
                ("created", models.PositiveIntegerField(default=0)),
                ("rescored", models.PositiveIntegerField(default=0)),
                ("existing", models.PositiveIntegerField(default=0)),
                ("failed", models.PositiveIntegerField(default=0)),
                (
                    "skipped",
                    models.PositiveIntegerField(default=0, help_text="Dry run, or busy elsewhere"),
                ),
                ("failed_by_reason", models.JSONField(blank=True, default=dict)),
                ("started_by_name", models.CharField(blank=True, max_length=150)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("started_at", models.DateTimeField(blank=True, null=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                ("heartbeat_at", models.DateTimeField(blank=True, null=True)),
                ("state_changed_at", models.DateTimeField(blank=True, null=True)),
                (
                    "message",
                    models.TextField(
                        blank=True, help_text="Why the run is paused, errored or interrupted"
                    ),
                ),
                ("rolled_back_at", models.DateTimeField(blank=True, null=True)),
                ("rollback_report", models.JSONField(blank=True, default=dict)),
                (
                    "started_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at"],
                "permissions": [
                    ("run_backfill", "Can start, pause, resume and cancel backfills"),
                    ("rollback_backfill", "Can roll back a backfill run"),
                    ("run_large_backfill", "Can start backfills larger than SUPPORT_MAX_BACKFILL"),
                ],
            },
        ),
        migrations.CreateModel(
            name="RunbookRecord",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("checks", "checks"),
                            ("probe", "write-path probe"),
                            ("verification", "verification"),
                            ("change", "change"),
                        ],
                        db_index=True,
                        max_length=20,
                    ),
                ),
                ("label", models.CharField(blank=True, max_length=200)),
                ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                ("created_by_name", models.CharField(blank=True, max_length=150)),
                ("results", models.JSONField(default=dict)),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "IR-07 runbook record",
                "ordering": ["-created_at"],
                "permissions": [
                    ("run_runbook", "Can run the IR-07 runbook: checks, fixes, rollbacks and gates")
                ],
            },
        ),
        migrations.CreateModel(
            name="BackfillItem",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("ordinal", models.PositiveIntegerField()),
                ("session_id", models.UUIDField()),
                (
                    "outcome",
                    models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("created", "Created"),
                            ("rescored", "Rescored"),
                            ("existing", "Existing"),
                            ("failed", "Failed"),
                            ("skipped", "Skipped"),
                            ("busy", "Busy"),
                        ],
                        default="pending",
                        max_length=10,
                    ),
                ),
                ("reason", models.CharField(blank=True, max_length=40)),
                ("sqlstate", models.CharField(blank=True, max_length=5)),
                ("constraint_name", models.CharField(blank=True, max_length=200)),
                ("error", models.TextField(blank=True)),
                ("profile_id", models.UUIDField(blank=True, null=True)),
                ("type_code", models.CharField(blank=True, max_length=3)),
                ("results_url", models.CharField(blank=True, max_length=500)),
                ("processed_at", models.DateTimeField(blank=True, null=True)),
                ("tries", models.PositiveSmallIntegerField(default=0)),
                ("pre_image", models.JSONField(blank=True, null=True)),
                ("post_fingerprint", models.JSONField(blank=True, null=True)),
                ("rolled_back", models.BooleanField(default=False)),
                (
                    "run",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="items",
                        to="remediation.backfillrun",
                    ),
                ),
            ],
            options={
                "ordering": ["run", "ordinal"],
                "indexes": [
                    models.Index(fields=["run", "outcome"], name="remediation_run_id_1c6376_idx")
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("run", "ordinal"), name="backfill_item_ordinal"
                    ),
                    models.UniqueConstraint(
                        fields=("run", "session_id"), name="backfill_item_session"
                    ),
                ],
            },
        ),
        migrations.CreateModel(
            name="FinalizeAttempt",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("session_id", models.UUIDField(db_index=True)),
                (
                    "backend",
                    models.CharField(
                        choices=[
                            ("local", "local (Python engine, service_role write)"),
                            ("edge", "edge function (finalizeAssessment)"),
                        ],
                        max_length=10,
                    ),
                ),
                (
                    "source",
                    models.CharField(
                        default="admin", help_text="admin, cli, backfill, runbook", max_length=20
                    ),
                ),
                ("requested_by_name", models.CharField(blank=True, max_length=150)),
                ("rescore", models.BooleanField(default=False)),
                ("started_at", models.DateTimeField(db_index=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                ("duration_ms", models.FloatField(blank=True, null=True)),
                (
                    "outcome",
                    models.CharField(
                        choices=[
                            ("created", "profile created"),
                            ("rescored", "profile re-scored"),
                            ("existing", "already had a profile"),
                            ("failed", "failed"),
                            ("ok_without_profile", "edge said ok, no profile written"),
                            ("unknown", "unknown (timed out, not settled)"),
                        ],
                        db_index=True,
                        max_length=20,
                    ),
                ),
                (
                    "reason",
                    models.CharField(
                        blank=True,
                        help_text="Machine-readable failure category (rls, check, …)",
                        max_length=40,
                    ),
                ),
                ("sqlstate", models.CharField(blank=True, db_index=True, max_length=5)),
                ("constraint_name", models.CharField(blank=True, max_length=200)),
                ("table_name", models.CharField(blank=True, max_length=200)),
                ("error_message", models.TextField(blank=True)),
                (
                    "explanation",
                    models.TextField(blank=True, help_text="The failure in plain words"),
                ),
                ("http_status", models.IntegerField(blank=True, null=True)),
                ("events", models.JSONField(blank=True, default=list)),
                ("profile_id", models.UUIDField(blank=True, null=True)),
                ("type_code", models.CharField(blank=True, max_length=3)),
                ("results_version", models.CharField(blank=True, max_length=20)),
                ("results_url", models.CharField(blank=True, max_length=500)),
                ("run_id", models.BigIntegerField(blank=True, db_index=True, null=True)),
                (
                    "requested_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["-started_at"],
                "indexes": [
                    models.Index(
                        fields=["session_id", "-started_at"], name="remediation_session_5c5e9d_idx"
                    )
                ],
            },
        ),
    ]


# Audit records are immutable in the database itself, not only in the admin.
IMMUTABLE = """
CREATE OR REPLACE FUNCTION remediation_audit_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit records are immutable (% refused)', TG_OP;
END
$$;
DROP TRIGGER IF EXISTS remediation_audit_immutable ON remediation_auditevent;
CREATE TRIGGER remediation_audit_immutable BEFORE UPDATE OR DELETE ON remediation_auditevent
  FOR EACH ROW EXECUTE FUNCTION remediation_audit_immutable();
"""
REVERSE = """
DROP TRIGGER IF EXISTS remediation_audit_immutable ON remediation_auditevent;
DROP FUNCTION IF EXISTS remediation_audit_immutable();
"""
Migration.operations.append(migrations.RunSQL(IMMUTABLE, REVERSE, hints={"target_db": "default"}))
