import json
from dataclasses import asdict

from django.core.management.base import BaseCommand, CommandError

from remediation.models import RunbookRecord
from remediation.pipeline.timeouts import PipelineTimeout
from remediation.selectors.checks import run_checks
from remediation.services.probe import probe_write_path


class Command(BaseCommand):
    help = "Run the IR-07 checks live against the pipeline database (the runbook page's checks)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print the results as JSON")
        parser.add_argument("--save", metavar="LABEL", help="save the run as a runbook record")
        parser.add_argument("--probe", action="store_true", help="also run the write-path probe")

    def handle(self, *args, json: bool, save: str | None, probe: bool, **options):
        try:
            checks = [asdict(c) for c in run_checks()]
            probe_result = probe_write_path() if probe else None
        except PipelineTimeout as exc:
            raise CommandError(f"{exc.message} Nothing was changed; try again.") from None
        if save is not None:
            RunbookRecord.objects.create(
                kind="checks", label=save, results={"checks": checks}, created_by_name="cli"
            )
            if probe_result:
                RunbookRecord.objects.create(
                    kind="probe", label=save, results=probe_result, created_by_name="cli"
                )
        if json:
            self.stdout.write(
                _dumps({"checks": checks, **({"probe": probe_result} if probe_result else {})})
            )
            return
        for c in checks:
            style = {
                "PASS": self.style.SUCCESS,
                "WARN": self.style.WARNING,
                "FAIL": self.style.ERROR,
            }.get(c["status"], str)
            self.stdout.write(
                style(f"{c['status']:4}  {c['title']}: {c['figure']}  (expected {c['expected']})")
            )
            if c["detail"]:
                self.stdout.write(f"      {c['detail']}")
        if probe_result:
            self.stdout.write("\nWrite-path probe (rolled back):")
            for cell in probe_result["cells"]:
                self.stdout.write(
                    f"  {cell['role']:14} claim {cell['claim']:36} SELECT {cell['select']:28} INSERT {cell['insert']}"
                )
            for note in probe_result["notes"]:
                self.stdout.write(f"  - {note}")


def _dumps(value) -> str:
    return json.dumps(value, indent=2, default=str)
