from django.apps import AppConfig


class RemediationConfig(AppConfig):
    name = "remediation"
    verbose_name = "PRISM pipeline"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from opsportal import checks  # noqa: F401  (registers the system checks)
