import json
from collections import Counter

from django.core.management.base import BaseCommand, CommandError

from remediation import selectors
from remediation.pipeline import load_context
from remediation.services import InvalidSessionId, normalize_session_id, session_diagnose


class Command(BaseCommand):
    help = (
        "Why has a session no profile? Tries the profile write as service_role and rolls it "
        "back; saves the answer for the orphan list."
    )

    def add_arguments(self, parser):
        parser.add_argument("session_ids", nargs="*", metavar="SESSION_ID")
        parser.add_argument(
            "--orphans", action="store_true", help="diagnose every orphaned session"
        )
        parser.add_argument("--limit", type=int, default=10_000, help="at most this many orphans")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, session_ids, orphans, limit, json: bool, **options):
        try:
            ids = [normalize_session_id(s) for s in session_ids]
        except InvalidSessionId as exc:
            raise CommandError(str(exc)) from exc
        if orphans:
            ids += [
                str(pk)
                for pk in selectors.orphaned_sessions()
                .order_by("-completed_at")
                .values_list("pk", flat=True)[:limit]
            ]
        if not ids:
            raise CommandError("give session ids or --orphans")
        ctx = load_context()
        tally: Counter[str] = Counter()
        for sid in ids:
            d = session_diagnose(session_id=sid, context=ctx)
            tally[d.category] += 1
            if json:
                self.stdout.write(_dumps(d))
            elif len(ids) <= 50:
                code = f" [{d.sqlstate}]" if d.sqlstate else ""
                self.stdout.write(f"{sid} {d.category}{code}: {d.explanation}")
        if not json:
            self.stdout.write("Summary: " + ", ".join(f"{n} {c}" for c, n in tally.most_common()))


def _dumps(d) -> str:
    return json.dumps(
        {
            "session_id": d.session_id,
            "category": d.category,
            "sqlstate": d.sqlstate,
            "constraint": d.constraint,
            "value": d.value,
            "explanation": d.explanation,
        }
    )
