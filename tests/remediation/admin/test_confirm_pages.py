"""Every action that changes the pipeline database or deletes asks first, with a preview:
a GET (or a crafted POST without the confirm field) shows what it would do and changes
nothing, the confirmed POST does it and is audited. The fixes, the gates, a run's rollback
and cancel, the FC version rollback; on both schema variants."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse
from django.utils.html import escape

from remediation import jobs
from remediation.fixes import executor
from remediation.fixes.forms import FORMS
from remediation.fixes.operations import portal_schema
from remediation.models import AuditEvent, BackfillRun, FcChange, RunbookRecord
from remediation.selectors.config import configured_results_version, system_status
from remediation.services import fc
from remediation.services.fc_sets import read_set
from tests.factories import clear_write_path, load_reference_data, make_session, pipeline_sql

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)
RUNBOOK = "admin:runbook_action"


def pipeline_state() -> dict[str, object]:
    """The pipeline's catalog and rows a confirmation page must not change, and the portal's
    records of changes."""
    schema = portal_schema()
    queries = {
        "policies": "SELECT tablename, policyname, cmd, roles::text, qual, with_check"
        " FROM pg_policies WHERE schemaname = 'public' ORDER BY 1, 2",
        "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
        " FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
        "triggers": "SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid),"
        " pg_get_functiondef(tgfoid) FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1, 2",
        "schemas": "SELECT nspname FROM pg_namespace ORDER BY 1",
        "portal_tables": "SELECT c.relname FROM pg_class c JOIN pg_namespace n"
        f" ON n.oid = c.relnamespace WHERE n.nspname = '{schema}' ORDER BY 1",
        "config": "SELECT key, value::text, updated_at FROM scoring_config ORDER BY 1",
        "profiles": "SELECT md5(coalesce(string_agg(to_jsonb(p)::text, ',' ORDER BY p.id::text),"
        " '')) FROM profiles p",
        "sessions": "SELECT md5(coalesce(string_agg(to_jsonb(s)::text, ',' ORDER BY s.id::text),"
        " '')) FROM assessment_sessions s",
        "fc": "SELECT (SELECT count(*) FROM fc_blocks), (SELECT count(*) FROM fc_options),"
        " (SELECT count(*) FROM fc_responses), (SELECT count(*) FROM fc_scores)",
    }
    state: dict[str, object] = {k: pipeline_sql(q, fetch="all") for k, q in queries.items()}
    if pipeline_sql("SELECT to_regclass(%s)", [f"{schema}.fix_preimages"], fetch="one")[0]:
        state["preimages"] = pipeline_sql(
            f"SELECT fix, object, definition FROM {schema}.fix_preimages ORDER BY 1, 2",
            fetch="all",
        )
    state["applied"] = sorted(executor.applied())
    state["portal"] = (
        AuditEvent.objects.count(),
        RunbookRecord.objects.count(),
        BackfillRun.objects.count(),
        FcChange.objects.count(),
        list(BackfillRun.objects.order_by("pk").values_list("pk", "state")),
    )
    return state


def asks_and_changes_nothing(client, url, data=None) -> str:
    """GET, then a crafted POST without `confirm`: both show the page, neither changes a thing."""
    before = pipeline_state()
    page = client.get(url, data or {})
    assert page.status_code == 200 and 'id="confirm-yes"' in page.content.decode()
    assert pipeline_state() == before
    crafted = client.post(url, data or {})
    assert crafted.status_code == 200 and 'id="confirm-yes"' in crafted.content.decode()
    assert pipeline_state() == before
    return page.content.decode()


@pytest.fixture
def fixes_restored(schema_variant):
    load_reference_data()
    assert executor.applied() == set()
    yield schema_variant
    pipeline_sql("DELETE FROM profiles")
    for name in ("E", "D", "A"):
        executor.run(name, reverse=True)
    pipeline_sql(f"DROP SCHEMA IF EXISTS {portal_schema()} CASCADE")


def _policies() -> list[str]:
    rows = pipeline_sql(
        "SELECT policyname FROM pg_policies WHERE tablename = 'profiles' ORDER BY 1", fetch="all"
    )
    return [r[0] for r in rows]


def test_fix_a_shows_both_forms_sql_and_the_policies_then_applies_the_chosen_one(
    client, engineer, fixes_restored
):
    client.force_login(engineer)
    url = reverse(RUNBOOK, args=["apply_a"])
    page = asks_and_changes_nothing(client, url, {"form": "strict"})
    existing = _policies()
    for f in FORMS.values():
        if f.policy in existing:  # a pre-existing policy of that name is left alone: no SQL
            assert escape(f'a policy named "{f.policy}" is already there') in page
            assert escape(f.sql) not in page
        else:
            assert escape(f.sql) in page
    assert 'id="confirm-form-strict" checked' in page
    assert "CREATE SCHEMA IF NOT EXISTS" in page  # the bookkeeping it creates is shown too
    for name in _policies():  # the policies on profiles now, from pg_policies
        assert escape(name) in page
    assert not AuditEvent.objects.filter(action="runbook.change").exists()

    done = client.post(url, {"form": "strict", "confirm": "yes"}, follow=True).content.decode()
    assert executor.applied() == {"A"} and executor.applied_form() == "strict"
    assert FORMS["strict"].policy in _policies()
    assert "Now: Fix A applied now, Fix D not applied (unchanged), Fix E not applied" in done
    event = AuditEvent.objects.get(action="runbook.change")
    assert event.actor == "engineer" and event.detail["form"] == "strict"

    back = reverse(RUNBOOK, args=["rollback_a"])
    page = asks_and_changes_nothing(client, back)
    assert escape(f'DROP POLICY IF EXISTS "{FORMS["strict"].policy}" ON public.profiles') in page
    assert "dropped (Fix A created it)" in page
    client.post(back, {"confirm": "yes"})
    assert executor.applied() == set() and FORMS["strict"].policy not in _policies()
    assert AuditEvent.objects.filter(action="runbook.change").count() == 2


def _constraint_defs() -> dict[str, str]:
    rows = pipeline_sql(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = 'public.profiles'::regclass AND contype = 'c'",
        fetch="all",
    )
    return dict(rows)


def test_fix_d_lists_the_constraints_and_a_blocked_rollback_says_what_happened_to_each_fix(
    client, engineer, fixes_restored
):
    client.force_login(engineer)
    neuro = "profiles_overlay_neuro_check"
    old = _constraint_defs()
    page = asks_and_changes_nothing(client, reverse(RUNBOOK, args=["apply_d"]))
    assert escape(old[neuro]) in page  # the definition now, read from pg_constraint
    assert escape(f'ALTER TABLE public.profiles DROP CONSTRAINT "{neuro}"') in page
    assert escape("OR overlay_neuro IN ('none')") in page
    client.post(reverse(RUNBOOK, args=["apply_d"]), {"confirm": "yes"})
    assert executor.applied() == {"D"}
    # Fix E too (the rebuilt schema's recursive trigger would reject the insert below); the
    # issue's case: a refused rollback of Fix D must leave Fix E applied, and say so.
    client.post(reverse(RUNBOOK, args=["apply_e"]), {"confirm": "yes"})
    assert executor.applied() == {"D", "E"}

    sid = make_session(seed=1)
    pipeline_sql(
        "INSERT INTO profiles (session_id, overlay_neuro, overlay_state, fc_coverage_bucket)"
        " VALUES (%s, 'none', '0', 'None')",
        [sid],
    )
    back = reverse(RUNBOOK, args=["rollback_d"])
    page = asks_and_changes_nothing(client, back)
    assert escape(f'ADD CONSTRAINT "{neuro}" {old[neuro]}') in page  # the stored definition
    assert "confirming would be refused and change nothing" in page
    assert f"<code>{neuro}</code>: 1 profile would violate it" in page
    before = pipeline_state()
    done = client.post(back, {"confirm": "yes"}, follow=True).content.decode()
    assert "Fix D rollback refused; nothing was changed." in done
    assert (
        "Now: Fix A not applied (unchanged), Fix D applied (unchanged),"
        " Fix E applied (unchanged)." in done
    )
    after = pipeline_state()
    assert {k: v for k, v in after.items() if k != "portal"} == {
        k: v for k, v in before.items() if k != "portal"
    }
    assert executor.applied() == {"D", "E"}
    assert AuditEvent.objects.filter(action="runbook.change", outcome="refused").count() == 1


def test_fix_e_lists_the_triggers_it_guards(client, engineer, fixes_restored):
    client.force_login(engineer)
    triggers = pipeline_sql(
        "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger"
        " WHERE tgrelid = 'public.profiles'::regclass AND NOT tgisinternal",
        fetch="all",
    )
    recursive = [t for t in triggers if t[0] == "update_fc_metrics_trigger"]
    page = asks_and_changes_nothing(client, reverse(RUNBOOK, args=["apply_e"]))
    if fixes_restored.name == "rebuilt":  # the rebuilt schema has the recursive trigger
        assert recursive
        assert escape(recursive[0][1]) in page
        assert "WHEN (pg_trigger_depth() &lt; 1)" in page
    else:
        assert "No recursive trigger on profiles here" in page
    client.post(reverse(RUNBOOK, args=["apply_e"]), {"confirm": "yes"})
    assert executor.applied() == {"E"}
    back = asks_and_changes_nothing(client, reverse(RUNBOOK, args=["rollback_e"]))
    if recursive:
        assert escape(f"restored to {recursive[0][1]}") in back
    client.post(reverse(RUNBOOK, args=["rollback_e"]), {"confirm": "yes"})
    assert executor.applied() == set()
    assert AuditEvent.objects.filter(action="runbook.change").count() == 2


def test_the_gates_show_their_sql_and_values_first(client, engineer, schema_variant):
    load_reference_data()
    client.force_login(engineer)
    now = configured_results_version()
    page = asks_and_changes_nothing(client, reverse(RUNBOOK, args=["version_v120"]))
    assert escape("UPDATE scoring_config SET value = to_jsonb('v1.2.0'::text)") in page
    assert f"<code>{now}</code>" in page
    client.post(reverse(RUNBOOK, args=["version_v120"]), {"confirm": "yes"})
    assert configured_results_version() == "v1.2.0"

    url = reverse(RUNBOOK, args=["maintenance_on"])
    page = asks_and_changes_nothing(client, url, {"label": "IR-07 window"})
    assert (
        escape("INSERT INTO scoring_config (key, value, updated_at) VALUES ('system_status'")
        in page
    )
    assert "IR-07 window" in page and "finalize and backfill pause" in page
    client.post(url, {"label": "IR-07 window", "confirm": "yes"})
    assert system_status()["status"] == "maintenance"
    assert system_status()["message"] == "IR-07 window"
    assert AuditEvent.objects.filter(action="runbook.change").count() == 2


def test_support_gets_no_confirmation_page(client, support, schema_variant):
    client.force_login(support)
    assert client.get(reverse(RUNBOOK, args=["apply_a"])).status_code == 403


def _finished_run(variant: str, n: int) -> tuple[BackfillRun, list[str]]:
    load_reference_data()
    with clear_write_path(variant):
        ids = [make_session(seed=i) for i in range(n)]
        run = jobs.run_until_done(
            jobs.backfill_start(selection="ids", ids=ids, enqueue=False, batch_size=10).pk
        )
    return run, ids


def test_run_rollback_shows_count_sample_csv_and_what_it_cannot_restore(
    client, engineer, schema_variant
):
    run, ids = _finished_run(schema_variant.name, 23)
    assert run.items.filter(outcome="created").count() == 23
    client.force_login(engineer)
    url = reverse("admin:remediation_backfillrun_control", args=[run.pk, "rollback"])
    page = asks_and_changes_nothing(client, url)
    assert 'id="rollback-count">23<' in page
    sample = [sid for sid in ids if sid in page]
    assert len(sample) == 20  # the first 20, as links
    assert 'id="rollback-cannot"' in page
    export = client.get(reverse("admin:remediation_backfillrun_rollback_csv", args=[run.pk]))
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert sorted(r["session_id"] for r in rows) == sorted(ids)
    assert not BackfillRun.objects.filter(kind="rollback").exists()

    resp = client.post(url, {"confirm": "yes"})
    rollback = BackfillRun.objects.get(source_run=run)
    assert rollback.estimated_total == 23
    assert resp["Location"] == reverse("admin:remediation_backfillrun_change", args=[rollback.pk])
    event = AuditEvent.objects.get(action="backfill.rollback")
    assert event.actor == "engineer" and event.session_count == 23


def test_a_refused_rollback_has_no_confirm_button(client, engineer, schema_variant):
    run, _ids = _finished_run(schema_variant.name, 1)
    run.items.update(rolled_back=True)
    client.force_login(engineer)
    url = reverse("admin:remediation_backfillrun_control", args=[run.pk, "rollback"])
    page = client.get(url).content.decode()
    assert "has no session left to restore" in page and 'id="confirm-yes"' not in page


@pytest.mark.usefixtures("one_lane")
def test_run_cancel_shows_the_sessions_not_processed_yet(client, engineer, schema_variant):
    load_reference_data()
    with clear_write_path(schema_variant.name):
        ids = [make_session(seed=i) for i in range(5)]
        run = jobs.backfill_start(selection="ids", ids=ids, enqueue=False, batch_size=2)
        jobs.process_batch(run.pk, run.batch_token, enqueue_next=False)
        jobs.transition(run.pk, BackfillRun.State.PAUSED, message="paused")
    client.force_login(engineer)
    url = reverse("admin:remediation_backfillrun_control", args=[run.pk, "cancel"])
    page = asks_and_changes_nothing(client, url)
    assert 'id="cancel-pending">3<' in page and "of 5 sessions" in page
    client.post(url, {"confirm": "yes"})
    run.refresh_from_db()
    assert run.state == "cancelled"
    assert AuditEvent.objects.get(action="backfill.cancel").actor == "engineer"
    again = client.get(url).content.decode()  # a stopped run: nothing to confirm
    assert "Nothing to cancel" in again and 'id="confirm-yes"' not in again


def test_fc_version_rollback_lists_every_block_and_option_it_removes(
    client, engineer, schema_variant
):
    from remediation import reference_data

    seed = read_set(reference_data.fc_seed_path())
    fc.fc_set_load(seed, actor="setup")
    client.force_login(engineer)
    url = reverse("admin:remediation_fcblock_changelist")
    one = {"action": "rollback_versions", "_selected_action": [seed["blocks"][0]["id"]]}
    before = pipeline_state()
    page = client.post(url, one).content.decode()  # the action's first POST: the page
    assert pipeline_state() == before
    assert "6 blocks, 24 options" in page and "You selected 1 of its 6 blocks" in page
    for block in seed["blocks"]:
        assert f"<code>{escape(block['code'])}</code>" in page
        for option in block["options"]:
            assert (
                f"<code>{escape(option['option_code'])}</code> {escape(option['prompt'])}" in page
            )
    client.post(url, {**one, "post": "yes"})
    assert pipeline_sql("SELECT count(*) FROM fc_blocks", fetch="one")[0] == 0
    event = AuditEvent.objects.get(action="fc.rollback")
    assert event.detail["fc_options"] == 24
    # Undo puts the rows back (and leaves the next test its FC set).
    fc.fc_change_undo(FcChange.objects.get(kind="rollback").pk, actor="setup")
    assert pipeline_sql("SELECT count(*) FROM fc_options", fetch="one")[0] == 24


def test_the_runbook_test_finalize_shows_the_session_and_what_it_writes_then_does_it(
    client, engineer, clear_variant
):
    sid = make_session(seed=3)
    client.force_login(engineer)
    url = reverse(RUNBOOK, args=["verify"])
    page = asks_and_changes_nothing(client, url, {"session_id": sid})
    assert f'id="verify-session-id">{sid}</a>' in page
    assert '<td id="verify-profile">none</td>' in page
    assert "public.profiles: INSERT the scored profile" in page
    assert f'name="session_id" value="{sid}"' in page
    assert not RunbookRecord.objects.filter(kind="verification").exists()
    # A malformed id is an error on the runbook page, not a 500.
    bad = client.get(url, {"session_id": "nope"}, follow=True)
    assert bad.redirect_chain[-1][0] == reverse("admin:runbook")
    assert '<li class="error">' in bad.content.decode() and "nope" in bad.content.decode()
    client.post(url, {"session_id": sid, "confirm": "yes"})
    record = RunbookRecord.objects.get(kind="verification")
    assert record.results["session_id"] == sid
    count = pipeline_sql("SELECT count(*) FROM profiles WHERE session_id = %s", [sid], fetch="one")
    assert count[0] == 1


def test_retry_failed_shows_count_and_sample_and_changes_nothing_before_yes(
    client, engineer, clear_variant
):
    ids = [make_session(seed=i) for i in range(3)]
    pipeline_sql(
        "ALTER TABLE profiles ADD CONSTRAINT not_yet CHECK (session_id <> ALL (%s::uuid[]))",
        [ids[:2]],
    )
    run = jobs.run_until_done(jobs.backfill_start(selection="ids", ids=ids, enqueue=False).pk)
    assert (run.state, run.failed) == ("finished_with_failures", 2)
    client.force_login(engineer)
    url = reverse("admin:remediation_backfillrun_control", args=[run.pk, "retry"])
    page = asks_and_changes_nothing(client, url)
    assert '<strong id="retry-count">2</strong>' in page and "2 failed (check)." in page
    sample = page[page.index('id="retry-sample"') :]
    assert all(sid in sample for sid in ids[:2]) and ids[2] not in sample
    assert 'value="Yes, retry 2 sessions"' in page
    client.post(url, {"confirm": "yes"})
    run.refresh_from_db()
    assert run.state == "enqueued" and len(run.rounds) == 2
    assert AuditEvent.objects.filter(action="backfill.retry_failed").count() == 1
