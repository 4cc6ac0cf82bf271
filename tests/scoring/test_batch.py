"""The batch API: same results as one at a time, per-item errors, no abort."""

from __future__ import annotations

import random

from scoring import (
    FUNCTIONS,
    EngineResult,
    Response,
    Scorer,
    ScoreRequest,
    UnscorableSession,
)
from scoring.batch import MIN_VECTOR_ITEMS


def realistic_session(rng: random.Random, key_scales: dict[int, str]) -> list[Response]:
    out = []
    for q in range(1, 249):
        scale = key_scales.get(q, "")
        if scale.startswith("LIKERT") or scale.startswith("STATE"):
            v: object = rng.choice([1, 2, 3, 4, 5, "1", "2", "3", "4", "5", " 4 ", "3.5"])
        elif scale.startswith("FORCED"):
            v = rng.choice("ABCDE")
        else:
            v = rng.choice(["x@example.com", "DE", "", None])
        out.append(Response(q, v))
    return out


def test_batch_equals_single_on_realistic_sessions(real_scorer: Scorer, real_key: dict) -> None:
    rng = random.Random(7)
    scales = {q: e.scale_type for q, e in real_key.items()}
    reqs = []
    for i in range(60):
        resp = realistic_session(rng, scales)
        fc = (
            {f: rng.randint(0, 100) for f in FUNCTIONS}
            if i % 3 == 0
            else ({} if i % 3 == 1 else None)
        )
        reqs.append(ScoreRequest(resp, fc, session_id=f"s{i}"))
    batch = real_scorer.score_batch(reqs)
    single = [
        real_scorer.score(r.responses, r.fc_function_scores, session_id=r.session_id) for r in reqs
    ]
    assert batch == single
    sources = {r.fc_source for r in single}
    assert sources == {"scores", "derived"}  # FC scores, and fc_map derivation when absent
    assert all(isinstance(r, EngineResult) for r in batch)
    assert batch[0].events == single[0].events  # type: ignore[union-attr]


def test_unscorable_and_invalid_items_do_not_abort_the_batch(real_scorer: Scorer) -> None:
    good = [Response(17, 5), Response(24, 3)]
    items: list[object] = [ScoreRequest(good, session_id=i) for i in range(MIN_VECTOR_ITEMS)]
    items.insert(2, ScoreRequest([], session_id="empty"))
    items.insert(4, ScoreRequest([Response(17, "Agree")], session_id="agree"))
    items.insert(5, 42)
    items.append(good)  # a plain list of responses is an item too
    items.append({"responses": good, "fc_function_scores": {"Ti": 100}, "session_id": "m"})
    results = real_scorer.score_batch(items)  # type: ignore[arg-type]
    assert len(results) == len(items)
    empty, agree, invalid = results[2], results[4], results[5]
    assert isinstance(empty, UnscorableSession) and empty.reason == "no_responses"
    assert empty.session_id == "empty"
    assert isinstance(agree, UnscorableSession) and agree.reason == "no_scorable_responses"
    assert isinstance(invalid, UnscorableSession) and invalid.reason == "invalid_item"
    ok = [r for r in results if isinstance(r, EngineResult)]
    assert len(ok) == len(items) - 3
    assert ok[0].type_code == real_scorer.score(good).type_code
    assert ok[-1].fc_source == "scores"


def test_duplicates_in_a_batch_follow_latest_wins(real_scorer: Scorer) -> None:
    dup = [Response(17, 1), Response(18, 2), Response(17, 5)]
    reqs = [ScoreRequest(dup)] * MIN_VECTOR_ITEMS
    results = real_scorer.score_batch(reqs)
    assert all(r == real_scorer.score(dup) for r in results)
    assert results[0].strengths["Ti"] == 3.5  # type: ignore[union-attr]  # (5 + 2) / 2


def test_small_and_negative_temperature_batches(real_key: dict) -> None:
    scorer = Scorer(real_key, {"softmax_temp": -1})
    reqs = [ScoreRequest([Response(17, i % 5 + 1), Response(60, 3)]) for i in range(10)]
    assert scorer.score_batch(reqs) == [scorer.score(r.responses) for r in reqs]
    assert scorer.score_batch(reqs[:2]) == [scorer.score(r.responses) for r in reqs[:2]]
    assert scorer.score_batch([]) == []


def test_without_numpy_the_batch_scores_one_at_a_time(
    real_scorer: Scorer, real_key: dict, monkeypatch
) -> None:
    """numpy sits in the `demo` extra for now: a production install scores all the same."""
    import sys

    rng = random.Random(11)
    scales = {q: e.scale_type for q, e in real_key.items()}
    items: list[object] = [
        ScoreRequest(realistic_session(rng, scales), session_id=f"s{i}")
        for i in range(MIN_VECTOR_ITEMS + 2)
    ]
    items += [[Response(17, 5)], {"responses": [Response(24, 3)], "session_id": "m"}, 42]
    vectorized = real_scorer.score_batch(items)  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "numpy", None)  # `import numpy` now fails
    monkeypatch.delitem(sys.modules, "scoring.batch")
    without = real_scorer.score_batch(items)  # type: ignore[arg-type]
    assert "scoring.batch" not in sys.modules
    assert [repr(r) for r in without] == [repr(r) for r in vectorized]
    assert isinstance(without[-1], UnscorableSession) and without[-1].reason == "invalid_item"
