"""ADWIN over a whole batch at numpy speed, with exactly the detections of the scalar loop.

Between two detections ADWIN's window only grows (values are dropped only while a drift is
being detected, and the update after a detection starts from scratch), and then everything
it holds is a deterministic function of the values:

* **Buckets.** A level receives one item per arrival and merges its two oldest items when
  it holds ``max_buckets + 1``; after a arrivals it has made ``m(a) = max(0, (a - M + 1) // 2)``
  merges and holds ``a - 2 m(a)`` items, and level i+1 has had ``m(a_i)`` arrivals. So the
  layout after n values needs no simulation, and every bucket is the sum of two adjacent
  buckets one level down, oldest first: a pairwise tree over the values, built level by
  level with the same additions in the same order as the scalar code.
* **Totals and variance.** ``total`` is a running sum and ``variance`` a running sum of
  increments that depend only on the previous total: two ``cumsum`` calls (sequential
  additions, as in the scalar loop).
* **Checks.** Every ``clock`` values the scalar code scans the buckets from the oldest;
  here all checks of a chunk are rows of a matrix (bucket totals in scan order, padded),
  the running ``u0``/``u1`` are ``cumsum`` / ``subtract.accumulate`` along the rows and the
  cut condition is one vectorised expression (``d'`` per row with libm's ``log``).

Every float operation is the scalar code's, so the first row with a cut is the scalar
code's first detection. There the window is rebuilt as Python lists and the scalar
``_detect_change`` does the dropping; the next value restarts. Unusual parameters
(``max_buckets < 2``, ``min_window_length < 1``) use the scalar loop.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from mlops.drift.detectors.base import Detections

if TYPE_CHECKING:
    from mlops.drift.detectors.adwin import ADWIN

_CHUNK = 1 << 16  # values per vectorised step, at most
_FIRST_CHUNK = 1 << 11  # after a detection (or at the start), doubling up to _CHUNK
_CHECK_ROWS = 2048  # checks per scan matrix


def _layout(n: np.ndarray, max_buckets: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(start, count) per level after n values: level i holds global blocks [start, start+count)."""
    starts: list[np.ndarray] = []
    counts: list[np.ndarray] = []
    a = np.asarray(n, dtype=np.int64)
    while True:
        merges = np.maximum(0, (a - max_buckets + 1) // 2)
        starts.append(2 * merges)
        counts.append(a - 2 * merges)
        if not merges.any():
            return starts, counts
        a = merges


def _consistent(det: "ADWIN") -> bool:
    """The state is a window that only grew since the last reset (width == tick)."""
    if det._width != float(det._tick) or det.max_buckets < 2 or det.min_window_length < 1 or det.clock < 1:
        return False
    starts, counts = _layout(np.array([det._tick]), det.max_buckets)
    levels = [r for r in det._totals]
    while len(levels) > 1 and not levels[-1]:
        levels.pop()
    if len(levels) != len(counts) and not (det._tick == 0 and levels == [[]]):
        return False
    return all(len(levels[i]) == int(counts[i][0]) for i in range(min(len(levels), len(counts))))


def run_batch(det: "ADWIN", xs: np.ndarray) -> Detections:
    """Feed ``xs`` to ``det`` (an ADWIN); the positions of its drift detections."""
    out = Detections()
    i = 0
    total = len(xs)
    size = _FIRST_CHUNK
    while i < total:
        if det._drift_detected:
            det._reset()
        if not _consistent(det):  # not the state this path assumes: the scalar loop
            for j in range(i, total):
                if det.update(float(xs[j]))._drift_detected:
                    out.drifts.append(j)
            return out
        end = min(total, i + size)
        hit = _run_chunk(det, xs[i:end])
        if hit is None:
            det.n_seen += end - i
            i = end
            size = min(2 * size, _CHUNK)
        else:
            det.n_seen += hit + 1
            out.drifts.append(i + hit)
            i += hit + 1
            size = _FIRST_CHUNK  # detections may come often: do not redo a long chunk each time
    return out


def _run_chunk(det: "ADWIN", x: np.ndarray) -> int | None:
    """Process a chunk from a grown-only state; the chunk position of a detection, if any.

    On return the detector holds the state after the last processed value (the whole chunk,
    or up to and including the detection, with the scalar code's dropping done).
    """
    M = det.max_buckets
    t0 = int(det._tick)
    L = len(x)
    t1 = t0 + L
    # running total and variance after each value (sequential sums, as the scalar loop)
    totals_run = np.cumsum(np.concatenate([[det._total], x]))
    w = np.arange(t0 + 1, t1 + 1, dtype=np.float64)  # width after each insert
    prev = totals_run[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        dv = x - prev / (w - 1.0)
        inc = (w - 1.0) * dv * dv / w
    inc = np.where(w > 1.0, inc, 0.0)
    var_run = np.cumsum(np.concatenate([[det._variance], inc]))
    # the bucket trees: per level, stored buckets then the ones this chunk creates
    start0, _ = _layout(np.array([t0]), M)
    start1, _ = _layout(np.array([t1]), M)
    levels = max(len(start1), len(det._totals))
    arr0 = [int(det._tick)]  # arrivals at level i by t0
    for i in range(1, levels):
        arr0.append(max(0, (arr0[-1] - M + 1) // 2))
    arr1 = [t1]
    for i in range(1, levels):
        arr1.append(max(0, (arr1[-1] - M + 1) // 2))
    tot_lv: list[np.ndarray] = []
    var_lv: list[np.ndarray] = []
    base: list[int] = []
    for lv in range(levels):
        old_t = np.array(det._totals[lv] if lv < len(det._totals) else [], dtype=np.float64)
        old_v = np.array(det._variances[lv] if lv < len(det._variances) else [], dtype=np.float64)
        b = int(start0[lv][0]) if lv < len(start0) else 0
        if lv == 0:
            new_t = x
            new_v = np.zeros(L)
        else:
            g = np.arange(arr0[lv], arr1[lv], dtype=np.int64)
            pt, pv, pb = tot_lv[lv - 1], var_lv[lv - 1], base[lv - 1]
            left, right = 2 * g - pb, 2 * g + 1 - pb
            t_a, t_b = pt[left], pt[right]
            n1 = float(1 << (lv - 1))
            mu1 = t_a / n1
            mu2 = t_b / n1
            temp = n1 * 0.5 * (mu1 - mu2) * (mu1 - mu2)
            new_t = t_a + t_b
            new_v = pv[left] + pv[right] + temp
        tot_lv.append(np.concatenate([old_t, new_t]))
        var_lv.append(np.concatenate([old_v, new_v]))
        base.append(b)
    hit = _first_cut(det, t0, t1, totals_run, var_run, tot_lv, base)
    t_end = t1 if hit is None else t0 + hit + 1
    _materialise(det, t_end, totals_run[t_end - t0], var_run[t_end - t0], tot_lv, var_lv, base)
    if hit is not None:
        det._tick = t_end - 1
        found = det._detect_change()  # the scalar scan: drops the oldest buckets
        if not found:  # pragma: no cover - would mean the two paths disagree
            raise AssertionError("ADWIN batch path found a cut the scalar scan does not")
        det._drift_detected = True
    else:
        det._drift_detected = False
    return hit


def _materialise(det: "ADWIN", n: int, total: float, variance: float, tot_lv: list[np.ndarray],
                 var_lv: list[np.ndarray], base: list[int]) -> None:
    starts, counts = _layout(np.array([n]), det.max_buckets)
    det._totals = []
    det._variances = []
    for lv in range(len(starts)):
        s, c = int(starts[lv][0]) - base[lv], int(counts[lv][0])
        det._totals.append(tot_lv[lv][s:s + c].tolist())
        det._variances.append(var_lv[lv][s:s + c].tolist())
    det._total = float(total)
    det._variance = float(variance)
    det._width = float(n)
    det._tick = n


def _first_cut(det: "ADWIN", t0: int, t1: int, totals_run: np.ndarray, var_run: np.ndarray,
               tot_lv: list[np.ndarray], base: list[int]) -> int | None:
    """Chunk position of the first check whose scan finds a cut, or None."""
    clock, mwl = det.clock, float(det.min_window_length)
    first = ((t0 // clock) + 1) * clock
    checks = np.arange(first, t1 + 1, clock, dtype=np.int64)
    checks = checks[checks > det.grace_period]
    for lo in range(0, len(checks), _CHECK_ROWS):
        rows = checks[lo:lo + _CHECK_ROWS]
        starts, counts = _layout(rows, det.max_buckets)
        n_lv = len(starts)
        R = len(rows)
        width = rows.astype(np.float64)
        cols = np.zeros(R, dtype=np.int64)
        offsets = []
        for lv in range(n_lv - 1, -1, -1):  # oldest (top level) first
            offsets.append((lv, cols.copy()))
            cols += counts[lv]
        length = cols  # buckets per row
        C = int(length.max())
        T = np.zeros((R, C))
        S = np.zeros((R, C))
        r_idx = np.arange(R)
        for lv, off in offsets:
            cnt = counts[lv]
            size = float(1 << lv)
            for k in range(int(cnt.max()) if len(cnt) else 0):
                ok = k < cnt
                rr = r_idx[ok]
                T[rr, off[ok] + k] = tot_lv[lv][starts[lv][ok] + k - base[lv]]
                S[rr, off[ok] + k] = size
        n0 = np.cumsum(S, axis=1)
        u0 = np.cumsum(T, axis=1)
        total_at = totals_run[rows - t0]
        u1 = np.subtract.accumulate(np.concatenate([total_at[:, None], T], axis=1), axis=1)[:, 1:]
        n1 = width[:, None] - n0
        var_w = var_run[rows - t0] / width
        dprime = np.array([math.log(2.0 * math.log(wd) / det.delta) for wd in width.tolist()])
        with np.errstate(divide="ignore", invalid="ignore"):
            delta_mean = u0 / n0 - u1 / n1
            m_recip = 1.0 / (n0 - mwl + 1.0) + 1.0 / (n1 - mwl + 1.0)
            eps = (np.sqrt(2.0 * m_recip * var_w[:, None] * dprime[:, None])
                   + 2.0 / 3.0 * dprime[:, None] * m_recip)
            cut = np.abs(delta_mean) > eps
        valid = np.arange(C)[None, :] < (length - 1)[:, None]  # not the newest bucket, no padding
        cut &= valid & (n1 >= mwl) & (n0 >= mwl)
        hit_rows = np.flatnonzero(cut.any(axis=1))
        if len(hit_rows):
            return int(rows[hit_rows[0]]) - t0 - 1
    return None
