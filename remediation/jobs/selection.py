"""Which sessions a run covers: pasted or uploaded ids, a completion-date window, a filter."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import date, datetime, timedelta
from typing import Any

from django.utils import timezone

from remediation import selectors
from remediation.jobs.engine import TERMINAL, UNSETTLED, RunError
from remediation.models import BackfillItem, BackfillRun


class SelectionError(RunError):
    """The selection is malformed or empty; the message says why. `problems` lists every
    bad or unknown id one by one (the admin shows each on its own line)."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


# Pasted ids may be separated by newlines, commas, semicolons, spaces or tabs, in any mix.
ID_SEPARATORS = re.compile(r"[\s,;]+")
MAX_LISTED = 500  # problems listed one by one; beyond that, the count of the rest


def parse_id_list(text: str, *, check_known: bool = False) -> list[str]:
    """Session ids from free text or a CSV, in order, each once.

    Free text: every token between newlines, commas, semicolons, spaces or tabs is an id.
    A CSV with a `session_id` (or `id`) column in its header row: that column's values (the
    other columns are ignored). Every malformed token is reported at once with its line,
    and with `check_known` every id that is not a session of the pipeline database too;
    nothing is dropped silently and nothing is returned unless every id is good.
    """
    rows = _csv_rows(text, _delimiter(text))
    column: int | None = None
    if rows:
        header = [c.strip().lower() for c in rows[0]]
        if "session_id" in header or "id" in header:
            column = header.index("session_id") if "session_id" in header else header.index("id")
            rows = [[], *rows[1:]]
    ids: list[str] = []
    line_of: dict[str, int] = {}
    problems: list[tuple[int, str]] = []
    for number, row in enumerate(rows, start=1):
        cells = row if column is None else row[column : column + 1]
        for token in (t for cell in cells for t in ID_SEPARATORS.split(cell) if t):
            try:
                sid = str(uuid.UUID(token.strip("\"'")))
            except ValueError:
                problems.append((number, f"{token[:60]!r} is not a session id"))
                continue
            if sid not in line_of:
                line_of[sid] = number
                ids.append(sid)
    if check_known and ids:
        problems += [
            (line_of[sid], f"{sid} is {UNKNOWN}") for sid in selectors.unknown_session_ids(ids)
        ]
    if problems:
        listed = [f"line {n}: {text}" for n, text in sorted(problems, key=lambda p: p[0])]
        raise SelectionError(_listing(listed), listed)
    if not ids:
        raise SelectionError("no session ids given")
    return ids


UNKNOWN = "not a session in the pipeline database"


def check_known(ids: list[str]) -> None:
    """SelectionError listing every id that is not a session of the pipeline database."""
    listed = [f"{sid} is {UNKNOWN}" for sid in selectors.unknown_session_ids(ids)]
    if listed:
        raise SelectionError(_listing(listed), listed)


def _listing(problems: list[str]) -> str:
    more = len(problems) - MAX_LISTED
    return (
        f"{len(problems)} of the ids cannot be used, nothing was started: "
        + "; ".join(problems[:MAX_LISTED])
        + (f" (and {more} more)" if more > 0 else "")
    )


