"""FC infrastructure: versioned sets, loading, rollback and undo, coverage, recompute."""

from __future__ import annotations

import copy
import json

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from django.urls import reverse

from remediation import reference_data
from remediation.models import FcChange
from remediation.selectors.fc import coverage as fc_coverage
from remediation.services import fc, fc_sets, session_finalize
from tests.factories import (
    OPTION_A_EVERYWHERE,
    load_reference_data,
    make_session,
    pipeline_sql,
    relax_checks,
)

pytestmark = pytest.mark.django_db(databases="__all__")
SEED = json.loads(reference_data.fc_seed_path().read_text())


def fc_tables() -> dict[str, list[str]]:
    out = {}
    for table, order in (
        ("fc_blocks", "id"),
        ("fc_options", "id"),
        ("fc_responses", "session_id, block_id"),
        ("fc_scores", "session_id, version, fc_kind"),
    ):
        out[table] = [
            r[0]
            for r in pipeline_sql(
                f"SELECT to_jsonb(t)::text FROM {table} t ORDER BY {order}", fetch="all"
            )
        ]
    return out


def answer_all(sid: str, option: str = "A") -> None:
    for block in SEED["blocks"]:
        chosen = next(o for o in block["options"] if o["option_code"] == option)
        pipeline_sql(
            "INSERT INTO fc_responses (session_id, block_id, option_id) VALUES (%s, %s, %s)",
            [sid, block["id"], chosen["id"]],
        )


def test_loading_twice_changes_nothing():
    dry = fc.fc_set_load(SEED, dry_run=True)
    assert (
        len(dry.created) == 30 and fc_tables()["fc_blocks"] == []
    )  # 6 blocks + 24 options, nothing written
    first = fc.fc_set_load(SEED)
    assert len(first.created) == 30
    after_first = fc_tables()
    second = fc.fc_set_load(SEED)
    assert second.changes == 0 and second.unchanged == 30
    assert fc_tables() == after_first
    changed = copy.deepcopy(SEED)
    changed["blocks"][0]["options"][0]["weights"]["Te"] = 2
    diff = fc.fc_set_load(changed, dry_run=True)
    assert diff.updated == [f"option v1.2/{SEED['blocks'][0]['code']}/A"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s["blocks"][0]["options"][0]["weights"].update({"Xx": 1}), "weight key 'Xx'"),
        (lambda s: s["blocks"][0]["options"][0]["weights"].update({"Te": "3"}), "is not a number"),
        (
            lambda s: s["blocks"][0]["options"][1].update({"option_code": "A"}),
            "appears twice in the block",
        ),
        (lambda s: s["blocks"][1].update({"id": s["blocks"][0]["id"]}), "is used twice"),
        (lambda s: s.pop("version"), "version is missing"),
    ],
)
def test_invalid_sets_are_refused_with_every_problem_and_nothing_written(mutate, message):
    bad = copy.deepcopy(SEED)
    mutate(bad)
    with pytest.raises(fc_sets.FcSetInvalid, match=message):
        fc.fc_set_load(bad)
    assert fc_tables()["fc_blocks"] == []


def test_option_a_in_every_block_scores_as_the_spec_says():
    load_reference_data()
    fc.fc_set_load(SEED)
    sid = make_session()
    answer_all(sid, "A")
    result = fc.fc_scores_recompute([sid])
    assert {"name": "fc_scoring_attempted", "session_id": sid, "success": True} in result[sid][
        "events"
    ]
    scores, blocks = pipeline_sql(
        "SELECT scores_json::text, blocks_answered FROM fc_scores WHERE session_id = %s",
        [sid],
        "one",
    )
    assert json.loads(scores) == OPTION_A_EVERYWHERE
    assert blocks == 6


