from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from remediation.dev.demo import DemoRefused, seed_demo
from remediation.dev.emulation import VARIANTS, load_emulated_schema


class Command(BaseCommand):
    help = (
        "Fill the (emulated) pipeline database with a deterministic incident: sessions over "
        "about 60 days, 131 historic v1.2.0 profiles, no profile for the last 20 days."
    )

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
        parser.add_argument("--sessions", type=int, default=475, help="sessions (default 475)")
        parser.add_argument("--days", type=int, default=60, help="days covered (default 60)")
        parser.add_argument(
            "--answer-sets",
            type=int,
            default=20_000,
            help="full 248-answer sets for the newest N sessions (default 20000)",
        )
        parser.add_argument(
            "--now",
            help="ISO timestamp the incident is relative to (default: now); fixes the data",
        )
        parser.add_argument("--database", default="pipeline")
        parser.add_argument(
            "--no-schema", action="store_true", help="do not (re)load the emulated schema first"
        )
        parser.add_argument(
            "--variant",
            choices=VARIANTS,
            help="emulated schema to (re)load first (default: EMULATED_SCHEMA); "
            "switching variants drops the emulated pipeline tables",
        )
        parser.add_argument(
            "--force", action="store_true", help="replace sessions seed_demo did not write"
        )

    def handle(self, *args, **opts):
        now = datetime.fromisoformat(opts["now"]) if opts["now"] else datetime.now(UTC)
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        now = now.astimezone(UTC)
        if not opts["no_schema"]:
            load_emulated_schema(using=opts["database"], variant=opts["variant"])
        try:
            stats = seed_demo(
                seed=opts["seed"],
                sessions=opts["sessions"],
                days=opts["days"],
                now=now,
                answer_sets=opts["answer_sets"],
                force=opts["force"],
                using=opts["database"],
            )
        except (DemoRefused, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Seeded {stats.sessions} sessions ({stats.completed} completed, "
            f"{stats.in_progress} in progress, {stats.abandoned} abandoned), "
            f"{stats.profiles} historic v1.2.0 profiles, {stats.responses} answers "
            f"({stats.answer_sets} full answer sets, {stats.numeric_only_sessions} sessions "
            f"with Likert answers only in answer_numeric)."
        )
        self.stdout.write(
            self.style.WARNING(
                f"Orphaned sessions (completed, no profile): {stats.orphans}, "
                f"{stats.orphans_last_20_days} of them completed in the last 20 days."
            )
        )
        detail = ", ".join(f"{k} {v:.1f}s" for k, v in stats.timings.items())
        self.stdout.write(f"Elapsed: {stats.seconds:.1f}s ({detail}).")
