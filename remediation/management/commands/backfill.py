import json
import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from remediation import jobs
from remediation.jobs.engine import kind_of
from remediation.models import BackfillRun
from remediation.services import runs

# Following a run ends when it stops (ended, cancelled, errored, paused or interrupted).
STOPPED = jobs.STOPPED


class Command(BaseCommand):
    help = (
        "Start a backfill of orphaned sessions (as a django-q2 job) and follow its progress, "
        "or steer an existing run."
    )

    def add_arguments(self, parser):
        sel = parser.add_argument_group("selection (one of)")
        sel.add_argument("--from", dest="completed_from", help="completed on or after YYYY-MM-DD")
        sel.add_argument("--to", dest="completed_to", help="completed on or before YYYY-MM-DD")
        sel.add_argument("--ids", nargs="+", metavar="SESSION_ID")
        sel.add_argument(
            "--csv",
            type=Path,
            help="a file of session ids (any separator, or a header row's session_id column)",
        )
        sel.add_argument(
            "--all-orphans", action="store_true", help="every orphan (narrow with --from/--to/--fc)"
        )
        sel.add_argument(
            "--fc", choices=["responses", "none"], help="with --all-orphans: FC presence"
        )
        opt = parser.add_argument_group("parameters")
        opt.add_argument("--backend", choices=["local", "edge"], default="local")
        opt.add_argument("--batch-size", type=int, default=200)
        opt.add_argument("--throttle", type=int, help="sessions per minute")
        opt.add_argument("--dry-run", action="store_true")
        opt.add_argument(
            "--exclude-held",
            action="store_true",
            help="leave out sessions another active run holds (default: refuse to start)",
        )
        opt.add_argument(
            "--rescore", action="store_true", help="re-score sessions that have a profile"
        )
        run = parser.add_argument_group("running")
        run.add_argument(
            "--sync", action="store_true", help="process in this process, not the job queue"
        )
        run.add_argument("--no-wait", action="store_true", help="enqueue and return")
        ctl = parser.add_argument_group("steer an existing run")
        for name in ("watch", "pause", "resume", "cancel", "retry-failed", "rollback"):
            ctl.add_argument(f"--{name}", type=int, metavar="RUN_ID")
        parser.add_argument("--json", action="store_true", help="print the final run as JSON")

    def handle(self, *args, **o):
        try:
            for name in ("pause", "resume", "cancel", "retry_failed", "rollback", "watch"):
                if o[name] is not None:
                    return self._control(name, o[name], o)
            run = self._start(o)
        except jobs.RunError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Backfill #{run.pk}: {run.estimated_total} sessions, backend {run.backend}"
            + (" (dry run)" if run.dry_run else "")
        )
        if o["no_wait"]:
            return
        run = jobs.run_until_done(run.pk, progress=self._bar) if o["sync"] else self._follow(run.pk)
        self._done(run, o["json"])

    def _start(self, o):
        params = {
            "completed_from": o["completed_from"],
            "completed_to": o["completed_to"],
            "fc": o["fc"],
        }
        ids = None
        if o["ids"]:
            selection, ids = "ids", jobs.parse_id_list("\n".join(o["ids"]))
        elif o["csv"]:
            try:
                text = o["csv"].read_text(encoding="utf-8-sig")
            except OSError as exc:
                raise CommandError(f"cannot read {o['csv']}: {exc.strerror}") from exc
            except UnicodeDecodeError as exc:
                raise CommandError(
                    f"{o['csv']} is not UTF-8 text (byte {exc.start}: {exc.reason})"
                ) from exc
            selection, ids = "csv", jobs.parse_id_list(text)
        elif o["all_orphans"]:
            selection = "filter"
        elif o["completed_from"] or o["completed_to"]:
            selection = "window"
        else:
            raise CommandError("choose a selection: --from/--to, --ids, --csv or --all-orphans")
        from remediation.services.runs import backfill_start_exclusive

        return backfill_start_exclusive(
            overlap="exclude" if o["exclude_held"] else "refuse",
            selection=selection,
            params=params,
            ids=ids,
            backend=o["backend"],
            batch_size=o["batch_size"],
            throttle_per_minute=o["throttle"],
            dry_run=o["dry_run"],
            rescore=o["rescore"],
            actor="cli",
            enqueue=not o["sync"],
        )

    def _control(self, name, run_id, o):
        if not BackfillRun.objects.filter(pk=run_id).exists():
            raise CommandError(f"no backfill run #{run_id}")
        if name == "watch":
            return self._done(self._follow(run_id), o["json"])
        if name == "rollback":
            try:
                rollback = jobs.run_rollback(run_id, actor="cli", enqueue=False)
            except jobs.RunError as exc:
                raise CommandError(str(exc)) from exc
            rollback = jobs.run_until_done(rollback.pk, progress=self._bar)
            self.stdout.write("")
            report = BackfillRun.objects.get(pk=run_id).rollback_report
            self.stdout.write(json.dumps(report, indent=2))
            return _exit_status(rollback)
        action = {
            "pause": runs.run_pause,
            "resume": runs.run_resume,
            "cancel": runs.run_cancel,
            "retry_failed": runs.run_retry_failed,
        }[name]
        run = action(run_id, actor="cli")
        self.stdout.write(f"Backfill #{run.pk} is now {run.state}.")

    def _follow(self, run_id):
        """Poll the run and draw a progress bar until it stops (Ctrl-C leaves it running)."""
        try:
            while True:
                run = BackfillRun.objects.get(pk=run_id)
                self._bar(run)
                if run.state in STOPPED:
                    return run
                time.sleep(1)
        except KeyboardInterrupt:
            self.stdout.write(
                f"\nStopped following; the run goes on (manage.py backfill --watch {run_id})."
            )
            sys.exit(0)

    def _bar(self, run):
        total = max(run.estimated_total, 1)
        done = min(run.processed, total)
        width = 30
        filled = int(width * done / total)
        line = (
            f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{run.estimated_total} "
            f"{100 * done / total:5.1f}%  created {run.created}  existing {run.existing}  "
            f"failed {run.failed}  {run.get_state_display():<22}"
        )
        self.stdout.write(line, ending="")
        self.stdout.flush()

    def _done(self, run, as_json):
        """Print the outcome; exit 0 only when the run succeeded (no session failed)."""
        self.stdout.write("")
        if as_json:
            self.stdout.write(
                json.dumps(
                    {
                        "run": run.pk,
                        "state": run.state,
                        "state_label": run.get_state_display(),
                        "processed": run.processed,
                        "created": run.created,
                        "rescored": run.rescored,
                        "existing": run.existing,
                        "failed": run.failed,
                        "skipped": run.skipped,
                        "failed_by_reason": run.failed_by_reason,
                        "rounds": run.rounds,
                        "message": run.message,
                    }
                )
            )
        else:
            self.stdout.write(
                f"Backfill #{run.pk} {run.get_state_display()}: {kind_of(run).summary(run)}"
            )
            if run.failed_by_reason:
                self.stdout.write(
                    "Failed by reason: "
                    + ", ".join(f"{k} {v}" for k, v in run.failed_by_reason.items())
                )
        _exit_status(run)


