"""A finalize attempt names the statement that failed (profile write, session update)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("remediation", "0003_finished_states"),
    ]

    operations = [
        migrations.AddField(
            model_name="finalizeattempt",
            name="failed_statement",
            field=models.CharField(
                blank=True, help_text="profile write, session update, FC score write", max_length=20
            ),
        ),
    ]
