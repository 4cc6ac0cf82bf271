from django.conf import settings
from django.core.management.base import BaseCommand

from opsportal import embedded_pg


class Command(BaseCommand):
    help = "Status or stop of the embedded PostgreSQL used when no database URL is set."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["status", "stop"])

    def handle(self, *args, action, **options):
        datadir = settings.EMBEDDED_PG_DIR
        if action == "stop":
            stopped = embedded_pg.stop(datadir)
            self.stdout.write("stopped" if stopped else "not running")
            return
        if not settings.EMBEDDED_PG_USED:
            self.stdout.write("not used: DATABASE_URL and PIPELINE_DATABASE_URL are set")
            return
        self.stdout.write(
            f"running, data in {datadir}, socket in {settings.DATABASES['default']['HOST']}"
        )
