"""How values read to a person: one definition for pages, messages and Markdown exports.

- `when()`: a date-time in the portal's time zone (settings.TIME_ZONE) in the one format
  the admin uses (settings.DATETIME_FORMAT, via opsportal/formats), with the zone's name:
  `2026-12-01 09:38:24 UTC`. Takes datetimes and the ISO text snapshots and reports store.
- `duration()`: milliseconds as a person reads them (`16 ms`, `2.4 s`, `3 min 5 s`).
- `words()`: a code as words (`would_succeed` → `would succeed`).
- `sqlstate()`: a SQLSTATE with its name (`insufficient privilege (42501)`).
- `count()`: a number with its noun, singular or plural (`1 alert`, `5 alerts`).

The template filters of the same names are in remediation/templatetags/remediation_tags.py.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from django.utils import formats, timezone

NONE = "–"


def when(value: Any) -> str:
    """A date-time in the portal's time zone and format; NONE for an empty value; text that
    is no ISO date-time is returned unchanged."""
    if value in (None, ""):
        return NONE
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            return value
    if not isinstance(value, datetime):
        return str(value)
    if timezone.is_naive(value):
        value = timezone.make_aware(value, timezone.get_default_timezone())
    return formats.date_format(timezone.localtime(value), "DATETIME_FORMAT")


def duration(ms: Any) -> str:
    """Milliseconds rounded to what a person reads: `0.4 ms`, `16 ms`, `2.4 s`, `3 min 5 s`,
    `2 h 4 min`."""
    if ms in (None, ""):
        return NONE
    value = float(ms)
    if value < 1:
        return f"{value:.1f} ms"
    if value < 1000:
        return f"{value:.0f} ms"
    seconds = value / 1000
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def words(code: Any) -> str:
    """A code as words: underscores become spaces (`would_succeed` → `would succeed`)."""
    if code in (None, ""):
        return NONE
    return str(code).replace("_", " ")


def sqlstate_name(code: str) -> str:
    """The condition name of a SQLSTATE (psycopg's table of PostgreSQL's errcodes), in words,
    or "" for a code it does not know."""
    from psycopg import errors

    try:
        cls = errors.lookup(code)
    except KeyError:
        return ""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", cls.__name__).lower()


def sqlstate(code: Any) -> str:
    """A SQLSTATE in words with the code beside it: `insufficient privilege (42501)`."""
    if code in (None, ""):
        return NONE
    name = sqlstate_name(str(code))
    return f"{name} ({code})" if name else str(code)


def count(n: Any, noun: str, plural: str = "") -> str:
    """`1 alert`, `0 alerts`, `1,234 sessions`: the number with its noun in the right form
    (`plural` when adding an s is wrong: count(n, "batch", "batches"))."""
    number = int(n)
    return f"{number:,} {noun if number == 1 else (plural or noun + 's')}"


def reason(category: Any, code: Any = "") -> str:
    """A diagnosis or failure reason in words with its SQLSTATE: `rls: insufficient privilege
    (42501)`, `would succeed`."""
    text = words(category)
    return f"{text}: {sqlstate(code)}" if code else text


def seconds(value: Any) -> str:
    """Seconds as duration() reads them (`45 s`, `3 min 5 s`)."""
    return NONE if value in (None, "") else duration(float(value) * 1000)


def _selection_part(key: str, value: Any) -> str:
    if key == "ids":
        return count(value, "explicit id")
    if key == "sessions":
        return count(value, "session")
    if key == "run":
        return f"the sessions run #{value} changed"
    if key == "completed_from":
        return f"completed from {value}"
    if key == "completed_to":
        return f"completed up to {value}"
    if key == "fc":
        return {"responses": "with FC responses", "none": "without FC responses"}.get(
            str(value), f"FC {value}"
        )
    if key == "per_minute":
        return f"at most {value} per minute"
    if isinstance(value, bool):
        return words(key) if value else f"no {words(key)}"
    return f"{words(key)} {value}"


def selection(params: Any) -> str:
    """A run's selection parameters as words: {"ids": 5} → `5 explicit ids`."""
    if not params:
        return ""
    if not isinstance(params, dict):
        return str(params)
    return ", ".join(_selection_part(k, v) for k, v in params.items())
