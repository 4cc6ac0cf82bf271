"""Deterministic demo data reproducing the incident (manage.py seed_demo).

The shape follows the record of 2025-09-17: sessions over about 60 days, 131 historic
profiles stamped v1.2.0 (127 on one day, 3 the next, 1 the day after), no profile for
any session completed in the last 20 days, a few in-progress and abandoned sessions, a
few sessions whose Likert answers sit only in `answer_numeric`, empty FC tables.
Bulk writes use COPY; a million sessions take well under a few minutes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from django.db import connections, transaction

from remediation import reference_data
from remediation.dev.demo_rows import (
    QUESTION_COUNT,
    copy_profiles,
    copy_responses,
    copy_sessions,
    uuid_strings,
)
from remediation.dev.emulation import CONFIG_OVERRIDES, current_variant, seed_variant_rows

INCIDENT_SESSION_ID = "618c5ea6-aeda-4084-9156-0aac9643afd3"  # the plan's test session
DEMO_MARKER_KEY = "demo_seed"
PIPELINE_TABLES = (
    "fc_scores",
    "fc_responses",
    "fc_options",
    "fc_blocks",
    "profiles",
    "assessment_responses",
    "assessment_sessions",
    "calibration_model",
    "type_prototypes",
    "scoring_config",
    "assessment_scoring_key",
)


class DemoRefused(Exception):
    """The pipeline database holds data that seed_demo did not write."""


@dataclass
class DemoStats:
    sessions: int = 0
    completed: int = 0
    in_progress: int = 0
    abandoned: int = 0
    profiles: int = 0
    orphans: int = 0
    orphans_last_20_days: int = 0
    answer_sets: int = 0
    responses: int = 0
    numeric_only_sessions: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


def _ts(value: datetime) -> str:
    return value.isoformat()


def seed_demo(
    *,
    seed: int = 7,
    sessions: int = 475,
    days: int = 60,
    now: datetime,
    answer_sets: int = 20_000,
    force: bool = False,
    using: str = "pipeline",
) -> DemoStats:
    """Replace the pipeline tables' rows with a deterministic incident of `sessions` sessions."""
    if sessions < 60:
        raise ValueError("--sessions must be at least 60 to reproduce the incident")
    started = time.perf_counter()
    stats = DemoStats(sessions=sessions)
    rng = np.random.default_rng(seed)
    conn = connections[using]
    with transaction.atomic(using=using), conn.cursor() as cur:
        _refuse_foreign_data(cur, force)
        cur.execute("SET LOCAL session_replication_role = replica")  # no triggers, no FK checks
        cur.execute("SET LOCAL statement_timeout = 0")  # seeding a million sessions takes a while
        variant = current_variant(using=using) or "emulation"
        tables = PIPELINE_TABLES + (("dashboard_statistics",) if variant == "rebuilt" else ())
        cur.execute("TRUNCATE " + ", ".join(f"public.{t}" for t in tables))
        _load_reference_data(cur, {"seed": seed, "sessions": sessions}, variant)
        seed_variant_rows(variant, using=using)  # the rebuilt database had FC v1.2 seeded
        t = time.perf_counter()
        plan = _plan_sessions(rng, sessions, days, now)
        stats.timings["plan"] = time.perf_counter() - t
        t = time.perf_counter()
        copy_sessions(cur, plan)
        stats.timings["sessions"] = time.perf_counter() - t
        t = time.perf_counter()
        stats.responses, stats.answer_sets, stats.numeric_only_sessions = copy_responses(
            cur, rng, plan, answer_sets
        )
        stats.timings["responses"] = time.perf_counter() - t
        t = time.perf_counter()
        stats.profiles = copy_profiles(cur, rng, plan, now)
        stats.timings["profiles"] = time.perf_counter() - t
        cur.execute("SET LOCAL session_replication_role = DEFAULT")
    with transaction.atomic(using=using), conn.cursor() as cur:
        cur.execute("SET LOCAL statement_timeout = 0")
        t = time.perf_counter()
        cur.execute(
            "ANALYZE public.assessment_sessions, public.assessment_responses, public.profiles"
        )
        stats.timings["analyze"] = time.perf_counter() - t
    status = plan["status"]
    stats.completed = int((status == 2).sum())
    stats.in_progress = int((status == 0).sum())
    stats.abandoned = int((status == 1).sum())
    has_profile = plan["profile"]
    stats.orphans = int(((status == 2) & ~has_profile).sum())
    recent = plan["completed"] >= plan["now"] - np.timedelta64(20, "D")
    stats.orphans_last_20_days = int(((status == 2) & ~has_profile & recent).sum())
    stats.seconds = time.perf_counter() - started
    return stats


def _refuse_foreign_data(cur: Any, force: bool) -> None:
    cur.execute("SELECT to_regclass('public.assessment_sessions') IS NOT NULL")
    if not cur.fetchone()[0]:
        raise DemoRefused("the pipeline schema is missing: run manage.py load_emulated_schema")
    if force:
        return
    cur.execute("SELECT EXISTS (SELECT 1 FROM public.assessment_sessions)")
    has_sessions = cur.fetchone()[0]
    cur.execute(
        "SELECT EXISTS (SELECT 1 FROM public.scoring_config WHERE key = %s)", [DEMO_MARKER_KEY]
    )
    is_demo = cur.fetchone()[0]
    if has_sessions and not is_demo:
        raise DemoRefused(
            "the pipeline database holds sessions that seed_demo did not write; "
            "refusing to replace them (pass --force only for a throwaway database)"
        )


