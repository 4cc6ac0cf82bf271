import json

from django.core.management.base import BaseCommand, CommandError

from remediation.pipeline import load_context
from remediation.services import InvalidSessionId, normalize_session_id, session_finalize


class Command(BaseCommand):
    help = "Finalize sessions (score and write their profiles), recording every attempt."

    def add_arguments(self, parser):
        parser.add_argument("session_ids", nargs="+", metavar="SESSION_ID")
        parser.add_argument("--backend", choices=["local", "edge"], default="local")
        parser.add_argument(
            "--rescore", action="store_true", help="re-score sessions that have a profile"
        )
        parser.add_argument("--json", action="store_true", help="one JSON object per session")

    def handle(self, *args, session_ids, backend, rescore, json: bool, **options):
        try:
            ids = [normalize_session_id(s) for s in session_ids]
        except InvalidSessionId as exc:
            raise CommandError(str(exc)) from exc
        context = load_context() if backend == "local" else None
        failed = 0
        for sid in ids:
            attempt = session_finalize(
                session_id=sid,
                backend=backend,
                rescore=rescore,
                source="cli",
                actor="cli",
                context=context,
            )
            if not attempt.succeeded:
                failed += 1
            if json:
                self.stdout.write(_dumps(attempt))
            else:
                line = f"{sid} {attempt.outcome}"
                if attempt.succeeded:
                    line += f" {attempt.type_code} {attempt.results_version} {attempt.results_url}"
                else:
                    line += f" {attempt.reason}" + (
                        f" [{attempt.sqlstate}]" if attempt.sqlstate else ""
                    )
                    line += f": {attempt.explanation}"
                style = self.style.SUCCESS if attempt.succeeded else self.style.ERROR
                self.stdout.write(style(line))
        if failed:
            raise CommandError(f"{failed} of {len(ids)} sessions were not finalized")


def _dumps(attempt) -> str:
    return json.dumps(
        {
            "session_id": str(attempt.session_id),
            "backend": attempt.backend,
            "outcome": attempt.outcome,
            "reason": attempt.reason,
            "sqlstate": attempt.sqlstate,
            "constraint": attempt.constraint_name,
            "explanation": attempt.explanation,
            "profile_id": str(attempt.profile_id) if attempt.profile_id else None,
            "type_code": attempt.type_code,
            "results_version": attempt.results_version,
            "results_url": attempt.results_url,
            "events": attempt.events,
            "duration_ms": round(attempt.duration_ms or 0, 1),
            "attempt_id": attempt.pk,
        }
    )
