"""Security: nobody gets what their role does not allow, CSRF everywhere, secrets never leak,
production settings, login throttling, the audit trail and the roles."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.db import connections
from django.db.models import F
from django.test import Client, override_settings
from django.urls import reverse

from opsportal.secrets import Secret
from opsportal.security import JsonFormatter, RedactSecretsFilter, scrub_event
from remediation import jobs as bf
from remediation import reference_data
from remediation.models import AuditEvent, BackfillRun, FcChange, FinalizeAttempt, RunbookRecord
from remediation.services import fc, runs, session_finalize
from tests.factories import load_reference_data, make_session, pipeline_sql

pytestmark = pytest.mark.django_db(databases="__all__")
ROOT = Path(__file__).resolve().parents[2]
CANARY = "canary-service-role-key-0b7d1e"


def state_changing_requests(sid: str, run_id: int, change_id: int) -> list[tuple[str, dict]]:
    """Every POST that changes something, as a hand-crafted request would send it."""
    orphans = reverse("admin:remediation_orphanedsession_changelist")
    sessions = reverse("admin:remediation_assessmentsession_changelist")
    actions = "checks probe verify apply_a rollback_a apply_d apply_e version_v120 maintenance_on"
    runbook = [reverse("admin:runbook_action", args=[a]) for a in actions.split()]
    return [
        (reverse("admin:remediation_assessmentsession_finalize", args=[sid]), {"backend": "local"}),
        (
            orphans,
            {
                "action": "finalize_selected",
                "_selected_action": [sid],
                "confirm": "yes",
                "backend": "local",
            },
        ),
        (
            orphans,
            {
                "action": "backfill_selected",
                "_selected_action": [sid],
                "confirm": "yes",
                "backend": "local",
                "batch_size": "10",
            },
        ),
        (sessions, {"action": "recompute_fc_refinalize", "_selected_action": [sid]}),
        (
            reverse("admin:remediation_orphanedsession_backfill"),
            {"backend": "local", "batch_size": "10"},
        ),
        (
            reverse("admin:remediation_backfillrun_add"),
            {"ids": sid, "backend": "local", "batch_size": "10"},
        ),
        *[
            (reverse("admin:remediation_backfillrun_control", args=[run_id, a]), {"confirm": "yes"})
            for a in ("pause", "cancel", "rollback")
        ],
        *[(url, {"label": "x", "confirm": "yes"}) for url in runbook],
        (reverse("admin:remediation_fc_load"), {"confirm": "yes"}),
        (
            reverse("admin:remediation_fcblock_changelist"),
            {
                "action": "rollback_versions",
                "_selected_action": [reference_data_block()],
                "post": "yes",
            },
        ),
        (
            reverse("admin:remediation_fcchange_changelist"),
            {"action": "undo", "_selected_action": [change_id]},
        ),
        (
            reverse("admin:remediation_alert_changelist"),
            {"action": "acknowledge", "_selected_action": ["1"]},
        ),
    ]


def reference_data_block() -> str:
    return json.loads(reference_data.fc_seed_path().read_text())["blocks"][0]["id"]


def snapshot() -> tuple:
    def one(sql: str):
        return pipeline_sql(sql, fetch="one")

    return (
        FinalizeAttempt.objects.count(),
        BackfillRun.objects.count(),
        RunbookRecord.objects.count(),
        FcChange.objects.count(),
        one("SELECT count(*) FROM profiles")[0],
        one("SELECT count(*) FROM fc_blocks")[0],
        one("SELECT value::text FROM scoring_config WHERE key = 'system_status'"),
        one("SELECT count(*) FROM pg_policies WHERE tablename = 'profiles'")[0],
        list(BackfillRun.objects.values_list("state", "rolled_back_at")),
    )


@pytest.fixture
def world(roles):
    load_reference_data()
    sid = make_session()
    fc.fc_set_load(json.loads(reference_data.fc_seed_path().read_text()), actor="setup")
    change = fc.fc_version_rollback("v1.2", actor="setup")
    run = bf.backfill_start(selection="ids", ids=[sid], enqueue=False, actor="setup")
    return sid, run.pk, change.pk


def test_anonymous_and_non_staff_users_get_nothing(member, world):
    sid, run_id, change_id = world
    pages = [
        reverse("admin:index"),
        reverse("admin:remediation_orphanedsession_changelist"),
        reverse("admin:remediation_assessmentsession_change", args=[sid]),
        reverse("admin:health"),
        reverse("admin:runbook"),
        reverse("admin:remediation_backfillrun_change", args=[run_id]),
        reverse("admin:remediation_backfillrun_items_csv", args=[run_id]),
        reverse("admin:remediation_orphanedsession_export"),
        reverse("admin:remediation_auditevent_export"),
        reverse("admin:remediation_fc_coverage"),
        reverse("admin:runbook_export"),
    ]
    plain = Client()
    plain.force_login(member("plain", None, staff=False))
    for client in (Client(), plain):
        for url in pages:
            resp = client.get(url)
            assert resp.status_code == 302 and "/admin/login/" in resp["Location"], url
    before = snapshot()
    for client in (Client(), plain):
        for url, data in state_changing_requests(sid, run_id, change_id):
            assert client.post(url, data).status_code in (302, 403), url
    assert snapshot() == before


def test_staff_without_a_permission_can_neither_see_nor_run_it(member, world):
    sid, run_id, change_id = world
    viewer = Client()
    viewer.force_login(member("viewer", "Viewer"))
    page = viewer.get(
        reverse("admin:remediation_assessmentsession_change", args=[sid])
    ).content.decode()
    assert "Finalize…" not in page
    listing = viewer.get(reverse("admin:remediation_orphanedsession_changelist")).content.decode()
    assert "backfill_selected" not in listing and "finalize_selected" not in listing
    assert "Backfill all matching" not in listing
    runbook = viewer.get(reverse("admin:runbook")).content.decode()
    assert 'id="run-checks"' not in runbook and 'id="apply-fix-a"' not in runbook
    before = snapshot()
    for url, data in state_changing_requests(sid, run_id, change_id):
        resp = viewer.post(url, data)
        assert resp.status_code in (200, 302, 403), url
    assert snapshot() == before
    assert not AuditEvent.objects.exclude(actor="setup").exists()


def test_support_may_finalize_and_backfill_but_not_the_engineers_work(member, world):
    sid, run_id, _change_id = world
    support = Client()
    support.force_login(member("support", "Support"))
    before_runbook = RunbookRecord.objects.count()
    for action in ("checks", "apply_a", "maintenance_on"):
        assert support.post(reverse("admin:runbook_action", args=[action])).status_code == 403
    assert (
        support.post(
            reverse("admin:remediation_backfillrun_control", args=[run_id, "rollback"])
        ).status_code
        == 403
    )
    assert support.post(reverse("admin:remediation_fc_load"), {"confirm": "yes"}).status_code == 403
    assert RunbookRecord.objects.count() == before_runbook
    support.post(
        reverse("admin:remediation_assessmentsession_finalize", args=[sid]), {"backend": "local"}
    )
    assert FinalizeAttempt.objects.filter(session_id=sid, requested_by_name="support").count() == 1
    with override_settings(SUPPORT_MAX_BACKFILL=1):
        ids = [make_session(seed=i) for i in range(2, 4)]
        support.post(
            reverse("admin:remediation_orphanedsession_changelist"),
            {
                "action": "backfill_selected",
                "_selected_action": ids,
                "confirm": "yes",
                "backend": "local",
                "batch_size": "10",
            },
        )
        assert BackfillRun.objects.filter(started_by_name="support").count() == 0


def test_csrf_is_enforced_on_every_state_changing_view(world):
    sid, run_id, change_id = world
    client = Client(enforce_csrf_checks=True)
    client.force_login(User.objects.create_superuser("root", "r@example.org", "pw-123456789"))
    before = snapshot()
    for url, data in state_changing_requests(sid, run_id, change_id):
        assert client.post(url, data).status_code == 403, url
    assert snapshot() == before


def test_a_canary_key_never_appears_anywhere(world, caplog):
    from django_q.models import OrmQ

    sid, _run_id, _change_id = world
    caplog.set_level(logging.DEBUG)
    admin = Client()
    admin.force_login(User.objects.create_superuser("root", "r@example.org", "pw-123456789"))
    with override_settings(
        SUPABASE_SERVICE_ROLE_KEY=Secret(CANARY),
        SUPABASE_URL="http://127.0.0.1:9",
        EDGE_MAX_RETRIES=0,
    ):
        session_finalize(session_id=sid, backend="edge", actor="root")
        admin.post(
            reverse("admin:remediation_assessmentsession_finalize", args=[sid]), {"backend": "edge"}
        )
        admin.post(reverse("admin:runbook_action", args=["checks"]))
        run = bf.backfill_start(selection="ids", ids=[sid], backend="edge", actor="root")
        bf.enqueue_batch(run.pk, run.batch_token)
        bf.run_until_done(run.pk)
        pages = [
            reverse("admin:index"),
            reverse("admin:remediation_finalizeattempt_changelist"),
            reverse("admin:remediation_assessmentsession_change", args=[sid]),
            reverse("admin:remediation_backfillrun_change", args=[run.pk]),
            reverse("admin:remediation_auditevent_changelist"),
            reverse("admin:runbook"),
            reverse("admin:remediation_auditevent_export"),
            reverse("admin:health"),
        ]
        for url in pages:
            resp = admin.get(url)
            body = b"".join(resp.streaming_content) if resp.streaming else resp.content
            assert CANARY.encode() not in body, url
    assert CANARY not in caplog.text
    models = (FinalizeAttempt, AuditEvent, BackfillRun, RunbookRecord)
    stored = [
        json.dumps({f.name: str(getattr(o, f.name)) for f in o._meta.fields})
        for model in models
        for o in model.objects.all()
    ]
    assert stored and not any(CANARY in s for s in stored)
    tasks = [json.dumps(q.task, default=str) for q in OrmQ.objects.all()]
    assert tasks and not any(CANARY in t for t in tasks)


def test_logs_and_error_reports_are_redacted():
    with override_settings(SUPABASE_SERVICE_ROLE_KEY=Secret(CANARY)):
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "calling with key %s", (CANARY,), None
        )
        assert RedactSecretsFilter().filter(record)
        line = JsonFormatter().format(record)
        assert CANARY not in line and "[redacted]" in json.loads(line)["message"]
        event = scrub_event(
            {
                "exception": {"values": [{"value": f"Bearer {CANARY} refused"}]},
                "extra": {"k": CANARY},
            }
        )
        assert CANARY not in json.dumps(event)


def test_production_settings_are_hardened_and_pass_check_deploy():
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": "s" * 30 + "-production-secret-key-0123456789",
        "ALLOWED_HOSTS": "ops.example.org",
        "OPSPORTAL_ENV_FILE": "/nonexistent",
        "SUPABASE_SERVICE_ROLE_KEY": CANARY,
    }
    for name in ("DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE", "EMBEDDED_PG_DIR"):
        env.pop(name, None)  # what the test process sets for itself, not a deployment's
    env["EMBEDDED_PG_DIR"] = str(ROOT / ".pgdata-test")
    for name in (
        "SECURE_SSL_REDIRECT",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_HSTS_SECONDS",
    ):
        env[name] = ""  # as .env.example leaves them: the defaults must hold
    check = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, json; django.setup(); from django.conf import settings as s;"
            "print(json.dumps([s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT,"
            " s.SECURE_HSTS_SECONDS, s.LOG_FORMAT, s.SESSION_COOKIE_HTTPONLY]))",
        ],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "opsportal.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert json.loads(probe.stdout.strip().splitlines()[-1]) == [
        True,
        True,
        True,
        31536000,
        "json",
        True,
    ]
    assert CANARY not in check.stdout + check.stderr + probe.stderr


RIGHT = "right-password-123"


def try_login(client: Client, password: str, **meta: str) -> int:
    """POST the admin login as root; the status code (302 when logged in)."""
    resp = client.post(reverse("admin:login"), {"username": "root", "password": password}, **meta)
    return resp.status_code


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def fail(client: Client, times: int, **meta: str) -> list[int]:
    """`times` wrong passwords; their status codes (429: that failure locked the login out)."""
    codes = [try_login(client, "wrong", **meta) for _ in range(times)]
    assert not logged_in(client)
    return codes


def test_login_throttling():
    from axes.models import AccessAttempt

    User.objects.create_superuser("root", "r@example.org", RIGHT)
    client = Client()
    # A successful login resets the count: 4 + 4 failures around one never lock out.
    assert fail(client, 4) == [200] * 4
    assert try_login(client, RIGHT) == 302 and logged_in(client)
    client.logout()
    assert fail(client, 4) == [200] * 4
    assert try_login(client, RIGHT) == 302 and logged_in(client)
    client.logout()
    # Five in a row lock this username out from this address, even with the right password.
    assert fail(client, 5) == [200] * 4 + [429]
    assert try_login(client, RIGHT) == 429 and not logged_in(client)
    # Username and address together: the same user from another address still logs in.
    elsewhere = Client(REMOTE_ADDR="198.51.100.7")
    assert try_login(elsewhere, RIGHT) == 302 and logged_in(elsewhere)
    # Once the window has passed since the last failure, the address may try again.
    window = timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS + 1)
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - window)
    assert try_login(client, RIGHT) == 302 and logged_in(client)


@override_settings(TRUSTED_PROXY_COUNT=1)
def test_behind_a_proxy_one_clients_failures_do_not_lock_out_another():
    User.objects.create_superuser("root", "r@example.org", RIGHT)
    proxy = {"REMOTE_ADDR": "10.0.0.2"}  # every request arrives from the TLS proxy
    attacker = Client(**proxy)
    assert fail(attacker, 5, HTTP_X_FORWARDED_FOR="203.0.113.5")[-1] == 429
    assert try_login(attacker, RIGHT, HTTP_X_FORWARDED_FOR="203.0.113.5") == 429
    # A forged entry in front of the one the proxy appended changes nothing.
    assert try_login(attacker, RIGHT, HTTP_X_FORWARDED_FOR="192.0.2.1, 203.0.113.5") == 429
    colleague = Client(**proxy)
    assert try_login(colleague, RIGHT, HTTP_X_FORWARDED_FOR="198.51.100.20") == 302
    assert logged_in(colleague)


def test_without_a_trusted_proxy_x_forwarded_for_is_ignored():
    assert settings.TRUSTED_PROXY_COUNT == 0
    User.objects.create_superuser("root", "r@example.org", RIGHT)
    client = Client()
    # A new forged address on every try does not start a new count.
    codes = [try_login(client, "wrong", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}") for i in range(5)]
    assert codes == [200] * 4 + [429]
    assert try_login(client, RIGHT, HTTP_X_FORWARDED_FOR="198.51.100.20") == 429
    assert not logged_in(client)


def test_trusted_proxy_count_comes_from_the_environment():
    probe = subprocess.run(
        [sys.executable, "-c", "import opsportal.settings as s; print(s.TRUSTED_PROXY_COUNT)"],
        cwd=ROOT,
        env={**os.environ, "TRUSTED_PROXY_COUNT": "2", "OPSPORTAL_ENV_FILE": "/nonexistent"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode == 0 and probe.stdout.strip() == "2", probe.stderr


def test_the_audit_trail_records_actions_and_cannot_be_changed(world):
    sid, run_id, _change_id = world
    session_finalize(session_id=sid, actor="alice")
    runs.run_pause(run_id, actor="bob")
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"finalize", "backfill.start", "backfill.pause", "fc.load", "fc.rollback"} <= actions
    event = AuditEvent.objects.get(action="finalize")
    assert (event.actor, event.sessions, event.outcome) == ("alice", [sid], "failed")
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    from django.db import transaction

    with (
        pytest.raises(Exception, match="immutable"),
        transaction.atomic(),
        connections["default"].cursor() as cur,
    ):
        cur.execute("UPDATE remediation_auditevent SET actor = 'mallory'")
    admin = Client()
    admin.force_login(User.objects.create_superuser("root", "r@example.org", "pw-123456789"))
    change_url = reverse("admin:remediation_auditevent_change", args=[event.pk])
    assert admin.post(change_url, {"actor": "mallory"}).status_code == 403
    assert (
        admin.post(
            reverse("admin:remediation_auditevent_delete", args=[event.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    export = admin.get(
        reverse("admin:remediation_auditevent_export"), {"action__exact": "finalize"}
    )
    lines = b"".join(export.streaming_content).decode().strip().splitlines()
    assert lines[0].startswith("at,actor,action") and len(lines) == 2 and "alice" in lines[1]


def test_setup_roles_is_idempotent():
    call_command("setup_roles")
    support = Group.objects.get(name="Support")
    support.permissions.add(*Group.objects.get(name="Engineer").permissions.all())  # drift by hand
    call_command("setup_roles")
    codes = set(Group.objects.get(name="Support").permissions.values_list("codename", flat=True))
    assert {"finalize_session", "run_backfill"} <= codes and "run_runbook" not in codes
    assert Group.objects.filter(name__in=["Viewer", "Support", "Engineer"]).count() == 3


def _loopback_faults():
    from tests.remediation.integrations.test_edge_client import FAULTS

    return {f"server: {name}": respond for name, (respond, _kind) in FAULTS.items()}


EMULATOR_FAULTS = {
    "emulator: hang": {"hang_seconds": 1.2},
    "emulator: 502": {"status": 502},
    "emulator: malformed JSON": {"malformed_json": True},
    "emulator: 429": {"rate_limit_times": 5, "retry_after": "0.05"},
    "emulator: redirect": {"redirect_to": "http://attacker.invalid/steal"},
    "emulator: no fault": {},
}


@pytest.fixture
def edge_fault(request):
    """A function URL that misbehaves as the parameter says: a loopback server or the emulator."""
    name = request.param
    if name in EMULATOR_FAULTS:
        from remediation.dev.edge_emulator import Faults, start_in_thread

        server = start_in_thread()
        server.faults = Faults(**EMULATOR_FAULTS[name])
    else:
        from tests.remediation.integrations.test_edge_client import Server

        server = Server(_loopback_faults()[name])
        import threading

        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.url
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    "edge_fault", [*_loopback_faults(), *EMULATOR_FAULTS], indirect=True, ids=str
)
def test_no_edge_fault_gives_a_technical_500_or_shows_the_key_even_with_debug_on(
    world, caplog, edge_fault
):
    from django_q.models import OrmQ

    caplog.set_level(logging.DEBUG)
    sid = make_session(seed=41)
    admin = Client(raise_request_exception=False)
    admin.force_login(User.objects.create_superuser("root", "r@example.org", "pw-123456789"))
    with override_settings(
        DEBUG=True,
        SUPABASE_SERVICE_ROLE_KEY=Secret(CANARY),
        SUPABASE_URL=edge_fault,
        EDGE_CONNECT_TIMEOUT=1.0,
        EDGE_READ_TIMEOUT=0.8,
        EDGE_MAX_RETRIES=1,
        EDGE_BACKOFF_BASE=0.01,
        EDGE_RETRY_AFTER_CAP=0.1,
    ):
        responses = [
            admin.post(
                reverse("admin:remediation_assessmentsession_finalize", args=[sid]),
                {"backend": "edge", "edge_confirmed": "yes"},  # past its second question
            ),
            admin.post(
                reverse("admin:remediation_orphanedsession_changelist"),
                {
                    "action": "backfill_selected",
                    "_selected_action": [sid],
                    "confirm": "yes",
                    "backend": "edge",
                    "batch_size": "10",
                    "edge_confirmed": "yes",
                },
            ),
        ]
        run = BackfillRun.objects.filter(backend="edge").latest("created_at")
        bf.enqueue_batch(run.pk, run.batch_token)
        run = bf.run_until_done(run.pk)
        assert run.state != "errored", run.message  # every fault is a session's outcome
        item = run.items.get()
        assert item.outcome in ("failed", "unknown", "created", "existing"), item.outcome
        for url in (
            reverse("admin:remediation_assessmentsession_change", args=[sid]),
            reverse("admin:remediation_backfillrun_change", args=[run.pk]),
            reverse("admin:remediation_finalizeattempt_changelist"),
        ):
            responses.append(admin.get(url))
    for resp in responses:
        assert resp.status_code in (200, 302), resp.status_code
        body = b"".join(resp.streaming_content) if resp.streaming else resp.content
        assert CANARY.encode() not in body
        assert b"Traceback" not in body
    attempts = FinalizeAttempt.objects.filter(session_id=sid)
    assert attempts.count() == 2  # the page's finalize and the backfill's: each recorded
    assert all(a.outcome for a in attempts)
    assert CANARY not in caplog.text
    stored = [
        json.dumps({f.name: str(getattr(a, f.name)) for f in a._meta.fields}) for a in attempts
    ]
    assert not any(CANARY in s for s in stored)
    tasks = [json.dumps(q.task, default=str) for q in OrmQ.objects.all()]
    assert tasks and not any(CANARY in t for t in tasks)
