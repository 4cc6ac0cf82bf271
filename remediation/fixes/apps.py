from django.apps import AppConfig


class FixesConfig(AppConfig):
    """The pipeline fixes A, D and E: migrations of the pipeline database only.

    Their migrations are not Django's project migrations (MIGRATION_MODULES maps this app
    to None), so `manage.py migrate` never lists them on either database; the runbook and
    `manage.py fix` apply them one at a time through Django's migration executor.
    """

    name = "remediation.fixes"
    label = "pipeline_fixes"
    verbose_name = "Pipeline fixes"
