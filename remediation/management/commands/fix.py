from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from remediation.fixes import executor
from remediation.fixes.forms import FORMS
from remediation.services.fixes import fix_apply
from remediation.services.runbook import runbook_record_save


class Command(BaseCommand):
    help = "The IR-07 pipeline fixes A, D, E: status, apply or roll back one (recorded like the runbook page)."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["status", "apply", "rollback"])
        parser.add_argument("name", nargs="?", choices=sorted(executor.FIXES), help="A, D or E")
        parser.add_argument(
            "--form",
            choices=sorted(FORMS),
            help="Fix A only: the plan's policy (TO public; a forged service_role claim passes,"
            " the default) or the strict one (TO service_role)",
        )

    def handle(self, *args, action, name, form=None, **options):
        if action == "status":
            applied = executor.applied()
            for fix in executor.FIXES:
                state = "applied" if fix in applied else "not applied"
                if fix == "A" and fix in applied:
                    chosen = executor.applied_form()
                    state += f", {FORMS[chosen].label}" if chosen in FORMS else ""
                self.stdout.write(f"{executor.TITLES[fix]}: {state}")
            return
        if name is None:
            raise CommandError(f"{action} needs a fix name: A, D or E")
        if form is not None and (name != "A" or action != "apply"):
            raise CommandError("--form is for `fix apply A` only")
        try:
            result = fix_apply(name, reverse=action == "rollback", form=form)
        except DatabaseError as exc:
            raise CommandError(
                f"the pipeline database refused: {str(exc).splitlines()[0]}"
            ) from exc
        runbook_record_save(
            user=None, kind="change", results=result, label=f"cli: fix {action} {name}"
        )
        if result["outcome"] == "refused":
            raise CommandError(result["change"])
        after = result["diagnosis_after"]
        self.stdout.write(
            f"{result['change']}. Test session now: {after['category']} {after['sqlstate']}".strip()
        )
