from django.apps import AppConfig


class DevConfig(AppConfig):
    """Demo seeding, the edge-function emulator, the emulated schemas (DEV_TOOLS only)."""

    name = "remediation.dev"
    label = "remediation_dev"
    verbose_name = "Demo and test doubles"
