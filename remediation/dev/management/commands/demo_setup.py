import secrets
from pathlib import Path

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
        token, written = ensure_metrics_token(settings.METRICS_TOKEN.reveal(), settings.ENV_FILE)
        if written:  # made here for the demo: shown once, as the demo login is
            self.stdout.write(
                f"Metrics token: {token} (written to {settings.ENV_FILE}; restart a running "
                f"portal): /metrics wants Authorization: Bearer {token}"
            )
        else:  # configured by someone else: never printed (it may be a real one)
            self.stdout.write("Metrics token: configured (METRICS_TOKEN); not printed.")


def ensure_metrics_token(current: str, env_file: Path) -> tuple[str, bool]:
    """The demo's /metrics token: the configured one, else a new one written to the env
    file (METRICS_TOKEN=...), so /metrics answers in the demo. (token, whether written)."""
    if current:
        return current, False
    token = secrets.token_urlsafe(24)
    line = f"METRICS_TOKEN={token}"
    lines = env_file.read_text().splitlines() if env_file.exists() else []
    at = [i for i, old in enumerate(lines) if old.startswith("METRICS_TOKEN=")]
    if at:
        lines[at[0]] = line  # in place, under its comment from .env.example
    else:
        lines.append(line)
    env_file.write_text("\n".join(lines) + "\n")
    env_file.chmod(0o600)
    return token, True
