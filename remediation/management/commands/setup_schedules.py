from django.core.management.base import BaseCommand
from django_q.models import Schedule

# name -> (task, minutes between runs)
SCHEDULES = {
    "backfill-watchdog": ("remediation.tasks.backfill_watchdog", 1),
    "health-check": ("remediation.tasks.health_check", 5),
}


class Command(BaseCommand):
    help = "Create or update the portal's django-q2 schedules (idempotent)."

    def handle(self, *args, **options):
        for name, (func, minutes) in SCHEDULES.items():
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
