"""Pipeline models leave out the columns a live table lacks (their manager; no table changes)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("remediation", "0004_attempt_failed_statement"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="assessmentresponse",
            options={
                "base_manager_name": "objects",
                "managed": False,
                "ordering": ["session_id", "question_id"],
                "verbose_name": "answer",
            },
        ),
        migrations.AlterModelOptions(
            name="assessmentsession",
            options={
                "base_manager_name": "objects",
                "managed": False,
                "ordering": ["-created_at"],
                "permissions": [("finalize_session", "Can finalize a session")],
                "verbose_name": "session",
            },
        ),
        migrations.AlterModelOptions(
            name="calibrationmodel",
            options={
                "base_manager_name": "objects",
                "managed": False,
                "ordering": ["-trained_at"],
                "verbose_name": "calibration model",
            },
        ),
        migrations.AlterModelOptions(
            name="fcblock",
            options={
                "base_manager_name": "objects",
                "managed": False,
                "ordering": ["version", "order_index"],
                "verbose_name": "FC block",
            },
        ),
        migrations.AlterModelOptions(
            name="fcoption",
            options={
                "base_manager_name": "objects",
                "managed": False,
                "ordering": ["block_id", "order_index"],
                "verbose_name": "FC option",
            },
        ),
        migrations.AlterModelOptions(
            name="fcresponse",
            options={
                "base_manager_name": "objects",
                "managed": False,
                "ordering": ["session_id", "block_id"],
                "verbose_name": "FC response",
            },
        ),
        migrations.AlterModelOptions(
            name="fcscore",
            options={
                "base_manager_name": "objects",
                "managed": False,
                "ordering": ["session_id", "version", "fc_kind"],
                "verbose_name": "FC score",
            },
        ),
        migrations.AlterModelOptions(
            name="profile",
            options={
                "base_manager_name": "objects",
                "managed": False,
                "ordering": ["-created_at"],
                "verbose_name": "profile",
            },
        ),
        migrations.AlterModelOptions(
            name="scoringconfig",
            options={
                "base_manager_name": "objects",
                "managed": False,
                "ordering": ["key"],
                "verbose_name": "scoring config value",
            },
        ),
        migrations.AlterModelOptions(
            name="scoringkey",
            options={
                "base_manager_name": "objects",
                "managed": False,
                "ordering": ["question_id"],
                "verbose_name": "scoring key row",
            },
        ),
        migrations.AlterModelOptions(
            name="typeprototype",
            options={
                "base_manager_name": "objects",
                "managed": False,
                "ordering": ["type_code", "func"],
                "verbose_name": "type prototype",
            },
        ),
    ]
