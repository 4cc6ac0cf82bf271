from django.core.management.base import BaseCommand, CommandError

from remediation.dev.demo import DemoRefused
from remediation.dev.fc_answers import demo_fc_responses


class Command(BaseCommand):
    help = "Demo databases only: FC answers for the newest completed sessions (as the web client saved them)."

    def add_arguments(self, parser):
        parser.add_argument("--sessions", type=int, default=20)

    def handle(self, *args, sessions, **options):
        try:
            n = demo_fc_responses(sessions)
        except DemoRefused as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"FC answers written for the {n} newest completed sessions.")