_NOTHING = {
    "finalize": "no profile was written",
    "rollback": "nothing was restored",
    "diagnosis": "nothing was diagnosed",
}


def _exit_status(run):
    """Nothing when the run succeeded; otherwise a CommandError (exit code 1) whose message
    is the last line: what happened and what to do."""
    State = BackfillRun.State
    if run.state == State.SUCCEEDED:
        return
    name = str(run).rsplit(" (", 1)[0]  # "Backfill #3", "Rollback #4"
    reasons = ", ".join(f"{k} {v}" for k, v in (run.failed_by_reason or {}).items())
    detail = f" ({reasons})" if reasons else ""
    if run.state == State.FAILED:
        raise CommandError(
            f"{name}: all {run.processed} sessions failed{detail}; {_NOTHING.get(run.kind, '')}"
        )
    if run.state == State.FINISHED_WITH_FAILURES:
        raise CommandError(
            f"{name} finished with failures: {jobs.failures(run)} of {run.processed} "
            f"sessions failed{detail}; see its page, or retry with --retry-failed {run.pk}"
        )
    if run.state == State.ERRORED:
        raise CommandError(f"{name} errored: {run.message or 'no message'}")
    raise CommandError(
        f"{name} is {run.get_state_display()}, not finished"
        + (f": {run.message}" if run.message else "")
    )
