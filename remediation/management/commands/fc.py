import json

from django.core.management.base import BaseCommand, CommandError

from remediation import reference_data
from remediation.selectors.fc import coverage
from remediation.services import fc
from remediation.services.fc_sets import FcSetInvalid, read_set


class Command(BaseCommand):
    help = "Forced-choice block sets: load (upsert, --dry-run diff), rollback, undo, coverage, recompute."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        load = sub.add_parser("load", help="load a set (default: the shipped v1.2 set)")
        load.add_argument("file", nargs="?", default=str(reference_data.fc_seed_path()))
        load.add_argument("--dry-run", action="store_true")
        rollback = sub.add_parser("rollback", help="remove a version (undoable)")
        rollback.add_argument("version")
        undo = sub.add_parser("undo", help="undo a rollback")
        undo.add_argument("change_id", type=int)
        cov = sub.add_parser("coverage", help="FC coverage figures")
        cov.add_argument("--json", action="store_true")
        rec = sub.add_parser("recompute", help="recompute FC scores of sessions")
        rec.add_argument("session_ids", nargs="+")
        rec.add_argument(
            "--refinalize", action="store_true", help="re-score the profile afterwards"
        )

    def handle(self, *args, action, **o):
        try:
            if action == "load":
                diff = fc.fc_set_load(read_set(o["file"]), dry_run=o["dry_run"], actor="cli")
                verb = "would change" if o["dry_run"] else "changed"
                counts = f"{len(diff.created)} new, {len(diff.updated)} updated"
                self.stdout.write(
                    f"FC {diff.version}: {verb} {diff.changes} rows ({counts}), {diff.unchanged} unchanged"
                )
                for line in diff.created + diff.updated:
                    self.stdout.write(f"  {line}")
            elif action == "rollback":
                change = fc.fc_version_rollback(o["version"], actor="cli")
                self.stdout.write(
                    f"Rolled back FC {change.version} (#{change.pk}, undo with: fc undo {change.pk}): "
                    + ", ".join(f"{n} {t}" for t, n in change.summary.items())
                )
            elif action == "undo":
                change = fc.fc_change_undo(o["change_id"], actor="cli")
                self.stdout.write(f"Restored FC {change.version} from rollback #{change.pk}.")
            elif action == "coverage":
                report = coverage()
                self.stdout.write(json.dumps(report, indent=2) if o["json"] else _text(report))
            else:
                results = fc.fc_scores_recompute(
                    o["session_ids"], refinalize=o["refinalize"], actor="cli"
                )
                for sid, entry in results.items():
                    names = ", ".join(e["name"] for e in entry["events"])
                    self.stdout.write(
                        f"{sid}: {names}"
                        + (f"; finalize {entry['finalize']}" if "finalize" in entry else "")
                    )
        except (FcSetInvalid, ValueError) as exc:
            raise CommandError(str(exc)) from exc


def _text(report) -> str:
    lines = [
        f"{v['version']}: {v['active_blocks']}/{v['blocks']} active blocks, {v['active_options']} active options"
        for v in report["versions"]
    ] or ["no FC blocks"]
    lines.append(
        f"FC responses pointing to options that do not exist: {report['responses_without_option']}"
    )
    lines.append(
        f"sessions with legacy FC answers but no FC scores: {report['legacy_sessions_without_scores']}"
    )
    odd = (
        ", ".join(f"{r['version']}/{r['fc_kind']} {r['count']}" for r in report["odd_scores"])
        or "none"
    )
    lines.append(f"FC scores with a version other than v1.2 or a kind other than functions: {odd}")
    return "\n".join(lines)
