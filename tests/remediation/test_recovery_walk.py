"""The incident's recovery walked on both emulated schemas, as the runbook walks it.

From the first failing check to 100 % conversion: diagnose, apply the fixes the database
needs (the checks say which), backfill every orphan (exactly one v1.2.1 profile each), then
roll everything back, with the state reported truthfully at each step (issue 14, "Done
when").
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from remediation import jobs
from remediation.fixes import executor
from remediation.selectors import checks
from remediation.selectors.health import conversion
from remediation.services import session_diagnose
from tests.factories import load_reference_data, make_session, pipeline_sql, rollback_run

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


def _needed(by_key: dict) -> list[str]:
    """The fixes the live checks call for, in the runbook's order."""
    needed = []
    if by_key["service_role_bypassrls"].figure != "true" and by_key["policy_count"].figure == "0":
        needed.append("A")
    if by_key["check_constraints"].status == checks.FAIL:
        needed.append("D")
    if by_key["triggers"].status == checks.FAIL:
        needed.append("E")
    return needed


def test_from_the_first_failing_check_to_full_conversion_and_back(schema_variant):
    load_reference_data()
    orphans = [make_session(seed=i) for i in range(4)]
    first = session_diagnose(session_id=orphans[0])
    assert (first.category, first.sqlstate) == (
        schema_variant.first_blocker,
        schema_variant.first_blocker_sqlstate,
    )
    by_key = {c.key: c for c in checks.run_checks()}
    needed = _needed(by_key)
    # The emulation (as the tests load it): no BYPASSRLS and no policy, the CHECKs, no
    # recursive trigger. The rebuilt database: BYPASSRLS, the CHECKs, the recursive trigger.
    assert needed == {"emulation": ["A", "D"], "rebuilt": ["D", "E"]}[schema_variant.name]
    seen = [first.category]
    try:
        for fix in needed:
            assert executor.run(fix) is True
            seen.append(session_diagnose(session_id=orphans[0]).category)
        # Each fix moved the write to the next blocker, and the last one clears it.
        assert seen[-1] == "would_succeed" and len(set(seen)) == len(seen)
        run = jobs.run_until_done(jobs.backfill_start(selection="filter", enqueue=False).pk)
        assert (run.state, run.created, run.failed) == ("succeeded", 4, 0), run.message
        per_session = pipeline_sql(
            "SELECT count(*), count(DISTINCT session_id), min(results_version),"
            " max(results_version) FROM profiles",
            fetch="one",
        )
        assert per_session == (4, 4, "v1.2.1", "v1.2.1")
        now = timezone.now()
        assert conversion(now - timedelta(days=7), now) == (4, 4)
        # Everything rolls back, each on its own, and says what it did.
        report = rollback_run(run.pk)
        assert report["restored"] == 4 and not report["conflicts"] and not report["errors"]
        assert pipeline_sql("SELECT count(*) FROM profiles", fetch="one")[0] == 0
        assert conversion(now - timedelta(days=7), now) == (4, 0)
    finally:
        pipeline_sql("DELETE FROM profiles")
        for fix in reversed(needed):
            executor.run(fix, reverse=True)
        pipeline_sql("DROP SCHEMA IF EXISTS opsportal CASCADE")
    assert executor.applied() == set()
    again = session_diagnose(session_id=orphans[0])
    assert again.category == schema_variant.first_blocker
