"""The v1.2.1 scoring engine (scoring.md sections 1-6), one session at a time.

One module of about 500 lines on purpose: it follows the spec section by section, so the
engine and its contract can be read side by side.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from .config import EngineConfig
from .constants import ENGINE_VERSION, FUNCTION_INDEX, FUNCTIONS, TYPES
from .errors import UnscorableSession
from .events import Event, make_event
from .jsnum import js_number, js_string, to_fixed
from .model import (
    PLACEHOLDERS,
    AnswerColumns,
    EngineResult,
    KeyEntry,
    RankedType,
    Response,
    ScoreRequest,
    _canonical_qid,
    all_int_qids,
    key_from_mapping,
)
from .prototypes import Prototypes

__all__ = ["Scorer", "parse_answer", "score_session"]

_NAN = math.nan
_INF = math.inf
_NF = len(FUNCTIONS)

_PLACEHOLDERS = dict(PLACEHOLDERS)

# Parsed answers by value. Keys are JSON scalars: ints hit for equal floats and bools
# too (hash(True) == hash(1)), which is right because Number(true) == 1 and
# Number(5.0) == 5. `None` maps to NaN: a null answer is skipped just like NaN.
_ANSWER_CACHE: dict[object, float] = {None: _NAN}
for _i in range(-10, 101):
    _ANSWER_CACHE[_i] = float(_i)
    _ANSWER_CACHE[str(_i)] = float(_i)
_ANSWER_CACHE_LIMIT = 50_000


def parse_answer(value: object) -> float:
    """Step 3 of scoring.md: the answer as a number; NaN means skip (null included)."""
    try:
        cached = _ANSWER_CACHE.get(value)
    except TypeError:  # unhashable: list or dict
        cached = None
    if cached is not None:
        return cached
    if value is None:
        return _NAN
    x = js_number(value)
    if isinstance(value, str) and len(_ANSWER_CACHE) < _ANSWER_CACHE_LIMIT:
        _ANSWER_CACHE[value] = x
    return x


def _fc_score_value(value: object) -> float:
    """A number from an FC score: missing or non-numeric -> 0 (numeric strings count)."""
    if type(value) is float:
        return value if value - value == 0.0 else 0.0
    if isinstance(value, bool) or value is None:
        return 0.0
    if isinstance(value, (int, float, str)):
        x = js_number(value)
        return x if x - x == 0.0 else 0.0
    return 0.0


def fc_norm_from_scores(scores: Mapping[object, object]) -> list[float]:
    """Section 3: `score[f] / 100 * 5` per function, in function order."""
    return [_fc_score_value(scores.get(f)) / 100 * 5 for f in FUNCTIONS]


def sigmoid(x: float) -> float:
    """sigmoid(x) = 1 / (1 + e^-x), 0 where e^-x overflows (as JavaScript gives 1/Infinity)."""
    try:
        return 1 / (1 + math.exp(-x))
    except OverflowError:  # exp(-x) = +Infinity in JavaScript -> 1 / Infinity
        return 0.0


def _exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return _INF


def entropy_bits(shares: Iterable[float]) -> float:
    """Entropy -sum(p * log2 p) in bits, summed in the given order; 0 * log2 0 counts as 0."""
    h = 0.0
    log2 = math.log2
    for p in shares:
        if p > 0:
            h -= p * log2(p)
    return h


def _v8_sort(items: list[int], cmp: Callable[[int, int], float]) -> list[int]:
    """Sort as V8's Array.prototype.sort does for fewer than 64 elements.

    V8 runs TimSort; below 64 elements that is one counted run extended by binary
    insertion. Reproducing it keeps the result identical to the original engine even
    for a comparator that is not a strict weak order (ties within 1e-9 are not
    transitive when the softmax temperature is negative).
    """
    a = list(items)
    n = len(a)
    if n < 2:
        return a
    run = 2
    desc = cmp(a[1], a[0]) < 0
    prev = a[1]
    for idx in range(2, n):
        order = cmp(a[idx], prev)
        if (desc and order >= 0) or (not desc and order < 0):
            break
        prev = a[idx]
        run += 1
    if desc:
        a[:run] = a[:run][::-1]
    for start in range(run, n):
        pivot = a[start]
        left, right = 0, start
        while left < right:
            mid = left + ((right - left) >> 1)
            if cmp(pivot, a[mid]) < 0:
                right = mid
            else:
                left = mid + 1
        a[left + 1 : start + 1] = a[left:start]
        a[left] = pivot
    return a


def rank_types(fits: Sequence[float], shares: Sequence[float], temp: float) -> list[int]:
    """Type indices by share desc; shares within 1e-9 -> fit desc; then type order."""
    if temp > 0:
        # share is a non-decreasing function of fit, so the spec's comparator is exactly
        # "fit desc, then type order" here; a stable sort gives that directly.
        return sorted(range(len(fits)), key=fits.__getitem__, reverse=True)

    def cmp(i: int, j: int) -> float:
        d = shares[j] - shares[i]
        if not abs(d) < 1e-9:
            return d
        df = fits[j] - fits[i]
        if df != 0:
            return df
        return i - j

    return _v8_sort(list(range(len(fits))), cmp)


class Scorer:
    """A scoring key and config compiled once; score sessions one by one or as a list."""

    __slots__ = (
        "_base",
        "_config_events",
        "_creative",
        "_fcmaps",
        "_likert",
        "_weights",
        "config",
        "prototypes",
    )

    def __init__(
        self,
        key: Mapping[int, KeyEntry] | Iterable[KeyEntry] | Mapping[str, object],
        config: EngineConfig | Mapping[str, object] | None = None,
        prototypes: Prototypes | None = None,
    ) -> None:
        if not isinstance(config, EngineConfig):
            config = EngineConfig.from_mapping(config)
        self.config = config
        self.prototypes = prototypes or config.type_prototypes or Prototypes.builtin()
        entries = key_from_mapping(key)
        likert: dict[int, tuple[int, bool]] = {}
        fcmaps: dict[int, dict[str, int]] = {}
        for qid, entry in entries.items():
            tag = entry.tag
            if tag and entry.scale_type.startswith("LIKERT"):
                f = FUNCTION_INDEX.get(tag[:2])
                if f is not None:
                    likert[qid] = (f, bool(entry.reverse_scored))
            if entry.fc_map is not None:
                m = {
                    str(k): FUNCTION_INDEX[v]
                    for k, v in entry.fc_map.items()
                    if isinstance(v, str) and v in FUNCTION_INDEX
                }
                if m:
                    fcmaps[qid] = m
        self._likert = likert
        self._fcmaps = fcmaps
        self._weights = self.prototypes.weights
        self._base = self.prototypes.base_funcs
        self._creative = self.prototypes.creative_funcs
        events: list[tuple[str, dict[str, object]]] = []
        if config.results_version != ENGINE_VERSION:
            events.append(
                (
                    "engine_version_override",
                    {"config_version": config.results_version, "engine_version": ENGINE_VERSION},
                )
            )
        if config.type_prototypes_issue is not None and prototypes is None:
            events.append(("type_prototypes_fallback", {"reason": config.type_prototypes_issue}))
        self._config_events = tuple(events)

    # -- inputs ---------------------------------------------------------------------

    @staticmethod
    def _answers(responses: Iterable[object]) -> dict[int, object]:
        """question_id -> latest answer, in first-seen order (duplicates: latest wins)."""
        if isinstance(responses, AnswerColumns):
            qids_c: list[Any] = list(responses.question_ids)
            if not all_int_qids(qids_c):
                pairs_c = [
                    (_canonical_qid(q), v)
                    for q, v in zip(qids_c, responses.answer_values, strict=True)
                ]
                return {q: v for q, v in pairs_c if q is not None}
            return dict(zip(qids_c, responses.answer_values, strict=True))
        items: Sequence[Any] = (
            responses if isinstance(responses, (list, tuple)) else list(responses)
        )
        try:  # comprehensions beat map(attrgetter) on 3.11's specialized attribute loads
            qids: list[Any] = [r.question_id for r in items]
            vals: list[object] = [r.answer_value for r in items]
        except AttributeError:
            qids, vals = [], []
            for r in items:
                if isinstance(r, Response):
                    qids.append(r.question_id)
                    vals.append(r.answer_value)
                elif isinstance(r, Mapping):
                    qids.append(r.get("question_id"))
                    vals.append(r.get("answer_value"))
        if not all_int_qids(qids):
            pairs = [(_canonical_qid(q), v) for q, v in zip(qids, vals, strict=True)]
            return {q: v for q, v in pairs if q is not None}
        return dict(zip(qids, vals, strict=True))

    # -- scoring --------------------------------------------------------------------

    def score(
        self,
        responses: Iterable[Response],
        fc_function_scores: object = None,
        *,
        session_id: object = None,
    ) -> EngineResult:
        """Score one session.

        A session with no scorable answer (no Likert function item with a finite answer and
        no FC component) still gets the spec's profile, with `no_scorable_answers` true.
        Raise UnscorableSession only when a strength, fit or share is not finite.
        """
        answers = self._answers(responses)

        sums = [0.0] * _NF
        counts = [0] * _NF
        blank = 0  # Likert items whose answer is "" or whitespace: Number() makes it 0
        lget = self._likert.get
        cget = _ANSWER_CACHE.get
        for q, v in answers.items():
            e = lget(q)
            if e is None:
                continue
            try:
                x = cget(v)
            except TypeError:
                x = None
            if x is None:
                x = parse_answer(v)
            if x - x != 0.0:  # NaN, +-Infinity, null
                continue
            if x == 0.0 and type(v) is str and not v.strip():
                blank += 1  # scored as 0 (the spec), but no answer for the validity
            f, rev = e
            if rev:
                x = 6.0 - x
            sums[f] += x
            counts[f] += 1

        fc_source, fc_norm, fc_ct = self._fc_component(answers, fc_function_scores)
        return self._finish(sums, counts, fc_source, fc_norm, fc_ct, session_id, blank)

    def _fc_component(
        self, answers: Mapping[int, object], fc_scores: object
    ) -> tuple[str, list[float] | None, int]:
        """Section 3: (source, fc_norm or None, fc_answered_ct)."""
        if isinstance(fc_scores, Mapping):
            return "scores", fc_norm_from_scores(fc_scores), len(fc_scores)
        derived = [0] * _NF
        answered = 0
        for q, fmap in self._fcmaps.items():
            if q in answers:
                v = answers[q]
                f = fmap.get(v if type(v) is str else js_string(v))
                if f is not None:
                    derived[f] += 1
                    answered += 1
        if answered:
            return "derived", [d / answered * 5 for d in derived], answered
        return ("invalid" if fc_scores is not None else "none"), None, 0

    def _finish(
        self,
        sums: list[float],
        counts: list[int],
        fc_source: str,
        fc_norm: list[float] | None,
        fc_ct: int,
        session_id: object,
        likert_blank: int = 0,
    ) -> EngineResult:
        lik = [s / c if c else 0.0 for s, c in zip(sums, counts, strict=True)]
        likert_items = sum(counts)
        # Without an FC component the strengths are the Likert means: all 0 when nothing
        # was scorable, which is not an error (scoring.md section 6).
        strengths = (
            lik
            if fc_norm is None
            else [0.5 * li + 0.5 * fn for li, fn in zip(lik, fc_norm, strict=True)]
        )
        if any(s - s != 0.0 for s in strengths):
            raise _overflow(session_id)

        s0, s1, s2, s3, s4, s5, s6, s7 = strengths
        # fit[T] = sum over functions in order, from 0: ((0 + w0*s0) + w1*s1) + ...
        fits = [
            to_fixed(
                0.0 + w0 * s0 + w1 * s1 + w2 * s2 + w3 * s3 + w4 * s4 + w5 * s5 + w6 * s6 + w7 * s7,
                4,
            )
            for w0, w1, w2, w3, w4, w5, w6, w7 in self._weights
        ]
        temp = self.config.softmax_temp
        top = max(fits)
        exps = [_exp((fi - top) / temp) for fi in fits]
        total = 0.0
        for e in exps:  # sequential, in type order (not sum(): 3.12+ compensates)
            total += e
        shares = [e / total for e in exps]
        if any(p - p != 0.0 for p in shares):
            raise _overflow(session_id)
        order = rank_types(fits, shares, temp)
        h16 = entropy_bits(shares)
        rounded = [to_fixed(s, 3) for s in strengths]
        return self._build_result(
            rounded,
            fits,
            shares,
            order,
            h16,
            fc_source,
            fc_ct,
            likert_items,
            session_id,
            likert_blank,
        )

    def _build_result(
        self,
        strengths: Sequence[float],
        fits: Sequence[float],
        shares: Sequence[float],
        order: Sequence[int],
        h16: float,
        fc_source: str,
        fc_ct: int,
        likert_items: int,
        session_id: object,
        likert_blank: int = 0,
    ) -> EngineResult:
        """Assemble an EngineResult from the computed numbers."""
        # Long on purpose: the result's fields in the spec's order (scoring.md section 6).
        cfg = self.config
        i1, i2, i3 = order[0], order[1], order[2]
        fit1, fit2 = fits[i1], fits[i2]
        share1, share2 = shares[i1], shares[i2]
        fit_gap = fit1 - fit2
        share_gap = share1 - share2
        p = cfg.conf_raw_params
        conf_raw = to_fixed(sigmoid(p.a * fit_gap + p.b * share_gap - p.c * h16), 4)
        top_gap = to_fixed(share_gap, 3)
        if conf_raw >= 0.75:
            confidence = "High"
        elif conf_raw >= 0.55:
            confidence = "Moderate"
        else:
            confidence = "Low"
        th = cfg.fit_band_thresholds
        if fit1 >= th.high_fit:
            fit_band = "high_fit"
        elif fit1 >= th.moderate_fit:
            fit_band = "moderate_fit"
        else:
            fit_band = "low_fit"
        top3 = (
            RankedType(TYPES[i1], fit1, share1),
            RankedType(TYPES[i2], fit2, share2),
            RankedType(TYPES[i3], fits[i3], shares[i3]),
        )
        type_code = TYPES[i1]
        values = dict(_PLACEHOLDERS)
        values.update(
            type_code=type_code,
            base_func=self._base[i1],
            creative_func=self._creative[i1],
            top_types=top3,
            top_3_fits=top3,
            score_fit_raw=fit1,
            score_fit_calibrated=fit1,
            fit_band=fit_band,
            top_gap=top_gap,
            close_call=share_gap < 0.05,
            strengths=MappingProxyType(dict(zip(FUNCTIONS, strengths, strict=False))),
            confidence=confidence,
            conf_raw=conf_raw,
            conf_calibrated=conf_raw,
            fc_answered_ct=fc_ct,
            fc_coverage_bucket="full" if fc_ct >= cfg.fc_expected_min else "low",
            type_fits=tuple(fits),
            type_shares=tuple(shares),
            share_gap=share_gap,
            fit_gap=fit_gap,
            fc_source="none" if fc_source == "invalid" else fc_source,
            likert_items=likert_items,
            likert_blank=likert_blank,
            no_scorable_answers=likert_items == 0 and fc_source in ("none", "invalid"),
            events=self._events(session_id, fc_source, fc_ct, type_code, fit1, likert_items),
        )
        return EngineResult._from_fields(values)

    def _events(
        self,
        session_id: object,
        fc_source: str,
        fc_ct: int,
        type_code: str,
        fit: float,
        likert_items: int,
    ) -> tuple[Event, ...]:
        out = [make_event(name, session_id, **fields) for name, fields in self._config_events]
        if fc_source == "scores":
            out.append(make_event("fc_scores_loaded", session_id, keys=fc_ct))
        elif fc_source == "derived":
            out.append(make_event("fc_derived_from_answers", session_id, answered=fc_ct))
        else:
            reason = "invalid_fc_scores" if fc_source == "invalid" else "no_fc_infrastructure"
            out.append(make_event("fc_fallback_legacy", session_id, reason=reason))
        out.append(
            make_event(
                "scoring_complete",
                session_id,
                type_code=type_code,
                fit=fit,
                likert_items=likert_items,
                fc_source="none" if fc_source == "invalid" else fc_source,
                results_version=ENGINE_VERSION,
            )
        )
        return tuple(out)

    def score_batch(
        self, items: Iterable[ScoreRequest | Sequence[Response] | Mapping[str, object]]
    ) -> list[EngineResult | UnscorableSession]:
        """Score many sessions one at a time; each item yields a result or its error, in order.

        An item is a ScoreRequest, a list (or tuple) of Response, or a mapping with
        `responses` (a list or tuple), `fc_function_scores` and `session_id`. Anything else
        yields UnscorableSession("invalid_item"); no item stops the batch.
        """
        out: list[EngineResult | UnscorableSession] = []
        for item in items:
            req = _request(item)
            if req is None:
                out.append(
                    UnscorableSession(
                        "invalid_item", "a batch item must be a ScoreRequest or a list of Response"
                    )
                )
                continue
            try:
                out.append(
                    self.score(req.responses, req.fc_function_scores, session_id=req.session_id)
                )
            except UnscorableSession as exc:
                out.append(exc)
        return out


def _request(item: object) -> ScoreRequest | None:
    """A batch item as a ScoreRequest, or None when it is not one."""
    if isinstance(item, ScoreRequest):
        return item
    if isinstance(item, (list, tuple)):
        return ScoreRequest(item)
    if isinstance(item, Mapping) and isinstance(item.get("responses"), (list, tuple)):
        return ScoreRequest(
            item["responses"], item.get("fc_function_scores"), item.get("session_id")
        )
    return None


def _overflow(session_id: object) -> UnscorableSession:
    return UnscorableSession(
        "non_finite_result",
        "answers are so large that a strength, fit or share is not a finite number",
        session_id,
    )


def score_session(
    responses: Iterable[Response],
    key: Mapping[int, KeyEntry] | Iterable[KeyEntry] | Mapping[str, object],
    config: EngineConfig | Mapping[str, object] | None = None,
    fc_function_scores: object = None,
    *,
    prototypes: Prototypes | None = None,
    session_id: object = None,
) -> EngineResult:
    """Score one session without keeping a compiled Scorer (convenience)."""
    scorer = Scorer(key, config, prototypes)
    return scorer.score(responses, fc_function_scores, session_id=session_id)
