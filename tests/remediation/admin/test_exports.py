"""Every CSV export neutralises cells a spreadsheet would run as a formula (CSV injection):
a text cell starting with =, +, -, @, tab or carriage return gets a leading single quote."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from remediation import jobs as bf
from remediation.admin.base import csv_cell
from remediation.services.audit import audit_record
from tests.factories import make_session, pipeline_sql

pytestmark = pytest.mark.django_db(databases="__all__")

HOSTILE = [
    "=cmd|' /C calc'!A0",
    "+1+1",
    "-2+3",
    "@SUM(A1:A2)",
    "\t=1+1",
    "\r=1+1",
]


def _rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.mark.parametrize("value", HOSTILE)
def test_csv_cell_prefixes_formula_text_with_a_quote(value):
    assert csv_cell(value) == "'" + value


def test_csv_cell_leaves_plain_text_numbers_and_ids_alone():
    assert csv_cell("rls [42501]") == "rls [42501]"
    assert csv_cell("a=b") == "a=b"
    assert csv_cell(-5) == -5 and csv_cell(2.5) == 2.5 and csv_cell(None) is None
    assert csv_cell("") == ""


def test_orphan_export_neutralises_the_email(admin_client, clear_path):
    sid = make_session(seed=1)
    pipeline_sql("UPDATE assessment_sessions SET email = %s WHERE id = %s", [HOSTILE[0], sid])
    rows = _rows(admin_client.get(reverse("admin:remediation_orphanedsession_export")))
    mine = [r for r in rows if r[0] == sid]
    assert mine and mine[0][1] == "'" + HOSTILE[0]


def test_run_items_export_neutralises_every_text_cell(admin_client, clear_path):
    ids = [make_session(seed=i) for i in range(len(HOSTILE))]
    run = bf.backfill_start(selection="ids", ids=ids, batch_size=10, enqueue=False)
    for item, value in zip(run.items.order_by("ordinal"), HOSTILE, strict=True):
        item.error = value
        item.results_url = value
        item.save(update_fields=["error", "results_url"])
    rows = _rows(
        admin_client.get(reverse("admin:remediation_backfillrun_items_csv", args=[run.pk]))
    )
    header, body = rows[0], rows[1:]
    error, url = header.index("error"), header.index("results_url")
    assert [r[error] for r in body] == ["'" + v for v in HOSTILE]
    assert [r[url] for r in body] == ["'" + v for v in HOSTILE]
    assert [r[header.index("session_id")] for r in body] == ids


def test_audit_export_neutralises_actor_target_outcome_and_detail(admin_client):
    audit_record("@attacker", "fc.load", target='=HYPERLINK("x")', outcome="+1", detail={})
    rows = _rows(admin_client.get(reverse("admin:remediation_auditevent_export")))
    header = rows[0]
    row = next(r for r in rows[1:] if r[header.index("action")] == "fc.load")
    assert row[header.index("actor")] == "'@attacker"
    assert row[header.index("target")] == '\'=HYPERLINK("x")'
    assert row[header.index("outcome")] == "'+1"
