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
