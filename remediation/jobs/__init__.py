"""Bulk jobs: the run engine and the job kinds on it.

- `engine`: the state machine (every transition commented), batch tokens, the per-run
  advisory lock, cursor, heartbeat, watchdog, throttle, item outcomes and counters;
- `finalize`: the backfill (give orphans their profiles; local or edge backend);
- `rollback`: restore every row a backfill changed, as its own run with progress;
- `diagnosis`: why has each session no profile, for a whole selection;
- `notify`: send each person their results link, exactly once (claim before SMTP);
- `selection`: ids, CSVs, windows and filters as lists of sessions.

A new bulk job is a `JobKind` subclass with a `process()` and a `register()` call.
"""

from remediation.jobs.diagnosis import diagnosis_start
from remediation.jobs.engine import (
    ENDED,
    STOPPED,
    TERMINAL,
    IllegalTransition,
    JobKind,
    RunError,
    end_state,
    enqueue_batch,
    failures,
    process_batch,
    run_until_done,
    runs_watchdog,
    transition,
)
from remediation.jobs.finalize import backfill_start
from remediation.jobs.rollback import run_rollback
from remediation.jobs.selection import SelectionError, parse_id_list, selection_queryset

__all__ = [
    "ENDED",
    "STOPPED",
    "TERMINAL",
    "IllegalTransition",
    "JobKind",
    "RunError",
    "SelectionError",
    "backfill_start",
    "diagnosis_start",
    "end_state",
    "enqueue_batch",
    "failures",
    "parse_id_list",
    "process_batch",
    "run_rollback",
    "run_until_done",
    "runs_watchdog",
    "selection_queryset",
    "transition",
]
