"""The incident timeline: a walked demo incident in order, its figures, the export, the switch."""

from __future__ import annotations

import pytest
from django.test import Client

from remediation.dev.breaks import break_write_path
from remediation.jobs import run_until_done
from remediation.models import Alert, AuditEvent, AutoHeal
from remediation.services.canary import canary_run
from remediation.services.health import health_check_run
from tests.factories import make_session, pipeline_sql

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "pipeline"])


@pytest.fixture
def heal_settings(settings):
    settings.AUTO_HEAL_ENABLED = True
    settings.AUTO_HEAL_THROTTLE_PER_MINUTE = 60_000
    settings.ORPHAN_ALERT_MINUTES = 0  # sessions completed just now count as fresh orphans
    return settings


def login(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def walk_incident(engineer) -> dict:
    """Healthy, broken (a CHECK), detected, Fix D from the runbook, auto-heal on, healed."""
    ok = canary_run()
    break_write_path("check")
    sessions = [make_session(seed=60 + i, completed_at=None) for i in range(2)]
    pipeline_sql(
        "UPDATE assessment_sessions SET completed_at = now() WHERE id = ANY(%s::uuid[])",
        [sessions],
    )
    failed = canary_run()
    health_check_run()
    c = login(engineer)
    response = c.post("/admin/runbook/do/apply_d/", {"label": "fix the CHECK", "confirm": "yes"})
    assert response.status_code == 302
    response = c.post("/admin/incident/autoheal/", {"enabled": "on", "confirm": "yes"})
    assert response.status_code == 302
    recovered = canary_run()
    assert recovered.outcome == "ok" and recovered.heal_run_id is not None
    run = run_until_done(recovered.heal_run_id)
    assert run.state == "succeeded"
    health_check_run()
    return {"ok": ok, "failed": failed, "recovered": recovered, "run": run, "client": c}


def test_a_walked_incident_is_shown_in_order_with_its_figures(
    heal_settings, clear_variant, roles, engineer
):
    walked = walk_incident(engineer)
    c = walked["client"]
    page = c.get("/admin/incident/")
    assert page.status_code == 200
    text = page.content.decode()
    text = text[text.index('id="timeline-events"') :]  # the events table
    order = [
        "canary failure: profile write 23514 on profiles_fc_coverage_bucket_check",
        "alert opened: write path (high)",
        "Fix D applied",
        "auto-heal switched on",
        "canary recovery",
        "alert resolved: write path",
        f"Backfill #{walked['run'].pk}",
        f"backfill (finalize) #{walked['run'].pk} succeeded",
    ]
    positions = [text.find(marker) for marker in order]
    assert -1 not in positions, dict(zip(order, positions, strict=True))
    assert positions == sorted(positions)
    assert text.count("conversion ") >= 1  # health snapshots on the timeline
    figures = page.context["figures"]
    alert = Alert.objects.get(rule="write_path")
    assert figures.alert == alert
    assert figures.known_good_at == walked["ok"].at
    assert figures.time_to_detect == alert.first_seen - walked["ok"].at
    assert figures.time_to_repair == alert.resolved_at - alert.first_seen
    assert figures.affected == 2 and figures.affected_without_profile == 0
    assert figures.time_to_results is not None
    assert any("no record of results sent" in u for u in figures.unknown)
    export = c.get("/admin/incident/export.md")
    assert export["Content-Type"].startswith("text/markdown")
    md = export.content.decode()
    assert "| sessions affected | 2 |" in md
    assert md.index("canary failure") < md.index("canary recovery")
    assert "time to detect (at most)" in md


def test_the_switch_is_for_engineers_confirmed_and_audited(
    heal_settings, pipeline_db, roles, member
):
    support = member("sup", "Support")
    engineer = member("eng", "Engineer")
    assert login(support).get("/admin/incident/").status_code == 200
    denied = login(support).post("/admin/incident/autoheal/", {"enabled": "on", "confirm": "yes"})
    assert denied.status_code == 403
    c = login(engineer)
    c.post("/admin/incident/autoheal/", {"enabled": "on"})  # not confirmed
    assert not AutoHeal.objects.filter(enabled=True).exists()
    c.post("/admin/incident/autoheal/", {"enabled": "on", "confirm": "yes"})
    assert AutoHeal.objects.get(pk=1).enabled
    assert AuditEvent.objects.get(action="autoheal.on").actor == "eng"
    assert c.get("/admin/incident/autoheal/").status_code == 405
    heal_settings.AUTO_HEAL_ENABLED = False
    page = c.get("/admin/incident/")
    assert "AUTO_HEAL_ENABLED is false" in page.content.decode()
    assert 'id="autoheal-form"' not in page.content.decode()


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?start=2026-13-45&end=x",
        "?start=1900-01-01&end=2999-01-01",
        "?alert=99999999999999999999",
        "?alert=abc&start=%00",
        "?start=2026-01-10&end=2026-01-01",
    ],
)
def test_any_query_gives_a_page_not_a_500(pipeline_db, admin_client, query):
    assert admin_client.get(f"/admin/incident/{query}").status_code in (200, 400)
    assert admin_client.get(f"/admin/incident/export.md{query}").status_code in (200, 400)


def test_the_canary_results_list_opens(pipeline_db, admin_client):
    canary_run()
    assert admin_client.get("/admin/remediation/canaryresult/").status_code == 200
