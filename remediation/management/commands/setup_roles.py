from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand

VIEW_MODELS = [
    "assessmentsession",
    "orphanedsession",
    "assessmentresponse",
    "profile",
    "scoringkey",
    "scoringconfig",
    "typeprototype",
    "calibrationmodel",
    "fcblock",
    "fcoption",
    "fcresponse",
    "fcscore",
    "fcchange",
    "finalizeattempt",
    "sessiondiagnosis",
    "backfillrun",
    "runbookrecord",
    "alert",
    "metricsnapshot",
    "auditevent",
    "canaryresult",
    "autoheal",
    "resultsnotification",
    "suppressedaddress",
]
VIEWER = [f"remediation.view_{m}" for m in VIEW_MODELS]
SUPPORT = [
    *VIEWER,
    "remediation.finalize_session",
    "remediation.run_backfill",
    "remediation.change_alert",
    "remediation.send_results",
]
ENGINEER = [
    *SUPPORT,
    "remediation.run_large_backfill",
    "remediation.use_edge_backend",
    "remediation.rollback_backfill",
    "remediation.run_runbook",
    "remediation.manage_fc",
    "remediation.manage_auto_heal",
    "remediation.add_fcblock",
    "remediation.change_fcblock",
    "remediation.add_fcoption",
    "remediation.change_fcoption",
    "remediation.add_suppressedaddress",
    "remediation.change_suppressedaddress",
    "remediation.delete_suppressedaddress",
]
ROLES = {"Viewer": VIEWER, "Support": SUPPORT, "Engineer": ENGINEER}


class Command(BaseCommand):
    help = "Create or update the Viewer, Support and Engineer groups (idempotent; extra permissions removed)."

    def handle(self, *args, **options):
        for name, codes in ROLES.items():
            perms = []
            for code in codes:
                app, codename = code.split(".")
                perm = Permission.objects.filter(
                    content_type__app_label=app, codename=codename
                ).first()
                if perm is None:
                    raise SystemExit(f"unknown permission {code}: run manage.py migrate first")
                perms.append(perm)
            group, created = Group.objects.get_or_create(name=name)
            group.permissions.set(perms)
            self.stdout.write(
                f"{'created' if created else 'updated'} {name}: {len(perms)} permissions"
            )
