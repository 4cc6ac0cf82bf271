"""Every read the portal makes, one definition of each concept.

- `sessions`: orphans (`orphaned_sessions`, `ORPHAN_SQL`), a session's pipeline state,
  the latest known reason a session has no profile (stale after a fix or gate change:
  `changes`);
- `config`: the configured results version and the maintenance gate;
- `health`: conversion and the incident's figures;
- `checks`: the IR-07 runbook's live catalog checks (add a check there);
- `fc`: FC coverage;
- `notifications`: who can be sent their results and why not, the message as it goes
  out, the notification figures for health.

Selectors never write and never lock.
"""

from remediation.selectors.config import configured_results_version, system_status
from remediation.selectors.fc import coverage as fc_coverage
from remediation.selectors.sessions import (
    HAS_PROFILE_SQL,
    NOT_DIAGNOSED,
    ORPHAN_SQL,
    PROFILE_FOUND,
    REASON_WORDS,
    PipelineState,
    Reason,
    has_fc_responses_expression,
    has_profile_expression,
    latest_reasons,
    newest_orphan_id,
    orphan_reasons,
    orphaned_sessions,
    profile_history,
    reason_groups,
    session_pipeline_state,
    sessions_by_reason,
    sessions_with_flags,
    stored_diagnoses,
    unknown_session_ids,
)

__all__ = [
    "HAS_PROFILE_SQL",
    "NOT_DIAGNOSED",
    "ORPHAN_SQL",
    "PROFILE_FOUND",
    "REASON_WORDS",
    "PipelineState",
    "Reason",
    "configured_results_version",
    "fc_coverage",
    "has_fc_responses_expression",
    "has_profile_expression",
    "latest_reasons",
    "newest_orphan_id",
    "orphan_reasons",
    "orphaned_sessions",
    "profile_history",
    "reason_groups",
    "session_pipeline_state",
    "sessions_by_reason",
    "sessions_with_flags",
    "stored_diagnoses",
    "system_status",
    "unknown_session_ids",
]
