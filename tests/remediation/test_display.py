"""How values read (remediation.display and its template filters): one date-time format with
its time zone, durations, codes as words, SQLSTATE names, plurals, selection parameters."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.template import Context, Template
from django.test import override_settings

from remediation import display

AT = datetime(2026, 12, 1, 9, 38, 24, 54034, tzinfo=UTC)


def test_one_date_time_format_with_the_zone_and_no_microseconds():
    assert display.when(AT) == "2026-12-01 09:38:24 UTC"
    # The ISO text snapshots and reports store, and str(datetime), read the same.
    assert display.when(AT.isoformat()) == "2026-12-01 09:38:24 UTC"
    assert display.when(str(AT)) == "2026-12-01 09:38:24 UTC"
    assert display.when(None) == display.when("") == "–"
    assert display.when("not a date") == "not a date"


def test_the_operators_time_zone_is_used_and_named():
    with override_settings(TIME_ZONE="Europe/Berlin"):
        assert display.when(AT) == "2026-12-01 10:38:24 CET"
        # Django's own rendering of a datetime (admin lists, {{ value }}) uses the same format.
        assert Template("{{ at }}").render(Context({"at": AT})) == "2026-12-01 10:38:24 CET"
    with override_settings(TIME_ZONE="America/New_York"):
        assert display.when(AT) == "2026-12-01 04:38:24 EST"


@pytest.mark.parametrize(
    ("ms", "shown"),
    [
        (16.207053000016458, "16 ms"),
        (0.42, "0.4 ms"),
        (2400, "2.4 s"),
        (45_000, "45 s"),
        (185_000, "3 min 5 s"),
        (120_000, "2 min"),
        (7_440_000, "2 h 4 min"),
        (None, "–"),
    ],
)
def test_durations_read_as_a_person_reads_them(ms, shown):
    assert display.duration(ms) == shown


def test_codes_as_words_and_sqlstates_with_their_names():
    assert display.words("would_succeed") == "would succeed"
    assert display.sqlstate("42501") == "insufficient privilege (42501)"
    assert display.sqlstate("23514") == "check violation (23514)"
    assert display.sqlstate("54001") == "statement too complex (54001)"
    assert display.sqlstate("ZZ999") == "ZZ999"  # unknown: the code alone
    assert display.sqlstate("") == "–"
    assert display.reason("rls", "42501") == "rls: insufficient privilege (42501)"
    assert display.reason("would_succeed", "") == "would succeed"


def test_counts_take_the_right_plural():
    assert display.count(1, "alert") == "1 alert"
    assert display.count(0, "alert") == "0 alerts"
    assert display.count(1234, "session") == "1,234 sessions"
    assert display.count(2, "batch", "batches") == "2 batches"
    template = Template(
        '{% load remediation_tags %}{{ n|count:"session" }}/{{ m|count:"batch,batches" }}'
    )
    assert template.render(Context({"n": 1, "m": 3})) == "1 session/3 batches"


def test_selection_parameters_in_words_never_a_dict():
    assert display.selection({"ids": 5}) == "5 explicit ids"
    assert display.selection({"ids": 1}) == "1 explicit id"
    assert display.selection({"run": 7}) == "the sessions run #7 changed"
    assert (
        display.selection({"completed_from": "2026-11-01", "fc": "none"})
        == "completed from 2026-11-01, without FC responses"
    )
    assert display.selection({"sessions": 3, "resend": False, "per_minute": 60}) == (
        "3 sessions, no resend, at most 60 per minute"
    )
    assert display.selection({}) == ""


def test_the_filters_render_in_templates():
    template = Template(
        "{% load remediation_tags %}{{ at|when }}|{{ ms|duration }}|{{ code|words }}"
        "|{{ state|sqlstate }}|{{ cat|reason:state }}|{{ s|seconds }}"
    )
    context = {
        "at": AT,
        "ms": 16.2,
        "code": "would_succeed",
        "state": "42501",
        "cat": "rls",
        "s": 75,
    }
    assert template.render(Context(context)) == (
        "2026-12-01 09:38:24 UTC|16 ms|would succeed|insufficient privilege (42501)"
        "|rls: insufficient privilege (42501)|1 min 15 s"
    )
