"""Fix A owns only what it created, and offers the plan's form or the strict one.

pg_policies on profiles is compared before the apply and after the rollback: with no
policy there, with a same-named policy already there (a different qual, no WITH CHECK, as
in a database rebuilt from the pipeline's migrations), and with that policy dropped in
between. The two forms are checked by what they let through (a forged claim)."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections, transaction

from remediation.fixes import executor
from remediation.fixes.forms import FORMS, PLAN_POLICY_NAME
from remediation.models import AuditEvent, RunbookRecord
from remediation.services.fixes import fix_apply
from tests.factories import PLAN_POLICY, make_session, pipeline_sql

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)
STRICT_NAME = FORMS["strict"].policy
POLICIES = (
    "SELECT policyname, cmd, roles::text, qual, with_check, permissive FROM pg_policies"
    " WHERE tablename = 'profiles' ORDER BY policyname"
)
# What a real pipeline database had: the plan's name, another qual, no WITH CHECK.
HAND_MADE = (
    f'CREATE POLICY "{PLAN_POLICY_NAME}" ON public.profiles FOR ALL TO public'
    " USING (auth.role() = 'service_role' OR auth.uid() IS NOT NULL)"
)


@pytest.fixture
def pipeline_clean(pipeline_db):
    yield
    for name in (PLAN_POLICY_NAME, STRICT_NAME):
        pipeline_sql(f'DROP POLICY IF EXISTS "{name}" ON public.profiles')
    pipeline_sql("DROP SCHEMA IF EXISTS opsportal CASCADE")


def policies() -> list[tuple]:
    return pipeline_sql(POLICIES, fetch="all")


def stored_a() -> dict[str, str]:
    return dict(
        pipeline_sql(
            "SELECT object, definition FROM opsportal.fix_preimages WHERE fix = 'A'", fetch="all"
        )
    )


def forged_claim_sees() -> int:
    """How many profiles `authenticated` with a forged service_role claim can read."""
    with transaction.atomic(using="pipeline"), connections["pipeline"].cursor() as cur:
        cur.execute("SET LOCAL ROLE authenticated")
        cur.execute(
            "SELECT set_config('request.jwt.claims', %s, true)",
            [json.dumps({"role": "service_role"})],
        )
        cur.execute("SELECT count(*) FROM public.profiles")
        seen = cur.fetchone()[0]
        transaction.set_rollback(True, using="pipeline")
    return seen


def test_no_policy_before_apply_creates_rollback_drops_it(pipeline_clean):
    before = policies()
    assert PLAN_POLICY_NAME not in [p[0] for p in before]
    result = fix_apply("A")
    assert result["outcome"] == "applied" and result["form"] == "plan"
    assert f'created the policy "{PLAN_POLICY_NAME}"' in result["change"]
    assert [p[0] for p in policies()] == sorted([*[p[0] for p in before], PLAN_POLICY_NAME])
    assert stored_a()["form"] == "plan" and f"created:{PLAN_POLICY_NAME}" in stored_a()
    back = fix_apply("A", reverse=True)
    assert back["outcome"] == "rolled back"
    assert f'dropped the policy "{PLAN_POLICY_NAME}" it had created' in back["change"]
    assert policies() == before
    assert stored_a() == {}


def test_a_same_named_policy_is_recorded_left_alone_and_survives_the_rollback(pipeline_clean):
    pipeline_sql(HAND_MADE)
    before = policies()
    result = fix_apply("A")
    assert result["outcome"] == "applied"
    assert f'Fix A: a policy named "{PLAN_POLICY_NAME}" was already there' in result[
        "change"
    ] and result["change"].endswith("nothing changed")
    assert policies() == before  # nothing changed
    stored = json.loads(stored_a()[f"pre-existing:{PLAN_POLICY_NAME}"])
    assert stored == {
        "cmd": "ALL",
        "roles": ["public"],
        "qual": "((auth.role() = 'service_role'::text) OR (auth.uid() IS NOT NULL))",
        "with_check": None,
        "permissive": "PERMISSIVE",
    }
    assert f"created:{PLAN_POLICY_NAME}" not in stored_a()
    back = fix_apply("A", reverse=True)
    assert f'left the pre-existing policy "{PLAN_POLICY_NAME}" as it was' in back["change"]
    assert policies() == before
    assert not executor.is_applied("A")


def test_a_pre_existing_policy_dropped_since_is_recreated_exactly(pipeline_clean):
    pipeline_sql(HAND_MADE)
    before = policies()
    executor.run("A")
    pipeline_sql(f'DROP POLICY "{PLAN_POLICY_NAME}" ON public.profiles')
    assert policies() != before
    result = executor.execute("A", reverse=True)
    assert result.ran and "re-created the pre-existing policy" in result.notes[0]
    assert policies() == before


def test_the_plan_form_lets_a_forged_claim_through_the_strict_form_does_not(pipeline_clean):
    pipeline_sql(
        "INSERT INTO profiles (session_id) VALUES (%s)", [make_session()]
    )  # one row to see
    assert forged_claim_sees() == 0  # no policy: RLS hides it
    executor.execute("A", form="plan")
    assert forged_claim_sees() == 1
    assert executor.applied_form() == "plan"
    executor.run("A", reverse=True)

    result = fix_apply("A", form="strict")
    assert result["form"] == "strict" and "the strict form" in result["change"]
    assert executor.applied_form() == "strict"
    assert forged_claim_sees() == 0
    assert pipeline_sql(
        "SELECT cmd, roles::text, qual, with_check FROM pg_policies WHERE policyname = %s",
        [STRICT_NAME],
        "one",
    ) == ("ALL", "{service_role}", "true", "true")
    # One Fix A at a time: the other form is not stacked on top.
    again = fix_apply("A", form="plan")
    assert again["outcome"] == "unchanged" and again["form"] == "strict"
    assert PLAN_POLICY_NAME not in [p[0] for p in policies()]
    fix_apply("A", reverse=True)
    assert STRICT_NAME not in [p[0] for p in policies()]
    assert executor.applied_form() is None


def test_strict_over_a_pre_existing_plan_policy_rolls_back_only_its_own(pipeline_clean):
    pipeline_sql(PLAN_POLICY)
    before = policies()
    executor.execute("A", form="strict")
    assert [p[0] for p in policies()] == sorted([PLAN_POLICY_NAME, STRICT_NAME])
    executor.run("A", reverse=True)
    assert policies() == before


def test_a_form_is_for_applying_fix_a_only(pipeline_clean):
    with pytest.raises(ValueError, match="only when applying Fix A"):
        executor.execute("D", form="strict")
    with pytest.raises(ValueError, match="unknown Fix A form"):
        executor.execute("A", form="loose")
    assert executor.applied() == set()


def test_manage_py_fix_apply_a_with_a_form_prints_and_records_it(pipeline_clean):
    out = StringIO()
    call_command("fix", "apply", "A", "--form", "strict", stdout=out)
    assert "the strict form (TO service_role" in out.getvalue()
    record = RunbookRecord.objects.get(kind="change")
    assert record.results["form"] == "strict" and record.results["outcome"] == "applied"
    assert AuditEvent.objects.get(action="runbook.change").detail["form"] == "strict"
    status = StringIO()
    call_command("fix", "status", stdout=status)
    assert f"{executor.TITLES['A']}: applied, the strict form" in status.getvalue()
    with pytest.raises(CommandError, match="--form is for `fix apply A` only"):
        call_command("fix", "rollback", "A", "--form", "plan", stdout=StringIO())
    assert executor.applied_form() == "strict"


def test_the_page_offers_both_forms_applies_the_chosen_one_and_says_what_it_found(
    client, engineer, pipeline_clean
):
    from django.urls import reverse

    client.force_login(engineer)
    page = client.get(reverse("admin:runbook")).content.decode()
    assert 'id="fix-a-form-plan"' in page and 'id="fix-a-form-strict"' in page
    assert "a forged service_role claim from anon or authenticated does not get through" in page
    assert "including a forged claim" in page  # what the plan's form lets through

    url = reverse("admin:runbook_action", args=["apply_a"])
    bad = client.post(url, {"form": "loose", "confirm": "yes"}, follow=True).content.decode()
    assert "Unknown Fix A form loose" in bad and executor.applied() == set()

    done = client.post(url, {"form": "strict", "confirm": "yes"}, follow=True).content.decode()
    assert f"created the policy &quot;{STRICT_NAME}&quot;" in done
    assert 'id="fix-a-form">the strict form' in done
    assert RunbookRecord.objects.get(kind="change").results["form"] == "strict"
    client.post(reverse("admin:runbook_action", args=["rollback_a"]), {"confirm": "yes"})
    assert executor.applied() == set()

    pipeline_sql(HAND_MADE)
    before = policies()
    again = client.post(url, {"form": "plan", "confirm": "yes"}, follow=True).content.decode()
    assert f"a policy named &quot;{PLAN_POLICY_NAME}&quot; was already there" in again
    assert "nothing changed" in again and policies() == before


def test_an_older_fix_a_that_recorded_nothing_is_rolled_back_without_guessing(pipeline_clean):
    executor.run("A")
    pipeline_sql("DELETE FROM opsportal.fix_preimages WHERE fix = 'A'")  # as an older Fix A left it
    with_policy = policies()
    result = executor.execute("A", reverse=True)
    assert result.ran and not executor.is_applied("A")
    assert "no policy was dropped: drop it by hand if Fix A created it" in result.notes[0]
    assert policies() == with_policy