def load_reference_data(*, using: str = "pipeline", marker: dict[str, Any] | None = None) -> None:
    """Scoring key, scoring_config and type_prototypes as the migrations seeded them."""
    with connections[using].cursor() as cur:
        cur.execute(
            "TRUNCATE public.assessment_scoring_key, public.scoring_config, public.type_prototypes"
        )
        _load_reference_data(cur, marker, current_variant(using=using) or "emulation")


def _load_reference_data(cur: Any, marker: dict[str, Any] | None, variant: str) -> None:
    with cur.copy(
        "COPY public.assessment_scoring_key (question_id, tag, scale_type, reverse_scored,"
        " fc_map, pair_group, social_desirability, weight, section) FROM STDIN"
    ) as copy:
        for r in reference_data.scoring_key_rows():
            copy.write_row(
                (
                    r.question_id,
                    r.tag,
                    r.scale_type,
                    r.reverse_scored,
                    json.dumps(r.fc_map) if r.fc_map is not None else None,
                    r.pair_group,
                    r.social_desirability,
                    r.weight,
                    r.section,
                )
            )
    config = dict(reference_data.scoring_config())
    config.update(CONFIG_OVERRIDES[variant])  # what this variant's database holds
    if marker is not None:
        config[DEMO_MARKER_KEY] = marker
    with cur.copy("COPY public.scoring_config (key, value) FROM STDIN") as copy:
        for key, value in sorted(config.items()):
            copy.write_row((key, json.dumps(value)))
    with cur.copy("COPY public.type_prototypes (type_code, func, block) FROM STDIN") as copy:
        for row in reference_data.type_prototypes():
            copy.write_row(row)


def _plan_sessions(rng: np.random.Generator, n: int, days: int, now: datetime) -> dict[str, Any]:
    now64 = np.datetime64(now.replace(tzinfo=None), "us")
    span_us = days * 86_400_000_000
    offsets = np.sort(rng.integers(0, span_us - 3_600_000_000, n))
    created = now64 - np.timedelta64(span_us, "us") + offsets.astype("timedelta64[us]")
    duration = rng.integers(12 * 60_000_000, 45 * 60_000_000, n).astype("timedelta64[us]")
    status = np.full(n, 2, dtype=np.int8)  # 0 in progress, 1 abandoned, 2 completed
    n_progress = max(3, round(n * 0.015))
    n_abandoned = max(5, round(n * 0.025))
    recent = np.arange(n - max(n_progress * 3, n // 30), n)
    status[rng.choice(recent, n_progress, replace=False)] = 0
    older = np.flatnonzero(status == 2)[: -max(n_progress * 3, n // 30)]
    status[rng.choice(older, n_abandoned, replace=False)] = 1
    completed = np.where(status == 2, created + duration, np.datetime64("NaT"))
    # Historic profiles: the earliest completed sessions, written in a batch 23 days
    # before now (127/131), then 3/131 the next day and 1/131 the day after.
    n_profiles = max(3, round(n * 131 / 475))
    batch_day = now64 - np.timedelta64(23, "D")
    eligible = np.flatnonzero((status == 2) & (completed < batch_day - np.timedelta64(1, "h")))
    chosen = np.sort(eligible[: min(n_profiles, len(eligible))])
    profile = np.zeros(n, dtype=bool)
    profile[chosen] = True
    first = round(len(chosen) * 127 / 131)
    third = max(1, round(len(chosen) * 1 / 131))
    day_index = np.zeros(len(chosen), dtype=np.int64)
    day_index[first:] = 1
    day_index[len(chosen) - third :] = 2
    profile_created = np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
    within = rng.integers(0, 6 * 3_600_000_000, len(chosen)).astype("timedelta64[us]")
    profile_created[chosen] = (
        batch_day + np.timedelta64(9, "h") + day_index.astype("timedelta64[D]") + within
    )
    ids = uuid_strings(rng, n)
    # The newest completed session carries the IR-07 plan's test session id.
    newest_completed = int(np.flatnonzero(status == 2)[-1])
    ids[newest_completed] = INCIDENT_SESSION_ID
    target = rng.integers(0, 16, n)
    with_user = rng.random(n) < 0.6
    user_ids = uuid_strings(rng, n)
    tokens = rng.bytes(16 * n).hex()
    return {
        "n": n,
        "now": now64,
        "ids": ids,
        "created": created,
        "duration": duration,
        "status": status,
        "completed": completed,
        "profile": profile,
        "profile_created": profile_created,
        "target": target,
        "user_ids": [u if w else None for u, w in zip(user_ids, with_user, strict=True)],
        "tokens": [tokens[32 * i : 32 * i + 32] for i in range(n)],
        "answered": np.where(status == 2, QUESTION_COUNT, rng.integers(20, 200, n)),
    }
