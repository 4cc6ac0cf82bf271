"""Vectorized scoring of many sessions, bit-for-bit equal to scoring them one at a time.

Every arithmetic step is the same IEEE operation in the same order as in
`Scorer.score`: sums accumulate in input order (`np.bincount` adds sequentially), fits
add the eight weighted strengths in function order, totals add in type order, and
`exp`/`log2` go through Python's `math` (numpy's SIMD versions may differ in the last
bit). Sessions the fast path does not cover (duplicate answers, non-integer question
ids, unscorable or overflowing sessions, a non-positive temperature) go through the
single-session scorer, so batch results always equal single results.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Iterable, Mapping, Sequence
from itertools import compress, repeat
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from .constants import FUNCTIONS, TYPES
from .engine import _ANSWER_CACHE, fc_norm_from_scores, parse_answer, sigmoid
from .errors import UnscorableSession
from .jsnum import js_string, to_fixed
from .model import AnswerColumns, EngineResult, ScoreRequest, all_int_qids

if TYPE_CHECKING:
    from .engine import Scorer

__all__ = ["score_batch", "to_fixed_array"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
BoolA = npt.NDArray[np.bool_]

# A cache-miss marker: a float object that is never stored in the answer cache.
_MISS = float("nan")
_NF = len(FUNCTIONS)
_NT = len(TYPES)
# Below this many eligible items numpy's fixed costs outweigh the gain.
MIN_VECTOR_ITEMS = 8


def to_fixed_array(x: F64, digits: int) -> F64:
    """Elementwise `to_fixed`, equal to the scalar function for every element."""
    scale = 10.0**digits
    with np.errstate(invalid="ignore", over="ignore"):
        a = np.abs(x)
        s = a * scale
        f = np.floor(s)
        frac = s - f
        ok = (s < float(2**50)) & (np.abs(frac - 0.5) > s * 1e-15 + 1e-300)
        k = f + (frac > 0.5)
        r = k / scale
        out = np.where(x < 0, -r, r)
    bad = np.flatnonzero(~ok)
    if bad.size:
        flat = out.reshape(-1)
        src = x.reshape(-1)
        for j in bad.tolist():
            flat[j] = to_fixed(float(src[j]), digits)
    return out


class _Compiled:
    """The scoring key as lookup arrays (built once per Scorer)."""

    def __init__(self, scorer: Scorer) -> None:
        likert = scorer._likert
        fcmaps = scorer._fcmaps
        qids = sorted(set(likert) | set(fcmaps))
        self.lo = qids[0] if qids else 0
        self.hi = qids[-1] if qids else 0
        self.nslots = len(qids) + 1  # slot 0: no key row / irrelevant
        self.lut = np.zeros(self.hi - self.lo + 3, dtype=np.int64)
        self.func = np.full(self.nslots, -1, dtype=np.int64)
        self.rev = np.zeros(self.nslots, dtype=bool)
        self.fcslot = np.full(self.nslots, -1, dtype=np.int64)
        self.fcmaps: list[dict[str, int]] = []
        for s, q in enumerate(qids, start=1):
            self.lut[q - self.lo + 1] = s
            if q in likert:
                f, rev = likert[q]
                self.func[s] = f
                self.rev[s] = rev
            if q in fcmaps:
                self.fcslot[s] = len(self.fcmaps)
                self.fcmaps.append(fcmaps[q])
        self.weights = np.array(scorer._weights, dtype=np.float64)  # (16, 8)


def _coerce(item: object) -> ScoreRequest | None:
    if isinstance(item, ScoreRequest):
        return item
    if isinstance(item, (list, tuple)):
        return ScoreRequest(item)
    if isinstance(item, Mapping) and isinstance(item.get("responses"), (list, tuple)):
        resp = item["responses"]
        return ScoreRequest(resp, item.get("fc_function_scores"), item.get("session_id"))
    return None


def score_batch(scorer: Scorer, items: Iterable[object]) -> list[EngineResult | UnscorableSession]:
    """Score many sessions; see `Scorer.score_batch`."""
    reqs = [_coerce(it) for it in items]
    out: list[EngineResult | None] = [None] * len(reqs)
    eligible: list[tuple[int, ScoreRequest]] = [
        (i, r)
        for i, r in enumerate(reqs)
        if r is not None and isinstance(r.responses, (list, tuple, AnswerColumns))
    ]
    if scorer.config.softmax_temp > 0 and len(eligible) >= MIN_VECTOR_ITEMS:
        # The batch allocates many small objects and creates no reference cycles; with
        # the caller's responses alive (hundreds of thousands of tracked objects) the
        # cyclic collector's passes would cost more than the scoring itself.
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            vec = _score_vector(scorer, [r for _, r in eligible])
        finally:
            if was_enabled:
                gc.enable()
        for (i, _), done in zip(eligible, vec, strict=True):
            out[i] = done
    final: list[EngineResult | UnscorableSession] = []
    for res, req in zip(out, reqs, strict=True):
        if res is not None:
            final.append(res)
        elif req is None:
            final.append(
                UnscorableSession(
                    "invalid_item", "a batch item must be a ScoreRequest or a list of Response"
                )
            )
        else:
            try:
                final.append(
                    scorer.score(req.responses, req.fc_function_scores, session_id=req.session_id)
                )
            except UnscorableSession as exc:
                final.append(exc)
    return final


def _score_vector(scorer: Scorer, reqs: Sequence[ScoreRequest]) -> list[EngineResult | None]:
    """Results for the sessions the fast path covers; None marks 'score one at a time'."""
    comp = scorer._batch
    if not isinstance(comp, _Compiled):
        comp = _Compiled(scorer)
        scorer._batch = comp
    n = len(reqs)
    resp_lists = [r.responses for r in reqs]
    lens = np.fromiter(map(len, resp_lists), dtype=np.int64, count=n)
    qids: list[object]
    vals: list[object]
    if any(isinstance(rl, AnswerColumns) for rl in resp_lists):
        qids, vals = [], []
        for rl in resp_lists:
            if isinstance(rl, AnswerColumns):
                qids.extend(rl.question_ids)
                vals.extend(rl.answer_values)
            else:
                try:
                    qids.extend([r.question_id for r in rl])
                    vals.extend([r.answer_value for r in rl])
                except AttributeError:
                    return [None] * n
    else:
        try:
            qids = [r.question_id for rl in resp_lists for r in rl]
            vals = [r.answer_value for rl in resp_lists for r in rl]
        except AttributeError:
            return [None] * n
    total = len(qids)
    sess = np.repeat(np.arange(n, dtype=np.int64), lens)
    fallback = np.zeros(n, dtype=bool)

    if not all_int_qids(qids):
        ok = np.fromiter((type(q) is int for q in qids), dtype=bool, count=total)
        fallback[sess[~ok]] = True
        qids = [q if type(q) is int else comp.lo - 1 for q in qids]
    try:
        qarr = np.fromiter(qids, dtype=np.int64, count=total)
    except OverflowError:
        big = 2**62
        qarr = np.array(
            [q if -big < q < big else comp.lo - 1 for q in qids],  # type: ignore[operator]
            dtype=np.int64,
        )
    clipped = np.clip(qarr - comp.lo + 1, 0, comp.hi - comp.lo + 2)
    slot = comp.lut[clipped]
    relmask = slot > 0
    relpos = np.flatnonzero(relmask)
    rs = slot[relpos]
    rsess = sess[relpos]

    # Duplicate answers to a key question: latest-wins dedupe happens in the scalar path.
    if rs.size:
        per_slot = np.bincount(rsess * comp.nslots + rs)
        dup = np.flatnonzero(per_slot > 1)
        if dup.size:
            fallback[dup // comp.nslots] = True

    rvals = list(compress(vals, relmask.tolist()))
    try:
        xs: list[float] = list(map(_ANSWER_CACHE.get, rvals, repeat(_MISS)))
    except TypeError:  # an unhashable answer (list or dict)
        xs = [parse_answer(v) for v in rvals]
    if _MISS in xs:  # identity match: _MISS is never stored in the cache
        xs = [parse_answer(v) if x is _MISS else x for x, v in zip(xs, rvals, strict=True)]
    x = np.array(xs, dtype=np.float64)

    func = comp.func[rs]
    with np.errstate(invalid="ignore", over="ignore"):
        lmask = (func >= 0) & np.isfinite(x)
        xv = np.where(comp.rev[rs], 6.0 - x, x)
    idx = rsess[lmask] * _NF + func[lmask]
    sums = np.bincount(idx, weights=xv[lmask], minlength=n * _NF).reshape(n, _NF)
    counts = np.bincount(idx, minlength=n * _NF).reshape(n, _NF)

    # Forced-choice component.
    fcn = np.zeros((n, _NF), dtype=np.float64)
    fc_ct = [0] * n
    sources = ["none"] * n
    present = np.zeros(n, dtype=bool)
    for i, r in enumerate(reqs):
        fc = r.fc_function_scores
        if isinstance(fc, Mapping):
            present[i] = True
            fcn[i] = fc_norm_from_scores(fc)
            fc_ct[i] = len(fc)
            sources[i] = "scores"
        elif fc is not None:
            sources[i] = "invalid"
    has_fc = present.copy()
    if comp.fcmaps:
        fslot = comp.fcslot[rs]
        fpos = np.flatnonzero((fslot >= 0) & ~present[rsess])
        if fpos.size:
            derived = [0] * (n * _NF)
            maps = comp.fcmaps
            for si, fs, p in zip(
                rsess[fpos].tolist(), fslot[fpos].tolist(), fpos.tolist(), strict=True
            ):
                v = rvals[p]
                f = maps[fs].get(v if type(v) is str else js_string(v))
                if f is not None:
                    derived[si * _NF + f] += 1
            der = np.array(derived, dtype=np.int64).reshape(n, _NF)
            answered = der.sum(axis=1)
            m = answered > 0
            fcn[m] = der[m] / answered[m, None] * 5
            has_fc |= m
            for i in np.flatnonzero(m).tolist():
                fc_ct[i] = int(answered[i])
                sources[i] = "derived"

    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        lik = np.zeros((n, _NF), dtype=np.float64)
        np.divide(sums, counts, out=lik, where=counts > 0)
        strengths = np.where(has_fc[:, None], 0.5 * lik + 0.5 * fcn, lik)
        likert_items = counts.sum(axis=1)
        # Unscorable and overflowing sessions raise from the scalar path.
        fallback |= (likert_items == 0) & ~has_fc
        fallback |= ~np.isfinite(strengths).all(axis=1)
        strengths[fallback] = 0.0

        fits = np.zeros((n, _NT), dtype=np.float64)
        w = comp.weights
        for f in range(_NF):
            fits = fits + w[:, f] * strengths[:, f, None]
        fits4 = to_fixed_array(fits, 4)
        z = (fits4 - fits4.max(axis=1)[:, None]) / scorer.config.softmax_temp
        exps = np.fromiter(map(math.exp, z.ravel().tolist()), dtype=np.float64, count=n * _NT)
        exps = exps.reshape(n, _NT)
        tot = np.zeros(n, dtype=np.float64)
        for j in range(_NT):
            tot = tot + exps[:, j]
        shares = exps / tot[:, None]
        fallback |= ~np.isfinite(shares).all(axis=1)
        order = np.argsort(-fits4, axis=1, kind="stable")
        positive = shares > 0
        logs = np.zeros((n, _NT), dtype=np.float64)
        logs[positive] = np.fromiter(map(math.log2, shares[positive].tolist()), dtype=np.float64)
        terms = np.where(positive, shares * logs, 0.0)
        h16 = np.zeros(n, dtype=np.float64)
        for j in range(_NT):
            h16 = h16 - terms[:, j]
        top2 = order[:, :2]
        f12 = np.take_along_axis(fits4, top2, axis=1)
        s12 = np.take_along_axis(shares, top2, axis=1)
        fit_gap = f12[:, 0] - f12[:, 1]
        share_gap = s12[:, 0] - s12[:, 1]
        crp = scorer.config.conf_raw_params
        xarg = crp.a * fit_gap + crp.b * share_gap - crp.c * h16
    conf = np.fromiter(map(sigmoid, xarg.tolist()), dtype=np.float64, count=n)
    conf4 = to_fixed_array(conf, 4).tolist()
    gap3 = to_fixed_array(share_gap, 3).tolist()
    strengths3 = to_fixed_array(strengths, 3)

    results: list[EngineResult | None] = [None] * n
    s3 = strengths3.tolist()
    f4 = fits4.tolist()
    sh = shares.tolist()
    top3 = order[:, :3].tolist()
    hl = h16.tolist()
    items = likert_items.tolist()
    fb = fallback.tolist()
    build = scorer._build_result
    for i in range(n):
        if fb[i]:
            continue
        results[i] = build(
            s3[i],
            f4[i],
            sh[i],
            top3[i],
            hl[i],
            sources[i],
            fc_ct[i],
            items[i],
            reqs[i].session_id,
            conf4[i],
            gap3[i],
        )
    return results
