"""The Supabase adapter: everything that touches the pipeline's tables to write a profile.

- `load_context()` reads what every finalize needs once per batch (scoring key, config,
  prototypes, calibration, FC options, the live shape of the tables);
- `write_batch()` / `write_session()` write profiles as the pipeline does, as
  service_role with PostgREST's claims, one savepoint per session;
- `images` holds pre-images, fingerprints and restore (exact rollback);
- `classify_error()` turns a database error into its SQLSTATE, constraint and cause;
- `pipeline_transaction()` is the one transaction shape, with lock and statement timeouts;
  `timeouts.PipelineTimeout` is what a statement that hits one raises (55P03 / 57014).

Callers own the transaction (services and jobs); nothing here records portal state.
"""

from remediation.pipeline import images
from remediation.pipeline.context import FC_VERSION, PipelineContext, load_context, portal_event
from remediation.pipeline.errors import (
    DbErrorInfo,
    FinalizeRefused,
    ProfileWriteFailed,
    classify_error,
)
from remediation.pipeline.images import fingerprints, read_pre_images, restore
from remediation.pipeline.outcomes import SessionOutcome, WriteResult, results_url
from remediation.pipeline.reads import read_answers
from remediation.pipeline.sql import as_service_role, postgrest_claims, uuid_array
from remediation.pipeline.timeouts import PipelineTimeout
from remediation.pipeline.transaction import pipeline_transaction, set_timeouts
from remediation.pipeline.write import mark_busy, write_batch, write_session

__all__ = [
    "FC_VERSION",
    "DbErrorInfo",
    "FinalizeRefused",
    "PipelineContext",
    "PipelineTimeout",
    "ProfileWriteFailed",
    "SessionOutcome",
    "WriteResult",
    "as_service_role",
    "classify_error",
    "fingerprints",
    "images",
    "load_context",
    "mark_busy",
    "pipeline_transaction",
    "portal_event",
    "postgrest_claims",
    "read_answers",
    "read_pre_images",
    "restore",
    "results_url",
    "set_timeouts",
    "uuid_array",
    "write_batch",
    "write_session",
]
