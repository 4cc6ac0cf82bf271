"""Items note what their work could not do exactly (a rollback: columns a trigger rewrote)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("remediation", "0005_live_columns_manager"),
    ]

    operations = [
        migrations.AddField(
            model_name="backfillitem",
            name="notes",
            field=models.JSONField(blank=True, null=True),
        ),
    ]