def test_finalize_before_seeding_records_the_fallback_and_after_seeding_uses_fc():
    load_reference_data()
    pipeline_sql("ALTER ROLE service_role BYPASSRLS")
    relax_checks()
    sid = make_session()
    before = session_finalize(session_id=sid)
    assert {
        "name": "fc_fallback_legacy",
        "session_id": sid,
        "reason": "no_fc_infrastructure",
    } in before.events
    fc.fc_set_load(SEED)
    answer_all(sid, "B")
    after = session_finalize(session_id=sid, rescore=True)
    names = [e["name"] for e in after.events]
    assert "fc_scores_loaded" in names and "fc_fallback_legacy" not in names
    assert (
        pipeline_sql("SELECT fc_answered_ct FROM profiles WHERE session_id = %s", [sid], "one")[0]
        == 8
    )


def test_rollback_and_undo_round_trip_exactly():
    load_reference_data()
    fc.fc_set_load(SEED)
    sid = make_session()
    answer_all(sid, "C")
    fc.fc_scores_recompute([sid])
    before = fc_tables()
    assert len(before["fc_scores"]) == 1 and len(before["fc_responses"]) == 6
    change = fc.fc_version_rollback("v1.2", actor="test")
    assert change.summary == {"fc_scores": 1, "fc_responses": 6, "fc_options": 24, "fc_blocks": 6}
    assert all(rows == [] for rows in fc_tables().values())
    fc.fc_change_undo(change.pk, actor="test")
    assert fc_tables() == before
    with pytest.raises(fc_sets.FcSetInvalid, match="already undone"):
        fc.fc_change_undo(change.pk)


def test_coverage_figures():
    load_reference_data()
    sid = make_session()  # legacy fc_map answers, no FC scores
    report = fc_coverage()
    assert report["versions"] == [] and report["legacy_sessions_without_scores"] == 1
    fc.fc_set_load(SEED)
    pipeline_sql(
        "INSERT INTO fc_scores (session_id, version, fc_kind, scores_json, blocks_answered)"
        " VALUES (%s, 'v1.1', 'types', '{}', 1)",
        [sid],
    )
    report = fc_coverage()
    assert report["versions"] == [
        {"version": "v1.2", "active_blocks": 6, "blocks": 6, "active_options": 24}
    ]
    assert report["odd_scores"] == [{"version": "v1.1", "fc_kind": "types", "count": 1}]
    assert report["legacy_sessions_without_scores"] == 0 and report["responses_without_option"] == 0


def test_fc_command(capsys, tmp_path):
    call_command("fc", "load", "--dry-run")
    assert "would change 30 rows" in capsys.readouterr().out
    call_command("fc", "load")
    call_command("fc", "load")
    assert "changed 0 rows" in capsys.readouterr().out.splitlines()[-1]
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CommandError, match="is not JSON"):
        call_command("fc", "load", str(bad))
    call_command("fc", "rollback", "v1.2")
    change = FcChange.objects.get(kind="rollback")
    call_command("fc", "undo", str(change.pk))
    call_command("fc", "coverage")
    assert "v1.2: 6/6 active blocks, 24 active options" in capsys.readouterr().out


def _manager(client, manage=True):
    user = User.objects.create_user("eng", "e@example.org", "pw", is_staff=True)
    names = [
        "view_fcblock",
        "view_fcoption",
        "view_fcchange",
        "change_fcblock",
        "add_fcblock",
        "change_fcoption",
    ]
    names += ["manage_fc"] if manage else []
    user.user_permissions.set(Permission.objects.filter(codename__in=names))
    client.force_login(user)