def _delimiter(text: str) -> str:
    """The CSV delimiter of the first non-empty line: a comma, else a semicolon, else a tab."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    return next((d for d in (",", ";", "\t") if d in first), ",")


def _csv_rows(text: str, delimiter: str = ",") -> list[list[str]]:
    """The rows of a CSV text; a malformed CSV is a SelectionError naming the line."""
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise SelectionError(f"line {line}: the text contains a NUL byte (not a CSV of ids)")
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
    rows: list[list[str]] = []
    while True:
        first_line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return rows
        except csv.Error as exc:
            message = str(exc)
            if "field larger than field limit" in message:
                raise SelectionError(
                    f"line {first_line}: a field is longer than {csv.field_size_limit():,}"
                    " characters (a session id has 36)"
                ) from None
            if "unexpected end of data" in message:
                raise SelectionError(f"line {first_line}: a quoted field is never closed") from None
            raise SelectionError(f"line {reader.line_num}: not valid CSV ({message})") from None
        rows.append(row)


def _day(value: Any) -> date | None:
    if not value:
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise SelectionError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def reversed_range(start: date, end: date) -> str:
    """What is wrong with a date range whose start is after its end (no session can match)."""
    return (
        f"the date range is reversed: from {start:%Y-%m-%d} is after to {end:%Y-%m-%d}, so no"
        " session can match; swap the two dates"
    )


def selection_queryset(selection: str, params: dict[str, Any], rescore: bool = False) -> Any:
    """The sessions a window or filter selection covers, oldest completion first."""
    base = (
        selectors.sessions_with_flags().filter(status="completed")
        if rescore and selection == BackfillRun.Selection.WINDOW
        else selectors.orphaned_sessions()
    )
    tz = timezone.get_current_timezone()
    start, end = _day(params.get("completed_from")), _day(params.get("completed_to"))
    if selection == BackfillRun.Selection.WINDOW and not (start or end):
        raise SelectionError("a completion-date window needs a start or an end date")
    if start and end and start > end:
        raise SelectionError(reversed_range(start, end))
    if start:
        base = base.filter(
            completed_at__gte=datetime.combine(start, datetime.min.time(), tzinfo=tz)
        )
    if end:
        base = base.filter(
            completed_at__lt=datetime.combine(
                end + timedelta(days=1), datetime.min.time(), tzinfo=tz
            )
        )
    fc = params.get("fc")
    if fc == "responses":
        base = base.filter(selectors.has_fc_responses_expression())
    elif fc == "none":
        base = base.filter(~selectors.has_fc_responses_expression())
    return base.order_by("completed_at", "id")


def resolve_selection(
    selection: str, params: dict[str, Any], ids: list[str] | None, rescore: bool
) -> list[str]:
    """The session ids a run will process, in order."""
    if selection in (BackfillRun.Selection.IDS, BackfillRun.Selection.CSV):
        if not ids:
            raise SelectionError("no session ids given")
        check_known(ids)
        return ids
    if selection in (BackfillRun.Selection.WINDOW, BackfillRun.Selection.FILTER):
        return [
            str(pk)
            for pk in selection_queryset(selection, params, rescore).values_list("pk", flat=True)
        ]
    raise SelectionError(f"unknown selection {selection!r}")


# --- Overlaps: sessions another run still holds ----------------------------------------------
# The kinds whose runs write the sessions' rows (a second writer over the same sessions would
# defeat the first one's throttle and pre-images).
WRITING_KINDS = (BackfillRun.Kind.FINALIZE, BackfillRun.Kind.ROLLBACK)


def writing_runs_active() -> bool:
    """Whether any writing run has not stopped for good (only then can a session be held)."""
    return BackfillRun.objects.filter(kind__in=WRITING_KINDS).exclude(state__in=TERMINAL).exists()


def held_sessions(session_ids: list[str]) -> dict[int, list[str]]:
    """Of `session_ids`, those a writing run that has not stopped for good (enqueued,
    running, pausing, paused, cancelling, interrupted) still has to process: {run id:
    [session ids]}, oldest run first. A read; the caller takes the start lock first."""
    from django.db import connections

    field = BackfillItem._meta.get_field("session_id")
    wanted = [str(field.to_python(s)) for s in session_ids]
    active = list(
        BackfillRun.objects.filter(kind__in=WRITING_KINDS)
        .exclude(state__in=TERMINAL)
        .values_list("pk", flat=True)
    )
    if not wanted or not active:
        return {}
    with connections["default"].cursor() as cur:
        cur.execute(
            f"SELECT run_id, session_id::text FROM {BackfillItem._meta.db_table}"
            " WHERE run_id = ANY(%s) AND outcome = ANY(%s) AND session_id = ANY(%s::uuid[])"
            " ORDER BY run_id, ordinal",
            [active, list(UNSETTLED), wanted],
        )
        rows = cur.fetchall()
    held: dict[int, list[str]] = {}
    for run_id, sid in rows:
        held.setdefault(run_id, []).append(sid)
    return held


def runs_sharing_pending(run: BackfillRun) -> dict[int, int]:
    """Other writing runs (not stopped for good) that still have to process sessions `run`
    still has to process: {run id: how many}, in one statement (for the run page)."""
    from django.db import connections

    others = list(
        BackfillRun.objects.filter(kind__in=WRITING_KINDS)
        .exclude(state__in=TERMINAL)
        .exclude(pk=run.pk)
        .values_list("pk", flat=True)
    )
    if not others or run.kind not in WRITING_KINDS:
        return {}
    table = BackfillItem._meta.db_table
    with connections["default"].cursor() as cur:
        cur.execute(
            f"SELECT o.run_id, count(*) FROM {table} m JOIN {table} o"
            " ON o.session_id = m.session_id AND o.run_id = ANY(%s) AND o.outcome = ANY(%s)"
            " WHERE m.run_id = %s AND m.outcome = ANY(%s) GROUP BY o.run_id ORDER BY o.run_id",
            [others, list(UNSETTLED), run.pk, list(UNSETTLED)],
        )
        return {run_id: n for run_id, n in cur.fetchall()}
