"""Hostile input on Backfill runs → Add: malformed CSVs, oversized fields and files, other
encodings and NUL bytes are form errors (200 with the message), never a 500, and start nothing."""

from __future__ import annotations

import csv

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from remediation.admin.backfills import MAX_CSV_BYTES
from remediation.models import BackfillRun
from tests.factories import make_session, start_new_backfill

pytestmark = pytest.mark.django_db(databases="__all__")
ADD = "admin:remediation_backfillrun_add"
PARAMS = {"backend": "local", "batch_size": "10"}


def _upload(admin_client, content: bytes) -> tuple[int, str]:
    upload = SimpleUploadedFile("ids.csv", content, content_type="text/csv")
    resp = admin_client.post(reverse(ADD), {"csv_file": upload, **PARAMS})
    return resp.status_code, resp.content.decode()


@pytest.fixture
def sid(clear_path):
    return make_session(seed=1)


def test_upload_with_an_unclosed_quote(admin_client, sid):
    status, page = _upload(admin_client, f'session_id\n{sid}\n"{sid}\n'.encode())
    assert status == 200 and "line 3: a quoted field is never closed" in page
    assert not BackfillRun.objects.exists()


def test_upload_with_a_field_over_the_csv_limit(admin_client, sid):
    big = "y" * (csv.field_size_limit() + 10)
    status, page = _upload(admin_client, f"session_id\n{sid}\n{big}\n".encode())
    assert status == 200 and "line 3: a field is longer than 131,072 characters" in page
    assert not BackfillRun.objects.exists()


def test_upload_in_another_encoding_or_with_nul_bytes(admin_client, sid):
    status, page = _upload(admin_client, f"session_id\n{sid}\nJos\xe9\n".encode("latin-1"))
    assert status == 200 and "The CSV file is not UTF-8 text." in page
    status, page = _upload(admin_client, f"session_id\n{sid}\x00\n".encode())
    assert status == 200 and "line 2: the text contains a NUL byte" in page
    assert not BackfillRun.objects.exists()


def test_upload_over_the_size_limit_is_refused_with_the_limit(admin_client, sid):
    content = (f"{sid}\n" * (MAX_CSV_BYTES // 37 + 1)).encode()
    assert len(content) > MAX_CSV_BYTES
    status, page = _upload(admin_client, content)
    assert status == 200 and "larger than 5,000,000 bytes" in page
    assert not BackfillRun.objects.exists()


def test_pasted_ids_with_an_unclosed_quote_or_an_overlong_field(admin_client, sid):
    add = reverse(ADD)
    page = admin_client.post(add, {"ids": f'{sid}\n"{sid}', **PARAMS}).content.decode()
    assert "line 2: a quoted field is never closed" in page
    big = "z" * (csv.field_size_limit() + 1)
    resp = admin_client.post(add, {"ids": f"{sid}\n{big}", **PARAMS})
    assert resp.status_code == 200
    assert "line 2: a field is longer than 131,072 characters" in resp.content.decode()
    resp = admin_client.post(add, {"ids": f"{sid}\x00", **PARAMS})
    assert resp.status_code == 200 and "Null characters are not allowed" in resp.content.decode()
    assert not BackfillRun.objects.exists()
    # The same list without the fault leads to the confirmation, which starts the run.
    start_new_backfill(admin_client, {"ids": sid, **PARAMS})
    assert BackfillRun.objects.get().estimated_total == 1
