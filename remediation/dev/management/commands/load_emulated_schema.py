from django.conf import settings
from django.core.management.base import BaseCommand

from remediation.dev.emulation import VARIANTS, current_variant, load_emulated_schema


class Command(BaseCommand):
    help = (
        "Create the emulated Supabase roles, auth functions and pipeline tables (idempotent); "
        "switching to the other variant drops the emulated pipeline tables first."
    )

    def add_arguments(self, parser):
        parser.add_argument("--database", default="pipeline")
        parser.add_argument(
            "--variant",
            choices=VARIANTS,
            help="emulation (the spec's database) or rebuilt (rebuilt from the migrations); "
            "default: EMULATED_SCHEMA",
        )
        parser.add_argument(
            "--reset",
            action="store_true",
            help="drop the emulated pipeline tables (and their rows) first",
        )
        parser.add_argument(
            "--bypassrls",
            choices=["on", "off"],
            help="emulation only: service_role BYPASSRLS (default: EMULATE_SERVICE_ROLE_BYPASSRLS)",
        )
        parser.add_argument(
            "--fc-trigger",
            choices=["on", "off"],
            help="emulation only: carry the recursive update_fc_metrics_trigger "
            "(default: EMULATE_FC_METRICS_TRIGGER)",
        )

    def handle(self, *args, database, variant, reset, bypassrls, fc_trigger, **options):
        variant = variant or settings.EMULATED_SCHEMA
        before = current_variant(using=database)
        bypass = settings.EMULATE_SERVICE_ROLE_BYPASSRLS if bypassrls is None else bypassrls == "on"
        trigger = settings.EMULATE_FC_METRICS_TRIGGER if fc_trigger is None else fc_trigger == "on"
        load_emulated_schema(
            using=database,
            service_role_bypassrls=bypass,
            fc_metrics_trigger=trigger,
            variant=variant,
            reset=True if reset else None,
        )
        replaced = f", replacing the {before!r} variant" if before and before != variant else ""
        if variant == "rebuilt":
            detail = "service_role BYPASSRLS on, fc metrics trigger on, FC v1.2 seeded"
        else:
            detail = (
                f"service_role BYPASSRLS {'on' if bypass else 'off'}, "
                f"fc metrics trigger {'on' if trigger else 'off'}"
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Emulated Supabase schema {variant!r} loaded into {database!r}{replaced} ({detail})."
            )
        )
