from django.apps import AppConfig


class RemediationConfig(AppConfig):
    name = "remediation"
    verbose_name = "PRISM pipeline"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import pre_migrate

        from opsportal import checks  # noqa: F401  (registers the system checks)
        from remediation.pipeline_migrations import ensure_portal_schema

        pre_migrate.connect(ensure_portal_schema, sender=self)
