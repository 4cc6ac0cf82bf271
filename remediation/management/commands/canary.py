"""manage.py canary: one write-path canary pass, its outcome, the alert updated like the
schedule does; exit status 1 when the write path is broken."""

from django.core.management.base import BaseCommand

from remediation.models import CanaryResult
from remediation.services.canary import alert_message, canary_run


class Command(BaseCommand):
    help = (
        "Run one write-path canary pass (a new session's insert, profile write and session "
        "update, rolled back); print the outcome; exit 1 when the write path is broken."
    )

    def handle(self, *args, **options):
        result = canary_run(source="cli")
        if result.outcome == CanaryResult.Outcome.OK:
            self.stdout.write(
                self.style.SUCCESS(
                    f"ok: {result.rows_written} engine rows written and rolled back"
                    f" in {result.duration_ms:.0f} ms"
                )
            )
            return
        if result.outcome == CanaryResult.Outcome.FAILED:
            self.stdout.write(self.style.ERROR(f"BROKEN: {alert_message(result)}"))
            self.stdout.write(f"SQLSTATE {result.sqlstate}: {result.message}")
            raise SystemExit(1)
        # busy or error: no verdict on the write path (the alert is left as it was)
        self.stdout.write(
            self.style.WARNING(
                f"{result.outcome}: no verdict ({result.sqlstate or 'no SQLSTATE'}):"
                f" {result.explanation or result.message}"
            )
        )
        raise SystemExit(2)