def test_admin_load_version_page_rollback_and_undo(client):
    _manager(client)
    load = reverse("admin:remediation_fc_load")
    page = client.get(load).content.decode()
    assert "30 new" in page and "fc-load-confirm" in page
    assert fc_tables()["fc_blocks"] == []
    client.post(load, {"confirm": "yes"})
    assert len(fc_tables()["fc_blocks"]) == 6
    version = client.get(reverse("admin:remediation_fc_version", args=["v1.2"])).content.decode()
    assert version.count("<tr>") >= 24 and "WORK_PREF" in version
    ids = [b["id"] for b in SEED["blocks"][:1]]
    client.post(
        reverse("admin:remediation_fcblock_changelist"),
        {"action": "rollback_versions", "_selected_action": ids, "post": "yes"},
    )
    assert fc_tables()["fc_blocks"] == []
    change = FcChange.objects.get(kind="rollback")
    undo = {"action": "undo", "_selected_action": [change.pk]}
    changes = reverse("admin:remediation_fcchange_changelist")
    page = client.post(changes, undo).content.decode()  # first the confirmation page
    assert "6 blocks, 24 options, 0 responses, 0 FC scores put back" in page
    assert "<code>WORK_PREF</code>" in page and 'value="Yes, undo 1 rollback"' in page
    assert fc_tables()["fc_blocks"] == []  # nothing changed yet
    done = client.post(changes, {**undo, "post": "yes"}, follow=True).content.decode()
    assert "6 blocks, 24 options, 0 responses, 0 FC scores put back." in done
    assert len(fc_tables()["fc_options"]) == 24
    # Undone already: the page says so and offers no Yes; a forced POST changes nothing.
    again = client.post(changes, undo).content.decode()
    assert f"Refused: rollback #{change.pk} was undone already" in again
    assert 'id="confirm-yes"' not in again
    refused = client.post(changes, {**undo, "post": "yes"}, follow=True).content.decode()
    assert "Not undone: rollback" in refused
    assert len(fc_tables()["fc_options"]) == 24
    coverage = client.get(reverse("admin:remediation_fc_coverage")).content.decode()
    assert 'id="dangling">0<' in coverage


def test_admin_validates_weights_and_needs_the_permission(client):
    fc.fc_set_load(SEED)
    _manager(client)
    option = SEED["blocks"][0]["options"][0]
    url = reverse("admin:remediation_fcoption_change", args=[option["id"]])
    resp = client.post(
        url,
        {
            "block": SEED["blocks"][0]["id"],
            "option_code": "B",
            "prompt": "x",
            "weights_json": '{"Te": "lots", "Zz": 1}',
            "order_index": 1,
        },
    )
    body = resp.content.decode()
    assert (
        "is not a number" in body
        and "weight key &#x27;Zz&#x27;" in body
        and "already used in block" in body
    )
    stored = pipeline_sql(
        "SELECT weights_json::text FROM fc_options WHERE id = %s", [option["id"]], "one"
    )[0]
    assert json.loads(stored) == option["weights"]


def test_without_manage_fc_nothing_changes(client):
    _manager(client, manage=False)
    assert client.get(reverse("admin:remediation_fc_load")).status_code == 403
    assert client.post(reverse("admin:remediation_fc_load"), {"confirm": "yes"}).status_code == 403
    assert fc_tables()["fc_blocks"] == []


def test_demo_fc_answers_then_a_backfill_uses_fc():
    from django.utils import timezone

    from remediation import jobs as bf
    from remediation import selectors
    from remediation.dev.demo import DemoRefused, seed_demo
    from remediation.dev.fc_answers import demo_fc_responses

    seed_demo(seed=2, now=timezone.now(), force=True)
    with pytest.raises(DemoRefused, match="load a set first"):
        demo_fc_responses(5)
    fc.fc_set_load(SEED)
    assert demo_fc_responses(5) == 5
    pipeline_sql("ALTER ROLE service_role BYPASSRLS")
    relax_checks()
    newest = [
        str(s)
        for s in selectors.orphaned_sessions()
        .order_by("-completed_at")
        .values_list("pk", flat=True)[:8]
    ]
    run = bf.run_until_done(bf.backfill_start(selection="ids", ids=newest, enqueue=False).pk)
    assert run.created == 8
    loaded = pipeline_sql(
        "SELECT count(*) FROM profiles WHERE session_id = ANY(%s::uuid[]) AND fc_answered_ct = 8",
        [newest],
        "one",
    )[0]
    assert loaded == 5  # the five with FC answers used FC scores; the rest fell back
