import sys
import time

from django.core.management.base import BaseCommand, CommandError

from remediation import jobs
from remediation.models import BackfillRun
from remediation.selectors.notifications import created_sessions
from remediation.services.notifications import results_send_start


class Command(BaseCommand):
    help = (
        "Send people their results link (a notify run on the job queue) and follow its "
        "progress: the people whose profiles a backfill created (--run N), or sessions by id."
    )

    def add_arguments(self, parser):
        sel = parser.add_mutually_exclusive_group(required=True)
        sel.add_argument("--run", type=int, metavar="RUN_ID", help="a backfill run")
        sel.add_argument("--ids", nargs="+", metavar="SESSION_ID")
        parser.add_argument("--dry-run", action="store_true", help="evaluate, send nothing")
        parser.add_argument(
            "--resend", action="store_true", help="send again, even to people already sent it"
        )
        parser.add_argument(
            "--sync", action="store_true", help="send in this process, not the job queue"
        )
        parser.add_argument("--no-wait", action="store_true", help="enqueue and return")

    def handle(self, *args, **o):
        if o["run"] is not None:
            source = BackfillRun.objects.filter(pk=o["run"], kind="finalize").first()
            if source is None:
                raise CommandError(f"no backfill run #{o['run']}")
            ids = created_sessions(source)
            if not ids:
                raise CommandError(f"backfill #{source.pk} created no profile: nobody to tell")
        else:
            try:
                ids = jobs.parse_id_list("\n".join(o["ids"]))
            except jobs.SelectionError as exc:
                raise CommandError(str(exc)) from exc
        try:
            run = results_send_start(
                session_ids=ids,
                actor="cli",
                source_run_id=o["run"],
                dry_run=o["dry_run"],
                resend=o["resend"],
                enqueue=not o["sync"],
            )
        except jobs.RunError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Notification run #{run.pk}: {run.estimated_total} people"
            + (" (dry run)" if run.dry_run else "")
        )
        if o["no_wait"]:
            return
        run = jobs.run_until_done(run.pk, progress=self._bar) if o["sync"] else self._follow(run.pk)
        self.stdout.write("")
        self.stdout.write(f"Notification run #{run.pk} {run.get_state_display()}: {run.message}")
        if run.state != BackfillRun.State.SUCCEEDED:
            raise CommandError(
                f"notification run #{run.pk} is {run.get_state_display()}: {jobs.failures(run)} "
                "failed or unknown; see its page"
            )

    def _follow(self, run_id):
        try:
            while True:
                run = BackfillRun.objects.get(pk=run_id)
                self._bar(run)
                if run.state in jobs.STOPPED:
                    return run
                time.sleep(1)
        except KeyboardInterrupt:
            self.stdout.write(f"\nStopped following; run #{run_id} goes on.")
            sys.exit(0)

    def _bar(self, run):
        total = max(run.estimated_total, 1)
        done = min(run.processed, total)
        filled = int(30 * done / total)
        c = run.counts or {}
        self.stdout.write(
            f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{run.estimated_total} "
            f"{100 * done / total:5.1f}%  sent {c.get('sent', 0)}  skipped {c.get('skipped', 0)}  "
            f"failed {c.get('failed', 0)}  unknown {c.get('unknown', 0)}  "
            f"{run.get_state_display():<22}",
            ending="",
        )
        self.stdout.flush()
