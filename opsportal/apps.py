from django.contrib.admin import apps as admin_apps


class OpsAdminConfig(admin_apps.AdminConfig):
    """Django's admin with the portal's site (custom pages at /admin/runbook/, /admin/health/)."""

    default = False  # named explicitly in INSTALLED_APPS; not the opsportal app's own config
    default_site = "opsportal.admin_site.OpsAdminSite"
