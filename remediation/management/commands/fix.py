from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from remediation.fixes import executor
from remediation.services.fixes import fix_apply
from remediation.services.runbook import runbook_record_save


class Command(BaseCommand):
    help = "The IR-07 pipeline fixes A, D, E: status, apply or roll back one (recorded like the runbook page)."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["status", "apply", "rollback"])
        parser.add_argument("name", nargs="?", choices=sorted(executor.FIXES), help="A, D or E")

    def handle(self, *args, action, name, **options):
        if action == "status":
            applied = executor.applied()
            for fix in executor.FIXES:
                state = "applied" if fix in applied else "not applied"
                self.stdout.write(f"{executor.TITLES[fix]}: {state}")
            return
        if name is None:
            raise CommandError(f"{action} needs a fix name: A, D or E")
        try:
            result = fix_apply(name, reverse=action == "rollback")
        except DatabaseError as exc:
            raise CommandError(
                f"the pipeline database refused: {str(exc).splitlines()[0]}"
            ) from exc
        runbook_record_save(
            user=None, kind="change", results=result, label=f"cli: fix {action} {name}"
        )
        after = result["diagnosis_after"]
        self.stdout.write(
            f"{result['change']}. Test session now: {after['category']} {after['sqlstate']}".strip()
        )
