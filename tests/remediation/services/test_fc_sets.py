"""Hostile FC sets: NaN/Infinity, order_index out of PostgreSQL's int range or a boolean,
NUL bytes, deep nesting, other encodings and oversized files are refused with a clear error
by the validation (admin upload, dry run, confirm, CLI); nothing is written, never a 500."""

from __future__ import annotations

import copy
import json
import re

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from remediation import reference_data
from remediation.services import fc
from remediation.services.fc_sets import (
    MAX_SET_BYTES,
    FcSetInvalid,
    parse_set,
    read_set,
    validate_set,
    validate_weights,
)
from tests.factories import pipeline_sql

SEED_TEXT = reference_data.fc_seed_path().read_text()
SEED = json.loads(SEED_TEXT)


def _with(mutate) -> dict:
    data = copy.deepcopy(SEED)
    mutate(data)
    return data


def _option(data: dict) -> dict:
    return data["blocks"][0]["options"][0]


def _seed_with_weight(literal: str) -> str:
    """The shipped set as JSON text with the first option's Te weight written as `literal`."""
    text = json.dumps(_with(lambda s: _option(s)["weights"].update(Te=12345.5)))
    assert text.count("12345.5") == 1
    return text.replace("12345.5", literal)


def test_the_shipped_set_parses_and_validates():
    assert parse_set(SEED_TEXT.encode()) == SEED and validate_set(SEED) == []


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused_when_parsing(constant):
    with pytest.raises(FcSetInvalid, match=f"not JSON: {constant} is not a number JSON allows"):
        parse_set(_seed_with_weight(constant).encode())


def test_non_finite_weights_are_refused_by_validation():
    assert validate_weights({"Te": float("nan")}) == ["weight Te = nan is not a finite number"]
    assert validate_weights({"Te": float("inf")}) == ["weight Te = inf is not a finite number"]
    # 1e400 is JSON, and Python reads it as inf.
    errors = validate_set(parse_set(_seed_with_weight("1e400").encode()))
    assert errors == ["block 1 (WORK_PREF) option 1: weight Te = inf is not a finite number"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (10**20, "order_index 100000000000000000000 is outside -2147483648..2147483647"),
        (2**31, "order_index 2147483648 is outside"),
        (-(2**31) - 1, "order_index -2147483649 is outside"),
        (True, "order_index must be an integer, not True"),
        (1.5, "order_index must be an integer, not 1.5"),
    ],
)
def test_order_index_must_be_an_int_within_postgresql_range(value, message):
    block = _with(lambda s: s["blocks"][0].update(order_index=value))
    option = _with(lambda s: _option(s).update(order_index=value))
    assert any(message in e for e in validate_set(block))
    assert any(message in e and "option 1" in e for e in validate_set(option))
    edge = _with(lambda s: s["blocks"][0].update(order_index=2**31 - 1))
    assert validate_set(edge) == []


def test_is_active_must_be_a_boolean():
    errors = validate_set(_with(lambda s: s["blocks"][0].update(is_active=1)))
    assert any("is_active must be true or false" in e for e in errors)


def test_nul_bytes_are_refused_in_any_string_and_key():
    errors = validate_set(_with(lambda s: _option(s).update(prompt="a\x00b")))
    assert any("prompt contains a NUL byte" in e for e in errors)
    errors = validate_set(_with(lambda s: s.update(version="v1\x00")))
    assert any("the set.version contains a NUL byte" in e for e in errors)
    errors = validate_set(_with(lambda s: s["blocks"][0].update({"x\x00": 1})))
    assert any("contains a NUL byte" in e for e in errors)


def test_deep_nesting_is_refused_before_json_reads_it():
    with pytest.raises(FcSetInvalid, match="nested too deeply"):
        parse_set(b"[" * 50_000 + b"]" * 50_000)
    with pytest.raises(FcSetInvalid, match="nested too deeply"):
        parse_set(b'{"a":' * 50_000 + b"1" + b"}" * 50_000)
    # Brackets inside strings do not count.
    assert parse_set(json.dumps({"x": "[" * 100}).encode()) == {"x": "[" * 100}


def test_size_and_encoding_limits_are_named():
    with pytest.raises(FcSetInvalid, match="larger than the limit of 2,000,000 bytes"):
        parse_set(b" " * (MAX_SET_BYTES + 1))
    with pytest.raises(FcSetInvalid, match="is not UTF-8 text"):
        parse_set('{"version": "caf\xe9"}'.encode("latin-1"))


def test_read_set_refuses_a_file_over_the_limit(tmp_path):
    big = tmp_path / "big.json"
    big.write_text(SEED_TEXT + " " * MAX_SET_BYTES)
    with pytest.raises(FcSetInvalid, match=r"big\.json is larger than the limit of 2,000,000"):
        read_set(big)


# --- Through the admin and the command ---------------------------------------------------

needs_db = pytest.mark.django_db(databases="__all__")


def _manager(client):
    user = User.objects.create_user("eng", "e@example.org", "pw", is_staff=True)
    names = ["view_fcblock", "view_fcoption", "change_fcblock", "add_fcblock", "manage_fc"]
    user.user_permissions.set(Permission.objects.filter(codename__in=names))
    client.force_login(user)


HOSTILE_UPLOADS = [
    (_seed_with_weight("NaN").encode(), "NaN is not a number"),
    (
        json.dumps(_with(lambda s: s["blocks"][0].update(order_index=10**20))).encode(),
        "is outside -2147483648..2147483647",
    ),
    (
        json.dumps(_with(lambda s: _option(s).update(order_index=True))).encode(),
        "order_index must be an integer, not True",
    ),
    (
        json.dumps(_with(lambda s: _option(s).update(prompt="p\x00"))).encode(),
        "contains a NUL byte",
    ),
    (b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),
    (SEED_TEXT.encode() + b" " * MAX_SET_BYTES, "larger than the limit of 2,000,000 bytes"),
    ('{"version": "\xe9"}'.encode("latin-1"), "is not UTF-8 text"),
]


@needs_db
@pytest.mark.parametrize(("content", "message"), HOSTILE_UPLOADS)
@pytest.mark.parametrize("confirm", [False, True])
def test_admin_upload_refuses_hostile_sets_on_dry_run_and_confirm(
    client, content, message, confirm
):
    _manager(client)
    upload = SimpleUploadedFile("set.json", content, content_type="application/json")
    data = {"file": upload, **({"confirm": "yes"} if confirm else {})}
    resp = client.post(reverse("admin:remediation_fc_load"), data)
    assert resp.status_code == 200
    page = resp.content.decode()
    assert "The set does not validate; nothing was written" in page
    assert message in page.replace("&#x27;", "'")
    assert pipeline_sql("SELECT count(*) FROM fc_blocks", fetch="one")[0] == 0


@needs_db
def test_fc_command_refuses_hostile_files(tmp_path):
    for name, (content, message) in zip("abcdefg", HOSTILE_UPLOADS, strict=True):
        path = tmp_path / f"{name}.json"
        path.write_bytes(content)
        with pytest.raises(CommandError, match=re.escape(message)):
            call_command("fc", "load", str(path), "--dry-run")
    assert pipeline_sql("SELECT count(*) FROM fc_blocks", fetch="one")[0] == 0
    fc.fc_set_load(SEED, dry_run=True)  # and the shipped set still passes
