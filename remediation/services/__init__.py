"""Every write the portal makes: `<noun>_<verb>(*, ...)`, each owning its transaction and
its audit record.

- `sessions`: finalize one session (local or edge), diagnose it;
- `edge`: the edge backend's attempt (POST, then believe only the database);
- `runs`: pause, resume, cancel, retry a run (starting one: remediation.jobs);
- `fixes`, `gates`, `runbook`, `probe`: the IR-07 runbook's changes and records;
- `health`: snapshots, alerts and their delivery;
- `fc`, `fc_sets`: forced-choice sets: load, roll back, undo, recompute;
- `notifications`: start a results send (a notify run), resend, the suppression list;
- `audit`: the immutable audit trail.
"""

from remediation.services.audit import audit_record
from remediation.services.sessions import (
    Diagnosis,
    InvalidSessionId,
    normalize_session_id,
    session_diagnose,
    session_finalize,
)

__all__ = [
    "Diagnosis",
    "InvalidSessionId",
    "audit_record",
    "normalize_session_id",
    "session_diagnose",
    "session_finalize",
]
