import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connections

from remediation.dev.emulation import load_emulated_schema


class Command(BaseCommand):
    help = (
        "Prepare the demo: migrate the portal database, load the emulated Supabase schema, "
        "seed the incident if the pipeline is empty, and create a demo superuser."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--reseed", action="store_true", help="seed the incident again")

    def handle(self, *args, username, reseed, **options):
        call_command("migrate", interactive=False, verbosity=0)
        call_command("setup_schedules", verbosity=0, stdout=self.stdout)
        call_command("setup_roles", verbosity=0, stdout=self.stdout)
        load_emulated_schema(using="pipeline")
        with connections["pipeline"].cursor() as cur:
            cur.execute("SELECT count(*) FROM public.assessment_sessions")
            empty = cur.fetchone()[0] == 0
        if empty or reseed:
            call_command("seed_demo", no_schema=True, stdout=self.stdout)
            # Fill the orphan list's "why no profile" column from real (rolled-back) writes.
            call_command("diagnose", orphans=True, stdout=self.stdout)
            # First health snapshot: the incident's alerts are open from the start.
            from remediation.services.health import health_check_run

            opened = health_check_run()["opened"]
            self.stdout.write(f"Health check: alerts open: {', '.join(opened) or 'none'}.")
        password_file = settings.BASE_DIR / ".demo-login"
        user_model = get_user_model()
        user = user_model.objects.filter(username=username).first()
        if user is None or not password_file.exists():
            password = secrets.token_urlsafe(12)
            if user is None:
                user = user_model.objects.create_superuser(username, "admin@example.org", password)
            else:
                user.set_password(password)
                user.save(update_fields=["password"])
            password_file.write_text(f"{username} {password}\n")
            password_file.chmod(0o600)
        login, password = password_file.read_text().split()
        self.stdout.write(self.style.SUCCESS(f"Demo login: {login} / {password}"))
