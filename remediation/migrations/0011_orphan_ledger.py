"""The orphan ledger's model (unmanaged: its table is created from the runbook, in the
portal's schema of the pipeline database; this migration runs no SQL)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("remediation", "0010_canary"),
    ]

    operations = [
        migrations.CreateModel(
            name="OrphanLedgerRow",
            fields=[
                ("session_id", models.UUIDField(primary_key=True, serialize=False)),
                ("completed_at", models.DateTimeField(null=True)),
                ("email", models.TextField(null=True)),
            ],
            options={
                "verbose_name": "orphan ledger row",
                "db_table": "orphan_ledger",
                "managed": False,
            },
        ),
    ]
