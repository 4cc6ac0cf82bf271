"""The IR-07 runbook: each check against a database built to pass it and one built to fail it,
the write-path probe, verification, gates, the page, the command and the Markdown record."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from remediation.models import RunbookRecord
from remediation.selectors import checks as runbook_checks
from remediation.services import gates, probe
from remediation.services import runbook as runbook_services
from tests.factories import (
    apply_plan_policy,
    load_reference_data,
    make_session,
    pipeline_sql,
    relax_checks,
)

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def ref():
    load_reference_data()


def status_of(key: str) -> str:
    return {c.key: c for c in runbook_checks.run_checks()}[key].status


def _recent(n, **kw):
    return [
        make_session(seed=i, completed_at=timezone.now() - timedelta(days=1), **kw)
        for i in range(n)
    ]


def _fc_scores_for(ids):
    for sid in ids:
        pipeline_sql(
            "INSERT INTO fc_scores (session_id, version, fc_kind, scores_json, blocks_answered)"
            " VALUES (%s, 'v1.2', 'functions', '{}', 1)",
            [sid],
        )


def _block():
    pipeline_sql(
        "INSERT INTO fc_blocks (version, code, title, order_index) VALUES ('v1.2', 'X', 'x', 1)"
    )


def _with_fc_responses(ids):
    """The sessions answered one FC block (FC responses that were never scored)."""
    block = pipeline_sql(
        "INSERT INTO fc_blocks (version, code, title, order_index)"
        " VALUES ('v1.2', 'R', 'r', 1) RETURNING id::text",
        fetch="one",
    )[0]
    option = pipeline_sql(
        "INSERT INTO fc_options (block_id, option_code, prompt, weights_json, order_index)"
        """ VALUES (%s, 'A', 'a', '{"Ti": 1}', 1) RETURNING id::text""",
        [block],
        fetch="one",
    )[0]
    for sid in ids:
        pipeline_sql(
            "INSERT INTO fc_responses (session_id, block_id, option_id) VALUES (%s, %s, %s)",
            [sid, block, option],
        )
    return ids


CASES = [
    # key, setup for PASS, expected pass status, setup for the other outcome, expected status
    ("policy_count", lambda: None, "PASS", apply_plan_policy, "WARN"),
    (
        "rls_enabled",
        lambda: None,
        "PASS",
        lambda: pipeline_sql("ALTER TABLE profiles DISABLE ROW LEVEL SECURITY"),
        "WARN",
    ),
    ("fc_blocks_v12", lambda: None, "PASS", _block, "INFO"),
    ("recent_orphans", lambda: _recent(1), "PASS", lambda: None, "INFO"),
    (
        "results_version",
        lambda: None,
        "PASS",
        lambda: gates.results_version_set(version="v1.2.0"),
        "FAIL",
    ),
    (
        "no_fc_scores",
        lambda: _fc_scores_for(_with_fc_responses(_recent(3))),
        "PASS",
        lambda: _with_fc_responses(_recent(11)),
        "FAIL",
    ),
    ("policies", lambda: None, "INFO", apply_plan_policy, "WARN"),
    ("check_constraints", relax_checks, "PASS", lambda: None, "FAIL"),
    (
        "grants",
        lambda: None,
        "PASS",
        lambda: pipeline_sql("REVOKE INSERT ON profiles FROM service_role"),
        "FAIL",
    ),
    (
        "system_status",
        lambda: None,
        "PASS",
        lambda: gates.maintenance_set(on=True, message="IR-07"),
        "WARN",
    ),
    (
        "answers_numeric_only",
        lambda: _recent(1),
        "PASS",
        lambda: _recent(1, numeric_only=True),
        "WARN",
    ),
]


@pytest.mark.parametrize(
    ("key", "good", "good_status", "bad", "bad_status"), CASES, ids=[c[0] for c in CASES]
)
def test_each_check_passes_on_a_good_database(ref, key, good, good_status, bad, bad_status):
    good()
    assert status_of(key) == good_status


@pytest.mark.parametrize(
    ("key", "good", "good_status", "bad", "bad_status"), CASES, ids=[c[0] for c in CASES]
)
def test_each_check_fails_on_a_bad_database(ref, key, good, good_status, bad, bad_status):
    bad()
    assert status_of(key) == bad_status


def test_null_share_token_thresholds(ref):
    ids = _recent(8)
    assert status_of("null_share_tokens") == "PASS"
    pipeline_sql("UPDATE assessment_sessions SET share_token = '' WHERE id = %s", [ids[0]])
    assert status_of("null_share_tokens") == "WARN"
    # share_token is unique: only one row can be ''; the real schema may allow NULLs.
    pipeline_sql("ALTER TABLE assessment_sessions ALTER COLUMN share_token DROP NOT NULL")
    pipeline_sql(
        "UPDATE assessment_sessions SET share_token = NULL WHERE id = ANY(%s::uuid[])", [ids[1:7]]
    )
    check = {c.key: c for c in runbook_checks.run_checks()}["null_share_tokens"]
    assert (check.status, check.figure) == ("FAIL", "7")


def test_no_fc_scores_warn_band(ref):
    _with_fc_responses(_recent(4))
    assert status_of("no_fc_scores") == "WARN"


def test_the_trigger_check_finds_the_recursive_trigger(ref):
    from remediation.dev.emulation import load_emulated_schema

    assert status_of("triggers") == "PASS"
    load_emulated_schema(service_role_bypassrls=False, fc_metrics_trigger=True)
    check = {c.key: c for c in runbook_checks.run_checks()}["triggers"]
    assert check.status == "FAIL" and "update_fc_metrics_trigger" in check.detail


def test_the_probe_matrix_without_and_with_bypassrls_and_with_the_plans_policy(ref):
    # The probe writes the engine's row for the test session: the CHECKs refuse it wherever
    # RLS lets it through (the portal's own role too).
    sid = make_session(completed_at=timezone.now() - timedelta(hours=1))
    matrix = probe.probe_write_path()
    assert matrix["session"]["session_id"] == sid and matrix["session"]["synthetic"] is False
    cells = {(c["role"], c["claim"]): c for c in matrix["cells"]}
    assert cells[("service_role", "service_role")]["insert"] == "refused: 42501 rls"
    assert cells[("anon", "anon")]["insert"] == "refused: 42501 rls"
    own = cells[(matrix["own_role"], "(none: the portal's own connection)")]
    assert own["insert"].startswith("refused: 23514 check profiles_")
    assert matrix["bypassrls"] is False and len(matrix["notes"]) == 1
    assert matrix["notes"][-1].startswith(
        f"Every INSERT writes the engine's row for the test session {sid}"
    )
    # The plan's policy: the real service_role gets past RLS, and so does a forged claim;
    # both meet the CHECK constraints next.
    apply_plan_policy()
    matrix = probe.probe_write_path()
    cells = {(c["role"], c["claim"]): c for c in matrix["cells"]}
    assert cells[("service_role", "service_role")]["insert"].startswith("refused: 23514 check")
    forged = cells[("authenticated", "service_role (forged)")]
    assert forged["insert"].startswith("refused: 23514 check")
    assert cells[("authenticated", "authenticated")]["insert"] == "refused: 42501 rls"
    assert any("forged claim gets through" in n and "TO service_role" in n for n in matrix["notes"])
    # Hosted Supabase: service_role bypasses RLS, the policy changes nothing for it.
    pipeline_sql('DROP POLICY "Service role can manage profiles" ON profiles')
    pipeline_sql("ALTER ROLE service_role BYPASSRLS")
    matrix = probe.probe_write_path()
    cells = {(c["role"], c["claim"]): c for c in matrix["cells"]}
    assert cells[("service_role", "service_role")]["insert"].startswith("refused: 23514 check")
    assert cells[("authenticated", "service_role (forged)")]["insert"] == "refused: 42501 rls"
    assert any("BYPASSRLS" in n for n in matrix["notes"])
    assert not any("forged claim" in n for n in matrix["notes"])
    # The values fit: service_role writes the engine's row.
    relax_checks()
    matrix = probe.probe_write_path()
    cells = {(c["role"], c["claim"]): c for c in matrix["cells"]}
    assert cells[("service_role", "service_role")]["insert"] == "allowed"
    assert pipeline_sql("SELECT count(*) FROM profiles", fetch="one")[0] == 0  # all rolled back


def test_verification_checks_the_success_criteria(ref):
    old = make_session(seed=1, completed_at=timezone.now() - timedelta(days=3))
    newest = make_session(seed=2, completed_at=timezone.now() - timedelta(hours=1))
    failed = runbook_services.runbook_verify()
    assert failed["session_id"] == newest
    statuses = {c["key"]: c["status"] for c in failed["checks"]}
    # The write failed on RLS, though the fallback event was recorded before it.
    assert statuses == {
        "profile_v121": "FAIL",
        "no_rls_violation": "FAIL",
        "fc_fallback_logged": "PASS",
    }
    pipeline_sql("ALTER ROLE service_role BYPASSRLS")
    relax_checks()
    ok = runbook_services.runbook_verify(session_id=old)
    assert {c["key"]: c["status"] for c in ok["checks"]} == {
        "profile_v121": "PASS",
        "no_rls_violation": "PASS",
        "fc_fallback_logged": "PASS",
    }
    assert ok["results_url"].startswith("http")


def test_gates_switch_version_and_maintenance(ref):
    gates.results_version_set(version="v1.2.0")
    assert (
        pipeline_sql(
            "SELECT value #>> '{}' FROM scoring_config WHERE key = 'results_version'", fetch="one"
        )[0]
        == "v1.2.0"
    )
    gates.results_version_set(version="v1.2.1")
    with pytest.raises(ValueError):
        gates.results_version_set(version="v9")
    gates.maintenance_set(on=True, message="IR-07 in progress", actor="eng")
    value = json.loads(
        pipeline_sql(
            "SELECT value::text FROM scoring_config WHERE key = 'system_status'", fetch="one"
        )[0]
    )
    assert value["status"] == "maintenance" and value["updated_by"] == "eng"
    gates.maintenance_set(on=False)
    assert status_of("system_status") == "PASS"


def _engineer(client, with_perm=True):
    user = User.objects.create_user("eng", "e@example.org", "pw", is_staff=True)
    perms = ["view_runbookrecord"] + (["run_runbook"] if with_perm else [])
    user.user_permissions.set(Permission.objects.filter(codename__in=perms))
    client.force_login(user)


def test_the_page_runs_checks_saves_them_and_compares_and_exports(client, ref):
    _engineer(client)
    page = reverse("admin:runbook")
    assert "No checks run yet" in client.get(page).content.decode()
    client.post(reverse("admin:runbook_action", args=["checks"]), {"label": "before Fix A"})
    apply_plan_policy()
    client.post(reverse("admin:runbook_action", args=["checks"]), {"label": "after Fix A"})
    before, after = RunbookRecord.objects.filter(kind="checks").order_by("created_at")
    assert before.created_by_name == "eng" and before.label == "before Fix A"
    body = client.get(page).content.decode()
    assert 'id="checks-table"' in body and "after Fix A" in body
    compare = client.get(
        reverse("admin:runbook_compare"), {"a": before.pk, "b": after.pk}
    ).content.decode()
    assert 'data-key="policy_count" class="changed"' in compare
    md = client.get(reverse("admin:runbook_export")).content.decode()
    assert (
        md.startswith("# IR-07 incident record")
        and "before Fix A" in md
        and "| Policies on profiles" in md
    )


def test_changes_need_the_runbook_permission(client, ref):
    _engineer(client, with_perm=False)
    for action in ("checks", "apply_a", "maintenance_on", "version_v120"):
        assert client.post(reverse("admin:runbook_action", args=[action])).status_code == 403
    assert client.get(reverse("admin:runbook_action", args=["checks"])).status_code == 405
    assert status_of("system_status") == "PASS" and RunbookRecord.objects.count() == 0


def test_ir07_check_command_json(capsys, ref):
    call_command("ir07_check", "--json", "--probe", "--save", "cli run")
    out = json.loads(capsys.readouterr().out)
    keys = [c["key"] for c in out["checks"]]
    assert {"policy_count", "rls_enabled", "check_constraints", "grants"} <= set(keys)
    assert out["probe"]["cells"]
    assert RunbookRecord.objects.filter(kind="checks", label="cli run").exists()
