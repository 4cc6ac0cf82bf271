from django.conf import settings
from django.core.management.base import BaseCommand

from remediation.dev.emulation import load_emulated_schema


class Command(BaseCommand):
    help = "Create the emulated Supabase roles, auth functions and pipeline tables (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--database", default="pipeline")
        parser.add_argument(
            "--bypassrls",
            choices=["on", "off"],
            help="service_role BYPASSRLS (default: EMULATE_SERVICE_ROLE_BYPASSRLS)",
        )
        parser.add_argument(
            "--fc-trigger",
            choices=["on", "off"],
            help="carry the recursive update_fc_metrics_trigger (default: EMULATE_FC_METRICS_TRIGGER)",
        )

    def handle(self, *args, database, bypassrls, fc_trigger, **options):
        bypass = settings.EMULATE_SERVICE_ROLE_BYPASSRLS if bypassrls is None else bypassrls == "on"
        trigger = settings.EMULATE_FC_METRICS_TRIGGER if fc_trigger is None else fc_trigger == "on"
        load_emulated_schema(
            using=database, service_role_bypassrls=bypass, fc_metrics_trigger=trigger
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Emulated Supabase schema loaded into {database!r} "
                f"(service_role BYPASSRLS {'on' if bypass else 'off'}, "
                f"fc metrics trigger {'on' if trigger else 'off'})."
            )
        )
