"""Hostile id lists: a malformed CSV is a SelectionError naming the line (never csv.Error),
and the backfill command turns it, and a non-UTF-8 file, into a CommandError."""

from __future__ import annotations

import csv
import uuid

import pytest
from django.core.management import CommandError, call_command

from remediation.jobs.selection import SelectionError, parse_id_list

IDS = [str(uuid.UUID(int=i + 1)) for i in range(3)]


def test_plain_lists_and_a_session_id_column_still_parse():
    assert parse_id_list("\n".join(IDS)) == IDS
    assert parse_id_list(f"email,session_id\na@x,{IDS[0]}\nb@x,{IDS[1]}\n") == IDS[:2]
    assert parse_id_list(f'"{IDS[0]}"\n') == IDS[:1]


def test_an_unclosed_quote_names_the_line_it_opens_on():
    with pytest.raises(SelectionError, match=r"line 2: a quoted field is never closed"):
        parse_id_list(f'{IDS[0]}\n"{IDS[1]}\n{IDS[2]}\n')


def test_a_field_over_the_csv_limit_is_an_error_with_the_limit():
    limit = csv.field_size_limit()
    with pytest.raises(SelectionError, match=rf"line 2: a field is longer than {limit:,}"):
        parse_id_list(f"{IDS[0]}\n{'x' * (limit + 1)}\n")
    # The same through an unclosed quote that swallows the rest of a long file.
    with pytest.raises(SelectionError, match=r"line 2: a field is longer than"):
        parse_id_list(f'{IDS[0]}\n"' + f"{IDS[1]}\n" * 5000)


def test_text_after_a_closing_quote_and_nul_bytes_are_errors():
    with pytest.raises(SelectionError, match=r"line 2: not valid CSV"):
        parse_id_list(f'{IDS[0]}\n"{IDS[1]}"x\n')
    with pytest.raises(SelectionError, match=r"line 2: .*NUL byte"):
        parse_id_list(f"{IDS[0]}\n{IDS[1]}\x00\n")


@pytest.mark.django_db(databases="__all__")
def test_backfill_command_reports_csv_errors_and_encodings(tmp_path):
    unclosed = tmp_path / "unclosed.csv"
    unclosed.write_text(f'session_id\n"{IDS[0]}\n')
    with pytest.raises(CommandError, match="line 2: a quoted field is never closed"):
        call_command("backfill", "--csv", str(unclosed), "--sync")
    huge = tmp_path / "huge.csv"
    huge.write_text("x" * 200_000 + "\n")
    with pytest.raises(CommandError, match="line 1: a field is longer than 131,072"):
        call_command("backfill", "--csv", str(huge), "--sync")
    latin = tmp_path / "latin1.csv"
    latin.write_bytes(f"session_id\n{IDS[0]}\nCaf\xe9\n".encode("latin-1"))
    with pytest.raises(CommandError, match=r"latin1.csv is not UTF-8 text \(byte 51"):
        call_command("backfill", "--csv", str(latin), "--sync")
    with pytest.raises(CommandError, match="line 1: a quoted field is never closed"):
        call_command("backfill", "--ids", f'"{IDS[0]}', "--sync")


def test_ids_separated_by_commas_semicolons_spaces_tabs_or_newlines_all_count():
    text = f"{IDS[0]}, {IDS[1]};{IDS[2]}\n"
    assert parse_id_list(text) == IDS
    assert parse_id_list(f"{IDS[0]}\t{IDS[1]} {IDS[2]}") == IDS
    assert parse_id_list(f"{IDS[0]};;{IDS[1]}\r\n\n{IDS[2]},{IDS[0]}") == IDS  # each once
    # A semicolon- or tab-separated CSV with a header: its session_id column only.
    assert parse_id_list(f"email;session_id\na@x;{IDS[0]}\nb@x;{IDS[1]}\n") == IDS[:2]
    assert parse_id_list(f"session_id\temail\n{IDS[2]}\tc@x\n") == IDS[2:]


def test_every_malformed_token_is_listed_with_its_line_and_nothing_is_returned():
    with pytest.raises(SelectionError) as refused:
        parse_id_list(f"{IDS[0]},nope\n{IDS[1]} {IDS[2][:-1]}\n;x-y\n")
    assert refused.value.problems == [
        "line 1: 'nope' is not a session id",
        f"line 2: {IDS[2][:-1]!r} is not a session id",
        "line 3: 'x-y' is not a session id",
    ]
    assert str(refused.value).startswith("3 of the ids cannot be used, nothing was started: ")


@pytest.mark.django_db(databases="__all__")
def test_unknown_ids_are_listed_beside_malformed_ones(pipeline_db):
    from tests.factories import make_session

    known = make_session(seed=1)
    with pytest.raises(SelectionError) as refused:
        parse_id_list(f"{known},{IDS[0]}\nbad\n{IDS[1]}", check_known=True)
    assert refused.value.problems == [
        f"line 1: {IDS[0]} is not a session in the pipeline database",
        "line 2: 'bad' is not a session id",
        f"line 3: {IDS[1]} is not a session in the pipeline database",
    ]
    assert parse_id_list(f"{known}", check_known=True) == [known]
    # The command line refuses them too, before anything starts.
    with pytest.raises(CommandError, match=f"{IDS[0]} is not a session in the pipeline"):
        call_command("backfill", "--ids", known, IDS[0], "--sync")
    from remediation.models import BackfillRun

    assert not BackfillRun.objects.exists()


@pytest.mark.django_db(databases="__all__")
def test_a_reversed_window_is_refused_with_what_is_wrong(pipeline_db):
    from remediation import jobs

    with pytest.raises(SelectionError, match="the date range is reversed: from 2026-12-05 is"):
        jobs.selection_queryset(
            "window", {"completed_from": "2026-12-05", "completed_to": "2026-12-01"}
        )
