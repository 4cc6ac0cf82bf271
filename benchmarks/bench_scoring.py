"""Throughput of the PRISM scoring engine on full 248-answer sessions (a script, not a test).

Builds sessions from the real scoring key (question ids 1-246 have key rows, 247-248
do not) with deterministic, plausible answers per scale type, then measures sessions
per second on one core, one at a time (`Scorer.score`) and through the batch API
(`Scorer.score_batch`, a loop over the same engine: this shows its overhead). Half of
the sessions carry FC function scores; the other half take the legacy path (FC derived
from the forced-choice answers' fc_map).

    python benchmarks/bench_scoring.py [--sessions N] [--chunk N] [--repeat N] [--seed N]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scoring import (  # noqa: E402
    DATA_DIR,
    FUNCTIONS,
    EngineConfig,
    EngineResult,
    Response,
    Scorer,
    ScoreRequest,
    key_from_csv,
)

DATA = DATA_DIR  # scoring/data
QUESTION_IDS = range(1, 249)  # production sessions had 248 answers


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or the platform's guess)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def make_answer(rng: random.Random, scale: str | None) -> object:
    """A plausible raw answer for a scale type (as the database stores it, mostly text)."""
    if scale is None:  # ids 247-248: no key row
        return rng.choice(["yes", "no", "prefer not to say"])
    if scale.startswith("LIKERT_1_5"):
        v = rng.choices([1, 2, 3, 4, 5], weights=[1, 2, 3, 3, 2])[0]
        return v if rng.random() < 0.5 else str(v)  # answer_numeric vs answer_value
    if scale.startswith(("LIKERT_1_7", "STATE_1_7")):
        return str(rng.randint(1, 7))
    if scale == "FORCED_CHOICE_2":
        return rng.choice("AB")
    if scale == "FORCED_CHOICE_4":
        return rng.choice("ABCD")
    if scale == "FORCED_CHOICE_5":
        return rng.choice("ABCDE")
    if scale == "META":
        return rng.choice(["user@example.com", "DE", "34", "female", "Engineer", ""])
    return str(rng.randint(1, 5))


def build_sessions(n: int, seed: int, key: dict[int, object]) -> list[ScoreRequest]:
    """n deterministic sessions of 248 answers; every other one has FC function scores."""
    rng = random.Random(seed)
    scales = {q: getattr(key.get(q), "scale_type", None) for q in QUESTION_IDS}
    out = []
    for i in range(n):
        responses = [Response(q, make_answer(rng, scales[q])) for q in QUESTION_IDS]
        fc = {f: rng.randint(0, 100) for f in FUNCTIONS} if i % 2 == 0 else None
        out.append(ScoreRequest(responses, fc, session_id=f"bench-{i}"))
    return out


def time_single(scorer: Scorer, reqs: list[ScoreRequest]) -> tuple[float, list[EngineResult]]:
    gc.collect()
    t0 = time.perf_counter()
    results = [
        scorer.score(r.responses, r.fc_function_scores, session_id=r.session_id) for r in reqs
    ]
    return time.perf_counter() - t0, results


def time_batch(scorer: Scorer, reqs: list[ScoreRequest], chunk: int) -> tuple[float, list[object]]:
    gc.collect()
    t0 = time.perf_counter()
    results: list[object] = []
    for i in range(0, len(reqs), chunk):
        results.extend(scorer.score_batch(reqs[i : i + chunk]))
    return time.perf_counter() - t0, results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=4000)
    ap.add_argument("--chunk", type=int, default=1000, help="sessions per score_batch call")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=20250917)
    args = ap.parse_args(argv)

    key = key_from_csv((DATA / "scoring_key.csv").read_text())
    config = EngineConfig.from_mapping(json.loads((DATA / "scoring_config.json").read_text()))
    scorer = Scorer(key, config)
    reqs = build_sessions(args.sessions, args.seed, key)  # type: ignore[arg-type]
    n_answers = sum(len(r.responses) for r in reqs)

    print("PRISM scoring benchmark")
    print(f"  cpu:      {cpu_model()}")
    print(f"  cores:    {os.cpu_count()} (measuring on one core, single process)")
    print(f"  python:   {platform.python_implementation()} {platform.python_version()}")
    print(
        f"  data:     {args.sessions} sessions x {len(QUESTION_IDS)} answers = {n_answers} "
        f"answers; key rows {len(key)}; half with FC scores, half legacy/fc_map"
    )
    print(
        f"  batch:    score_batch on chunks of {args.chunk} sessions; "
        f"best and median of {args.repeat} runs"
    )

    # Warm up caches (compiled key, parsed answer strings) before timing.
    scorer.score_batch(reqs[:50])
    for r in reqs[:50]:
        scorer.score(r.responses, r.fc_function_scores)

    singles, batches = [], []
    single_results: list[EngineResult] = []
    batch_results: list[object] = []
    for _ in range(args.repeat):
        dt, single_results = time_single(scorer, reqs)
        singles.append(args.sessions / dt)
        dt, batch_results = time_batch(scorer, reqs, args.chunk)
        batches.append(args.sessions / dt)

    same = single_results == batch_results
    print(
        f"  one at a time: best {max(singles):,.0f} sessions/s, "
        f"median {statistics.median(singles):,.0f} sessions/s"
    )
    print(
        f"  batch:         best {max(batches):,.0f} sessions/s, "
        f"median {statistics.median(batches):,.0f} sessions/s"
    )
    print(f"  batch results equal one-at-a-time results: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
