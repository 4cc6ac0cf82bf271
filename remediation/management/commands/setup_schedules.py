from django.conf import settings
from django.core.management.base import BaseCommand
from django_q.models import Schedule


def canary_minutes() -> int:
    """CANARY_INTERVAL_SECONDS in the whole minutes django-q2 schedules in (at least 1)."""
    return max(1, round(settings.CANARY_INTERVAL_SECONDS / 60))


# name -> (task, minutes between runs)
SCHEDULES = {
    "backfill-watchdog": ("remediation.tasks.backfill_watchdog", 1),
    "health-check": ("remediation.tasks.health_check", 5),
    "write-path-canary": ("remediation.tasks.canary", 0),  # 0: canary_minutes()
    "orphan-ledger-refresh": (
        "remediation.tasks.orphan_ledger_refresh",
        settings.ORPHAN_LEDGER_REFRESH_MINUTES,
    ),
}


class Command(BaseCommand):
    help = "Create or update the portal's django-q2 schedules (idempotent)."

    def handle(self, *args, **options):
        for name, (func, minutes) in SCHEDULES.items():
            minutes = minutes or canary_minutes()
            _, created = Schedule.objects.update_or_create(
                name=name,
                defaults={
                    "func": func,
                    "schedule_type": Schedule.MINUTES,
                    "minutes": minutes,
                    "repeats": -1,
                },
            )
            self.stdout.write(
                f"{'created' if created else 'up to date'}: {name} every {minutes} min -> {func}"
            )
