from typing import Any

from django.apps import AppConfig


class RemediationConfig(AppConfig):
    name = "remediation"
    verbose_name = "PRISM pipeline"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created
        from django.db.models.signals import pre_migrate

        from opsportal import checks  # noqa: F401  (registers the system checks)
        from remediation.pipeline import timeouts

        pre_migrate.connect(refuse_pipeline_migrate, sender=self)
        # Lock and statement timeouts on the pipeline connection raise PipelineTimeout.
        connection_created.connect(timeouts.install, dispatch_uid="pipeline-timeouts")


def refuse_pipeline_migrate(
    sender: Any, using: str = "default", plan: Any = None, **kwargs: Any
) -> None:
    """`manage.py migrate --database pipeline` would record the portal's migrations in the
    pipeline database; it only ever receives the fixes, through the runbook or `manage.py fix`."""
    from django.core.management.base import CommandError

    if using == "pipeline" and plan:
        raise CommandError(
            "The pipeline database takes no portal migrations. Apply the IR-07 fixes from the "
            "runbook page or with `manage.py fix apply A|D|E`."
        )
