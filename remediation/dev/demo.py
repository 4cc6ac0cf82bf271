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

FUNCTIONS = ("Ti", "Te", "Fi", "Fe", "Ni", "Ne", "Si", "Se")
TYPES = (
    "LIE",
    "ILI",
    "ESE",
    "SEI",
    "LII",
    "ILE",
    "ESI",
    "SEE",
    "LSE",
    "SLI",
    "EIE",
    "IEI",
    "LSI",
    "SLE",
    "EII",
    "IEE",
)
# How strongly a respondent of a type endorses items of a function in each block.
BLOCK_LATENT = {
    "base": 4.5,
    "creative": 4.0,
    "demonstrative": 3.2,
    "ignoring": 2.9,
    "mobilizing": 2.7,
    "role": 2.5,
    "suggestive": 2.3,
    "vulnerable": 1.8,
}
QUESTION_COUNT = 248  # ids 1–246 have key rows; 247–248 are unkeyed free text
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


def _uuid_strings(rng: np.random.Generator, count: int) -> list[str]:
    raw = bytearray(rng.bytes(16 * count))
    arr = np.frombuffer(raw, dtype=np.uint8).reshape(count, 16).copy()
    arr[:, 6] = (arr[:, 6] & 0x0F) | 0x40  # version 4
    arr[:, 8] = (arr[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    hexes = arr.tobytes().hex()
    out = []
    for i in range(count):
        h = hexes[32 * i : 32 * i + 32]
        out.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return out


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
        cur.execute("TRUNCATE " + ", ".join(f"public.{t}" for t in PIPELINE_TABLES))
        _load_reference_data(cur, {"seed": seed, "sessions": sessions})
        t = time.perf_counter()
        plan = _plan_sessions(rng, sessions, days, now)
        stats.timings["plan"] = time.perf_counter() - t
        t = time.perf_counter()
        _copy_sessions(cur, plan)
        stats.timings["sessions"] = time.perf_counter() - t
        t = time.perf_counter()
        stats.responses, stats.answer_sets, stats.numeric_only_sessions = _copy_responses(
            cur, rng, plan, answer_sets
        )
        stats.timings["responses"] = time.perf_counter() - t
        t = time.perf_counter()
        stats.profiles = _copy_profiles(cur, rng, plan, now)
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
        _load_reference_data(cur, marker)


def _load_reference_data(cur: Any, marker: dict[str, Any] | None) -> None:
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
    ids = _uuid_strings(rng, n)
    # The newest completed session carries the IR-07 plan's test session id.
    newest_completed = int(np.flatnonzero(status == 2)[-1])
    ids[newest_completed] = INCIDENT_SESSION_ID
    target = rng.integers(0, 16, n)
    with_user = rng.random(n) < 0.6
    user_ids = _uuid_strings(rng, n)
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


def _iso(value: np.datetime64) -> str:
    return str(value) + "+00:00"


def _copy_sessions(cur: Any, plan: dict[str, Any]) -> None:
    status_names = ("in_progress", "abandoned", "completed")
    n = plan["n"]
    created_s = np.datetime_as_string(plan["created"], unit="us")
    completed_s = np.datetime_as_string(plan["completed"], unit="us")
    updated_s = np.datetime_as_string(
        np.where(plan["status"] == 2, plan["completed"], plan["created"] + plan["duration"] // 2),
        unit="us",
    )
    expires_s = np.datetime_as_string(plan["completed"] + np.timedelta64(30, "D"), unit="us")
    lines = []
    for i in range(n):
        st = int(plan["status"][i])
        done = st == 2
        lines.append(
            "\t".join(
                (
                    plan["ids"][i],
                    plan["user_ids"][i] or "\\N",
                    "prism",
                    created_s[i] + "+00",
                    completed_s[i] + "+00" if done else "\\N",
                    str(QUESTION_COUNT),
                    str(int(plan["answered"][i])),
                    '{"source": "web", "demo": true}',
                    created_s[i] + "+00",
                    updated_s[i] + "+00",
                    f"respondent{i:07d}@example.org",
                    status_names[st],
                    plan["tokens"][i],
                    expires_s[i] + "+00" if done else "\\N",
                    completed_s[i] + "+00" if done else "\\N",
                )
            )
        )
        if len(lines) >= 50_000:
            _flush(cur, "assessment_sessions", lines)
    _flush(cur, "assessment_sessions", lines)


_COPY_COLUMNS = {
    "assessment_sessions": (
        "id, user_id, session_type, started_at, completed_at, total_questions,"
        " completed_questions, metadata, created_at, updated_at, email, status, share_token,"
        " share_token_expires_at, finalized_at"
    ),
    "assessment_responses": (
        "id, session_id, question_id, question_text, question_type, question_section,"
        " answer_value, answer_numeric, created_at"
    ),
}


def _flush(cur: Any, table: str, lines: list[str]) -> None:
    if not lines:
        return
    with cur.copy(f"COPY public.{table} ({_COPY_COLUMNS[table]}) FROM STDIN") as copy:
        copy.write("\n".join(lines) + "\n")
    lines.clear()


def _copy_responses(
    cur: Any, rng: np.random.Generator, plan: dict[str, Any], answer_sets: int
) -> tuple[int, int, int]:
    """Full answer sets for the `answer_sets` newest sessions (all of them by default)."""
    n = plan["n"]
    chosen = np.arange(max(0, n - answer_sets), n)
    m = len(chosen)
    if m == 0:
        return 0, 0, 0
    key = {r.question_id: r for r in reference_data.scoring_key_rows()}
    protos: dict[str, dict[str, str]] = {}
    for type_code, func, block in reference_data.type_prototypes():
        protos.setdefault(type_code, {})[func] = block
    latent_by_type = np.array(
        [[BLOCK_LATENT[protos[t][f]] for f in FUNCTIONS] for t in TYPES]
    )  # 16 × 8
    latent = latent_by_type[plan["target"][chosen]] + rng.normal(0, 0.35, (m, 8))
    status = plan["status"][chosen]
    completed = plan["completed"][chosen]
    # A few recent completed sessions saved their Likert answers through the RPC that
    # fills only answer_numeric (the v1.2.1 scorer dropped them).
    recent_done = np.flatnonzero(
        (status == 2) & (completed >= plan["now"] - np.timedelta64(20, "D"))
    )
    numeric_only = np.zeros(m, dtype=bool)
    if len(recent_done):
        numeric_only[rng.choice(recent_done, min(5, len(recent_done)), replace=False)] = True
    answered = plan["answered"][chosen]
    countries = ("NZ", "AU", "US", "GB", "DE", "CA", "IE", "NL")
    values_text: list[np.ndarray] = []
    values_num: list[np.ndarray] = []
    for qid in range(1, QUESTION_COUNT + 1):
        row = key.get(qid)
        if row is None:
            values_text.append(np.array(["I enjoyed this."] * m, dtype=object))
            values_num.append(np.full(m, -1))
            continue
        st = row.scale_type
        if st.startswith("LIKERT_1_5") and row.tag and row.tag[:2] in FUNCTIONS:
            f = FUNCTIONS.index(row.tag[:2])
            raw = np.clip(np.rint(latent[:, f] + rng.normal(0, 0.8, m)), 1, 5).astype(int)
            if row.reverse_scored:
                raw = 6 - raw
            values_num.append(raw)
            values_text.append(raw.astype(str).astype(object))
        elif st.startswith(("LIKERT", "STATE")):
            hi = 7 if st.endswith("1_7") else 5
            raw = rng.integers(1, hi + 1, m)
            values_num.append(raw)
            values_text.append(raw.astype(str).astype(object))
        elif st.startswith("FORCED_CHOICE"):
            letters = "ABCDE"[: int(st.rsplit("_", 1)[1])]
            pick = rng.integers(0, len(letters), m)
            if row.fc_map:
                # Most respondents pick the option of their strongest mapped function.
                opts = [(letter, fn) for letter, fn in row.fc_map.items() if fn in FUNCTIONS]
                scores = np.stack([latent[:, FUNCTIONS.index(fn)] for _, fn in opts], axis=1)
                best = np.argmax(scores, axis=1)
                best_letter = np.array([letters.index(opts[b][0]) for b in best])
                pick = np.where(rng.random(m) < 0.7, best_letter, pick)
            values_text.append(np.array(list(letters), dtype=object)[pick])
            values_num.append(np.full(m, -1))
        else:  # META: demographics and contact fields
            if qid == 1:
                vals = np.array([f"respondent{i:07d}@example.org" for i in chosen], dtype=object)
            elif qid == 4:
                vals = np.array(countries, dtype=object)[rng.integers(0, len(countries), m)]
            else:
                vals = np.array([f"choice {k}" for k in rng.integers(1, 6, m)], dtype=object)
            values_text.append(vals)
            values_num.append(np.full(m, -1))
    created = plan["created"][chosen]
    step = plan["duration"][chosen] // QUESTION_COUNT
    total_rows = int(np.minimum(answered, QUESTION_COUNT).sum())
    ids = _uuid_strings(rng, total_rows)
    section = {
        qid: (key[qid].section or "core") if qid in key else "feedback" for qid in range(1, 249)
    }
    qtype = {qid: key[qid].scale_type.lower() if qid in key else "text" for qid in range(1, 249)}
    lines: list[str] = []
    k = 0
    for j in range(m):
        sid = plan["ids"][chosen[j]]
        n_answers = int(min(answered[j], QUESTION_COUNT))
        times = np.datetime_as_string(created[j] + step[j] * np.arange(1, n_answers + 1), unit="us")
        only_numeric = bool(numeric_only[j])
        for q in range(n_answers):
            qid = q + 1
            num = int(values_num[q][j])
            text = values_text[q][j]
            is_likert = qid in key and key[qid].scale_type.startswith("LIKERT")
            if num >= 0:
                value = "\\N" if (only_numeric and is_likert) else text
                numeric = str(num)
            else:
                value, numeric = text, "\\N"
            lines.append(
                f"{ids[k]}\t{sid}\t{qid}\tPRISM item {qid}\t{qtype[qid]}\t{section[qid]}"
                f"\t{value}\t{numeric}\t{times[q]}+00"
            )
            k += 1
        if len(lines) >= 200_000:
            _flush(cur, "assessment_responses", lines)
    _flush(cur, "assessment_responses", lines)
    return total_rows, int((status == 2).sum()), int(numeric_only.sum())


def _copy_profiles(cur: Any, rng: np.random.Generator, plan: dict[str, Any], now: datetime) -> int:
    """The historic v1.2.0 profiles (their values fit the CHECK constraints of the time)."""
    protos: dict[str, dict[str, str]] = {}
    for type_code, func, block in reference_data.type_prototypes():
        protos.setdefault(type_code, {})[func] = block
    idx = np.flatnonzero(plan["profile"])
    tokens = rng.bytes(16 * len(idx)).hex()
    profile_ids = _uuid_strings(rng, len(idx))
    created_s = np.datetime_as_string(plan["profile_created"][idx], unit="us")
    with cur.copy(
        "COPY public.profiles (id, session_id, user_id, share_token, type_code, base_func,"
        " creative_func, top_types, score_fit_raw, score_fit_calibrated, fit_band, top_gap,"
        " close_call, strengths, overlay_neuro, overlay_state, overlay, validity_status,"
        " confidence, conf_raw, conf_calibrated, conf_band, fc_answered_ct,"
        " fc_coverage_bucket, results_version, version, submitted_at, created_at, updated_at)"
        " FROM STDIN"
    ) as copy:
        for k, i in enumerate(idx):
            t = TYPES[int(plan["target"][i])]
            base = next(f for f, b in protos[t].items() if b == "base")
            creative = next(f for f, b in protos[t].items() if b == "creative")
            fit = round(float(rng.uniform(52, 78)), 4)
            conf = round(float(rng.uniform(0.45, 0.9)), 4)
            band = "High" if conf >= 0.75 else "Moderate" if conf >= 0.55 else "Low"
            stamp = created_s[k] + "+00"
            copy.write_row(
                (
                    profile_ids[k],
                    plan["ids"][i],
                    plan["user_ids"][i],
                    tokens[32 * k : 32 * k + 32],
                    t,
                    base,
                    creative,
                    json.dumps([{"code": t, "share": round(float(rng.uniform(0.3, 0.6)), 4)}]),
                    fit,
                    fit,
                    "high_fit" if fit >= 60 else "moderate_fit",
                    round(float(rng.uniform(0.5, 6)), 3),
                    False,
                    json.dumps({f: round(float(rng.uniform(1, 5)), 3) for f in FUNCTIONS}),
                    "0",
                    "0",
                    "0",
                    "pass",
                    band,
                    conf,
                    conf,
                    band,
                    0,
                    "None",
                    "v1.2.0",
                    "v1.2.0",
                    stamp,
                    stamp,
                    stamp,
                )
            )
    return len(idx)


def demo_fc_responses(count: int, *, seed: int = 11) -> int:
    """Demo only: FC answers for the newest `count` completed sessions, as the web client
    would have saved them once FC v1.2 was live (refused outside a seed_demo database)."""
    import random

    with connections["pipeline"].cursor() as cur:
        cur.execute(
            "SELECT EXISTS (SELECT 1 FROM scoring_config WHERE key = %s)", [DEMO_MARKER_KEY]
        )
        if not cur.fetchone()[0]:
            raise DemoRefused("demo FC answers are only written into a seed_demo database")
        cur.execute(
            "SELECT b.id::text, array_agg(o.id::text ORDER BY o.order_index) FROM fc_blocks b"
            " JOIN fc_options o ON o.block_id = b.id WHERE b.is_active GROUP BY b.id ORDER BY b.id"
        )
        blocks = cur.fetchall()
        if not blocks:
            raise DemoRefused("no active FC blocks: load a set first")
        cur.execute(
            "SELECT id::text FROM assessment_sessions WHERE status = 'completed'"
            " ORDER BY completed_at DESC, id LIMIT %s",
            [count],
        )
        sessions = [r[0] for r in cur.fetchall()]
        rng = random.Random(seed)
        rows = [(sid, block, rng.choice(options)) for sid in sessions for block, options in blocks]
        cur.executemany(
            "INSERT INTO fc_responses (session_id, block_id, option_id) VALUES (%s, %s, %s)"
            " ON CONFLICT (session_id, block_id) DO NOTHING",
            rows,
        )
    return len(sessions)
