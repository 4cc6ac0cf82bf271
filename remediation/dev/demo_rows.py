"""The demo's rows, written with COPY: sessions, answers (with the incident's quirks) and
the profiles of the sessions that got one before the incident."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import numpy as np

from remediation import reference_data
from scoring import FUNCTIONS, TYPES

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


def uuid_strings(rng: np.random.Generator, count: int) -> list[str]:
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


def _iso(value: np.datetime64) -> str:
    return str(value) + "+00:00"


def live_columns(cur: Any, table: str) -> set[str]:
    """The columns public.`table` has in this database (the variants differ)."""
    cur.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = 'public' AND table_name = %s",
        [table],
    )
    return {r[0] for r in cur.fetchall()}


def _kept(table: str, present: set[str]) -> list[int]:
    """Indexes of the columns of _COPY_COLUMNS[table] the live table has."""
    return [i for i, c in enumerate(_ALL_COLUMNS[table]) if c in present]


def copy_sessions(cur: Any, plan: dict[str, Any]) -> None:
    keep = _kept("assessment_sessions", live_columns(cur, "assessment_sessions"))
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
        values = (
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
        lines.append("\t".join(values[k] for k in keep))
        if len(lines) >= 50_000:
            _flush(cur, "assessment_sessions", lines, keep)
    _flush(cur, "assessment_sessions", lines, keep)


# Every column the demo can fill; a COPY names those the live table has (the rebuilt
# variant has no share_token_expires_at, finalized_at or profiles.share_token).
_ALL_COLUMNS = {
    "assessment_sessions": (
        "id",
        "user_id",
        "session_type",
        "started_at",
        "completed_at",
        "total_questions",
        "completed_questions",
        "metadata",
        "created_at",
        "updated_at",
        "email",
        "status",
        "share_token",
        "share_token_expires_at",
        "finalized_at",
    ),
    "assessment_responses": (
        "id",
        "session_id",
        "question_id",
        "question_text",
        "question_type",
        "question_section",
        "answer_value",
        "answer_numeric",
        "created_at",
    ),
    "profiles": (
        "id",
        "session_id",
        "user_id",
        "share_token",
        "type_code",
        "base_func",
        "creative_func",
        "top_types",
        "score_fit_raw",
        "score_fit_calibrated",
        "fit_band",
        "top_gap",
        "close_call",
        "strengths",
        "overlay_neuro",
        "overlay_state",
        "overlay",
        "validity_status",
        "confidence",
        "conf_raw",
        "conf_calibrated",
        "conf_band",
        "fc_answered_ct",
        "fc_coverage_bucket",
        "results_version",
        "version",
        "submitted_at",
        "created_at",
        "updated_at",
    ),
}


def _flush(cur: Any, table: str, lines: list[str], keep: list[int] | None = None) -> None:
    if not lines:
        return
    names = _ALL_COLUMNS[table]
    columns = ", ".join(names[k] for k in (range(len(names)) if keep is None else keep))
    with cur.copy(f"COPY public.{table} ({columns}) FROM STDIN") as copy:
        copy.write("\n".join(lines) + "\n")
    lines.clear()


def copy_responses(
    cur: Any, rng: np.random.Generator, plan: dict[str, Any], answer_sets: int
) -> tuple[int, int, int]:
    """Full answer sets for the `answer_sets` newest sessions (all of them by default)."""
    # Long on purpose: one COPY stream with the incident's answer quirks in one place.
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
    ids = uuid_strings(rng, total_rows)
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


def copy_profiles(cur: Any, rng: np.random.Generator, plan: dict[str, Any], now: datetime) -> int:
    """The historic v1.2.0 profiles (their values fit the CHECK constraints of the time)."""
    protos: dict[str, dict[str, str]] = {}
    for type_code, func, block in reference_data.type_prototypes():
        protos.setdefault(type_code, {})[func] = block
    idx = np.flatnonzero(plan["profile"])
    tokens = rng.bytes(16 * len(idx)).hex()
    profile_ids = uuid_strings(rng, len(idx))
    created_s = np.datetime_as_string(plan["profile_created"][idx], unit="us")
    keep = _kept("profiles", live_columns(cur, "profiles"))
    columns = ", ".join(_ALL_COLUMNS["profiles"][k] for k in keep)
    with cur.copy(f"COPY public.profiles ({columns}) FROM STDIN") as copy:
        for k, i in enumerate(idx):
            t = TYPES[int(plan["target"][i])]
            base = next(f for f, b in protos[t].items() if b == "base")
            creative = next(f for f, b in protos[t].items() if b == "creative")
            fit = round(float(rng.uniform(52, 78)), 4)
            conf = round(float(rng.uniform(0.45, 0.9)), 4)
            band = "High" if conf >= 0.75 else "Moderate" if conf >= 0.55 else "Low"
            stamp = created_s[k] + "+00"
            row = (
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
            copy.write_row(tuple(row[j] for j in keep))
    return len(idx)
