"""The Django admin of the portal, one module per area (each registers its own admins):

- `sessions`, `orphans`, `filters`: the session list and page, the orphaned-sessions list;
- `finalize`: finalizing one session or a selection (confirmation pages);
- `backfills`, `runs`: starting a backfill (forms, confirmation pages); runs of every job kind
  (backfill, rollback, diagnosis), their pages and controls;
- `runbook`: the IR-07 runbook page (/admin/runbook/);
- `health`: the health dashboard (/admin/health/), alerts, snapshots;
- `timeline`: the incident timeline (/admin/incident/), its export, canary results, the
  auto-heal switch;
- `notifications`: sending results (the confirmation page), the notification list, the
  suppression list, the demo's mail sink;
- `fc`, `audit`, `attempts`, `pipeline_tables`: FC sets, the audit trail, attempts and
  diagnoses, the pipeline's tables read-only;
- `base`, `permissions`: building blocks, the one permission and LogEntry helpers (the
  admin site with the custom pages is opsportal.admin_site).
"""

from remediation.admin import (  # noqa: F401  (importing a module registers its admins)
    attempts,
    audit,
    backfills,
    fc,
    health,
    notifications,
    orphans,
    pipeline_tables,
    runbook,
    runs,
    sessions,
    timeline,
)
