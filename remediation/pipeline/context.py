"""What every finalize reads once per batch: scoring key, config, prototypes, calibration,
FC options, and the live shape of the tables it writes."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from django.db import connections

import scoring
from remediation.pipeline.schema import TableShape, read_shapes
from scoring import Event

FC_VERSION = "v1.2"  # the FC block set the engine scores (fc_blocks.version, fc_scores.version)
DEFAULT_RESULTS_VERSION = scoring.ENGINE_VERSION


def results_version_of(config: dict[str, Any]) -> str:
    """scoring_config.results_version from a config mapping (the engine's version when unset)."""
    value = config.get("results_version")
    return value if isinstance(value, str) and value else DEFAULT_RESULTS_VERSION


def system_status_of(config: dict[str, Any]) -> dict[str, Any]:
    """scoring_config.system_status as an object ({"status": ...})."""
    value = config.get("system_status")
    return value if isinstance(value, dict) else {"status": str(value)}


@dataclass
class PipelineContext:
    """Scoring key, config, prototypes, calibration and FC options, read once per batch."""

    config: dict[str, Any]
    scorer: scoring.Scorer
    calibration_models: list[dict[str, Any]]
    fc_options: dict[str, scoring.FcOption]
    loaded_at: float = field(default_factory=time.monotonic)
    # The live shape of the tables the write path writes (remediation.pipeline.schema).
    tables: dict[str, TableShape] = field(default_factory=dict)
    # The scoring key the scorer was compiled from (what the engine can be asked).
    scoring_key: list[scoring.KeyEntry] = field(default_factory=list)

    @property
    def profile_token_needed(self) -> bool:
        """A real profiles.share_token may be NOT NULL without a default: then the profile
        takes the session's token (unique as well)."""
        profiles = self.tables.get("profiles")
        return bool(profiles and profiles.required_without_default("share_token"))

    def has(self, table: str, column: str) -> bool:
        """Whether the live table has the column (assumed when the shape was not read)."""
        shape = self.tables.get(table)
        return shape.has(column) if shape and shape.columns else True

    @property
    def results_version(self) -> str:
        return results_version_of(self.config)

    @property
    def system_status(self) -> dict[str, Any]:
        return system_status_of(self.config)

    @property
    def maintenance(self) -> bool:
        """True when scoring_config.system_status is anything but status "ok"."""
        return self.system_status.get("status") != "ok"


def load_context(using: str = "pipeline") -> PipelineContext:
    """Read the scoring inputs shared by all sessions (scoring key, config, …)."""
    with connections[using].cursor() as cur:
        cur.execute(
            "SELECT question_id, tag, scale_type, reverse_scored, fc_map FROM assessment_scoring_key"
        )
        key = [scoring.KeyEntry(q, t, s, r, _json(f)) for q, t, s, r, f in cur.fetchall()]
        cur.execute("SELECT key, value FROM scoring_config")
        config = {k: _json(v) for k, v in cur.fetchall()}
        cur.execute("SELECT type_code, func, block FROM type_prototypes")
        proto_rows = cur.fetchall()
        cur.execute(
            "SELECT id, version, stratum, knots, trained_at FROM calibration_model"
            " WHERE version = %s",
            [scoring.ENGINE_VERSION],
        )
        calibration = [
            {"id": i, "version": v, "stratum": _json(s), "knots": _json(k), "trained_at": t}
            for i, v, s, k, t in cur.fetchall()
        ]
        cur.execute(
            "SELECT o.id::text, o.block_id::text, o.option_code, o.weights_json FROM fc_options o"
        )
        fc_options = {
            oid: scoring.FcOption(oid, bid, code, _json(weights) or {})
            for oid, bid, code, weights in cur.fetchall()
        }
    # The pipeline uses the type_prototypes table only when it has exactly 128 rows.
    prototypes = scoring.prototypes_from_table_rows(
        {"type_code": t, "func": f, "block": b} for t, f, b in proto_rows
    )
    scorer = scoring.Scorer(key, scoring.EngineConfig.from_mapping(config), prototypes)
    with connections[using].cursor() as cur:
        tables = read_shapes(cur)
    return PipelineContext(config, scorer, calibration, fc_options, tables=tables, scoring_key=key)


def portal_event(name: str, session_id: str, **fields: Any) -> Event:
    """An event the portal records beside the engine's (fc_scoring_attempted, …)."""
    return Event(name, {"session_id": session_id, **fields})


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
