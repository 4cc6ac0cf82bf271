"""The demo's /metrics token (issue 17, point 8): demo_setup keeps a configured token and
otherwise writes one to the env file, in place of the empty METRICS_TOKEN= line, so /metrics
answers in the demo with the token it prints."""

from __future__ import annotations

import pytest
from django.test import override_settings

from opsportal.secrets import Secret
from remediation.dev.management.commands.demo_setup import ensure_metrics_token


def test_a_configured_token_is_kept_and_the_file_untouched(tmp_path):
    env = tmp_path / ".env"
    env.write_text("DEBUG=true\nMETRICS_TOKEN=\n")
    assert ensure_metrics_token("already-set", env) == ("already-set", False)
    assert env.read_text() == "DEBUG=true\nMETRICS_TOKEN=\n"


def test_an_empty_token_is_written_in_place(tmp_path):
    env = tmp_path / ".env"
    env.write_text("# /metrics token\nMETRICS_TOKEN=\nLOG_LEVEL=INFO\n")
    token, written = ensure_metrics_token("", env)
    assert written and len(token) >= 24
    assert env.read_text() == f"# /metrics token\nMETRICS_TOKEN={token}\nLOG_LEVEL=INFO\n"
    assert oct(env.stat().st_mode & 0o777) == "0o600"
    # A file without the line (or no file at all) gets it appended.
    other = tmp_path / "other.env"
    token2, _ = ensure_metrics_token("", other)
    assert other.read_text() == f"METRICS_TOKEN={token2}\n" and token2 != token


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_metrics_answers_with_the_written_token(tmp_path, client, pipeline_db):
    env = tmp_path / ".env"
    token, _ = ensure_metrics_token("", env)
    configured = env.read_text().strip().split("=", 1)[1]
    with override_settings(METRICS_TOKEN=Secret(configured)):
        assert client.get("/metrics").status_code == 401
        ok = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert ok.status_code == 200
    assert b"prism_conversion" in ok.content
