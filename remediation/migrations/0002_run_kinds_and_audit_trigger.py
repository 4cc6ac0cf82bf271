"""Runs get kinds (backfill, rollback, diagnosis); django-axes replaces LoginFailure;
django-pgtrigger's Protect replaces the hand-written audit immutability trigger."""

import django.db.models.deletion
import pgtrigger.compiler
import pgtrigger.migrations
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("remediation", "0001_squashed_0010_audit_and_login"),
    ]

    operations = [
        migrations.RunSQL(
            "DROP TRIGGER IF EXISTS remediation_audit_immutable ON remediation_auditevent;"
            " DROP FUNCTION IF EXISTS remediation_audit_immutable();",
            # Back to 0001: its hand-written trigger again.
            "CREATE OR REPLACE FUNCTION remediation_audit_immutable() RETURNS trigger"
            " LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit records are immutable (% refused)',"
            " TG_OP; END $$; CREATE TRIGGER remediation_audit_immutable BEFORE UPDATE OR DELETE"
            " ON remediation_auditevent FOR EACH ROW EXECUTE FUNCTION remediation_audit_immutable();",
            hints={"target_db": "default"},
        ),
        migrations.DeleteModel(
            name="LoginFailure",
        ),
        migrations.AlterModelOptions(
            name="backfillrun",
            options={
                "ordering": ["-created_at"],
                "permissions": [
                    ("run_backfill", "Can start, pause, resume and cancel backfills"),
                    ("rollback_backfill", "Can roll back a backfill run"),
                    ("run_large_backfill", "Can start backfills larger than SUPPORT_MAX_BACKFILL"),
                ],
                "verbose_name": "run",
            },
        ),
        migrations.AddField(
            model_name="backfillrun",
            name="counts",
            field=models.JSONField(blank=True, default=dict, help_text="Items per outcome"),
        ),
        migrations.AddField(
            model_name="backfillrun",
            name="kind",
            field=models.CharField(
                choices=[
                    ("finalize", "backfill (finalize)"),
                    ("rollback", "roll back a run"),
                    ("diagnosis", "bulk diagnosis"),
                ],
                db_index=True,
                default="finalize",
                max_length=10,
            ),
        ),
        migrations.AddField(
            model_name="backfillrun",
            name="source_run",
            field=models.ForeignKey(
                blank=True,
                help_text="For a rollback: the run whose changes it restores",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="follow_up_runs",
                to="remediation.backfillrun",
            ),
        ),
        migrations.AlterField(
            model_name="backfillitem",
            name="outcome",
            field=models.CharField(
                choices=[
                    ("pending", "Pending"),
                    ("created", "Created"),
                    ("rescored", "Rescored"),
                    ("existing", "Existing"),
                    ("failed", "Failed"),
                    ("skipped", "Skipped"),
                    ("busy", "Busy"),
                    ("restored", "Restored"),
                    ("conflict", "Conflict"),
                    ("diagnosed", "Diagnosed"),
                ],
                default="pending",
                max_length=10,
            ),
        ),
        migrations.AlterField(
            model_name="backfillrun",
            name="selection",
            field=models.CharField(
                choices=[
                    ("window", "completion-date window"),
                    ("ids", "explicit session ids"),
                    ("csv", "uploaded CSV of ids"),
                    ("filter", "all orphans matching a filter"),
                    ("run", "the sessions another run changed"),
                ],
                max_length=10,
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="auditevent",
            trigger=pgtrigger.compiler.Trigger(
                name="audit_immutable",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func="RAISE EXCEPTION 'pgtrigger: Cannot update or delete rows from % table', TG_TABLE_NAME;",
                    hash="b3b10b878e932f187c7e4968888e71807742a030",
                    operation="UPDATE OR DELETE",
                    pgid="pgtrigger_audit_immutable_4d698",
                    table="remediation_auditevent",
                    when="BEFORE",
                ),
            ),
        ),
    ]
