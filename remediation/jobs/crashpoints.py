"""Named commit boundaries of the run engine, where a test can kill the worker.

`reached("pipeline.committed")` does nothing unless OPSPORTAL_CRASH_AT (settings.CRASH_AT)
names that point: then the process kills itself with SIGKILL, exactly as `kill -9` would
(no cleanup, no rollback on our side, connections dropped), so tests can stop a worker at
every boundary deterministically instead of at random moments. "point@N" stops at the
N-th time the point is reached (1 = the first). The points, in the order a batch meets them:

    batch.started          the run is marked running (its own commit), nothing processed
    edge.claimed           an edge session's pre-image is committed, the call not made yet
    edge.answered          the edge function answered (or the call failed), completed_at not
                           put back yet, the attempt not saved
    edge.called            the edge call returned, its outcome not recorded yet
    pipeline.before_commit a batch's pipeline writes and its ledger entries are made, not
                           committed (a kill rolls both back)
    pipeline.committed     the pipeline writes and ledger entries are committed, the
                           portal's record of them not yet
    record.committed       the portal's record (items, attempts, figures, cursor, token) is
                           committed, the ledger entries not yet forgotten
    ledger.forgotten       the mirrored ledger entries are deleted, the next batch not begun
    task.between_batches   a batch is done and recorded; the same task has not begun the next
                           (the run's state and token not read again yet)
    task.handed_over       the task's time budget ran out after a recorded batch; the next
                           task not enqueued yet
    run.ended              the run's end state is committed, its follow-up (health
                           snapshot enqueued, rollback report) not made yet
"""

from __future__ import annotations

import os
import signal
from collections import Counter

from django.conf import settings

POINTS = (
    "batch.started",
    "edge.claimed",
    "edge.answered",
    "edge.called",
    "pipeline.before_commit",
    "pipeline.committed",
    "record.committed",
    "ledger.forgotten",
    "task.between_batches",
    "task.handed_over",
    "run.ended",
)
_seen: Counter[str] = Counter()


def reached(point: str) -> None:
    """Kill this process here when CRASH_AT names `point` (and this is its N-th time)."""
    wanted = getattr(settings, "CRASH_AT", "")
    if not wanted:
        return
    name, _, nth = wanted.partition("@")
    if name != point:
        return
    _seen[point] += 1
    if _seen[point] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
