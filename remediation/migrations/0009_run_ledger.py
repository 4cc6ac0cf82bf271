"""The run ledger's keys: each run's ledger_key (distinct for existing runs too) and the
ledger entry each item took its outcome from."""

import uuid

from django.db import migrations, models


def distinct_keys(apps, schema_editor):
    run = apps.get_model("remediation", "BackfillRun")
    for pk in run.objects.values_list("pk", flat=True):
        run.objects.filter(pk=pk).update(ledger_key=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [("remediation", "0008_item_not_before")]

    operations = [
        migrations.AddField(
            model_name="backfillrun",
            name="ledger_key",
            field=models.UUIDField(null=True, editable=False),
        ),
        migrations.RunPython(distinct_keys, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="backfillrun",
            name="ledger_key",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
        migrations.AddField(
            model_name="backfillitem",
            name="ledger_seq",
            field=models.BigIntegerField(blank=True, null=True),
        ),
    ]
