"""One sort of both samples gives the KS statistic, Wasserstein-1 and bin counts.

KS and Wasserstein both need the two samples *merged* in value order and, at each point,
how many values of each sample lie at or below it. Scipy merges with two binary searches
per value (``searchsorted`` of the concatenation into each sorted sample), which costs more
than the sorts. Here every value carries its sample label (0 = reference, 1 = current) in
its lowest bit; one vectorised sort merges the samples, and a running sum over the labels
walks both ECDFs at once.

**Exact, always.** The fast path (:func:`two_sample`) overwrites the last bit of every
value with its sample label and sorts the result as floats. If no two merged values then
differ only in that bit, nothing was lost (no ties, no two values one ulp apart) and the
order is the true order. Otherwise - ties, i.e. discrete features, or infinities - the
exact path (:func:`_two_sample_split`) redoes the merge keeping every bit: each sample is
split by sign, and within each sign the magnitude's bit pattern (63 bits) leaves room for
the label in an unsigned integer key. (A reference value of exactly -5e-324 also takes it:
with its last bit cleared it would read as -0.0, which sorts as equal to 0.0.)

**Equal to scipy.** The ECDF differences are the same integer counts as in ``ks_2samp``;
D is one division ``max|K| / (n m)`` with ``K = m #ref<=z - n #cur<=z`` instead of scipy's
three (equal to within one rounding; the exact p-value rounds D to the lattice anyway).
Wasserstein is scipy's ``sum(|F_u - F_v| * diff(values))`` over the merged values; only
the summation order differs, and on the fast path the values carry the label bit, one ulp
off at most, which moves the distance by at most 2 ulp(max |value|): the fast path is
only kept when that is below 1e-10 of the distance (typical data: ~1e-13), otherwise the
exact path runs. NaN must be removed by the caller;
-0.0 counts as 0.0 (they compare equal).

>>> import numpy as np
>>> t = two_sample(np.array([0.0, 1.0, 3.0]), np.array([-1.0, 1.5, 2.0, 5.0]))
>>> round(t.ks_statistic, 6), round(t.wasserstein, 6)
(0.416667, 1.208333)
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

_ONE = np.uint64(1)
_NOT_ONE = np.uint64((1 << 64) - 2)
_INF_BITS = np.uint64(0x7FF0000000000000)  # largest magnitude key (+inf); NaN is excluded
_EMPTY = np.empty(0, dtype=np.uint64)
_TINY = 5e-324  # the smallest subnormal
_NEG_ZERO_TRUNC = np.uint64(1 << 62)
_LOW16 = np.uint64(0xFFFF)  # bits of -0.0 and -5e-324, shifted right by one


@dataclass(frozen=True)
class TwoSample:
    """What one merge of a reference and a current sample yields.

    ``ref_below`` / ``cur_below`` count, for each edge e of ``edges``, the values < e (so bin
    i = ``[e_{i-1}, e_i)`` holds ``below[i] - below[i-1]``; open-ended outer bins).
    """

    n_ref: int
    n_cur: int
    ks_statistic: float
    wasserstein: float
    ref_below: np.ndarray
    cur_below: np.ndarray
    edges: np.ndarray


def two_sample(reference: np.ndarray, current: np.ndarray, edges: np.ndarray | None = None,
               reference_sorted: bool = False, n_bins: int | None = None) -> TwoSample:
    """Merge two NaN-free 1-D samples; KS statistic, Wasserstein-1 and counts below ``edges``.

    ``reference_sorted`` (a baseline's stored sample is) only helps the exact path. With
    ``n_bins`` instead of ``edges``, the edges are the reference quantiles k/n_bins
    (deduplicated), equal to ``np.unique(np.quantile(reference, k / n_bins))``: the order
    statistics they interpolate are read off the merge (:func:`_ref_order_stats_fast`), which
    saves sorting the reference on its own.
    """
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    n, m = len(ref), len(cur)
    if n == 0 or m == 0:
        raise ValueError("both samples must be non-empty")
    if float(n) * float(m) * float(n + m) >= 2.0**63:
        raise ValueError("samples too large for exact integer ECDF differences")
    edges_arr = np.asarray(edges if edges is not None else [], dtype=np.float64)
    total = n + m
    ws = _workspace(total)
    # Fast path: the values themselves with their last bit replaced by the label, sorted as
    # floats. Such a value is within one ulp of the original; if no two merged values
    # differ only in that bit, their order is the original order.
    merged = ws.values[:total]
    bits = merged.view(np.uint64)
    np.bitwise_and(ref.view(np.uint64), _NOT_ONE, out=bits[:n])
    np.bitwise_or(cur.view(np.uint64), _ONE, out=bits[n:])
    merged.sort()
    if not _fast_path_valid(merged, bits, ref, cur):
        return _two_sample_split(ref, cur, edges_arr, reference_sorted, n_bins)
    xor = ws.tmp[:total - 1]
    np.bitwise_xor(bits[1:], bits[:-1], out=xor)
    if xor.min() < 2:  # neighbours equal but for the last bit: ties, or values one ulp apart
        return _two_sample_split(ref, cur, edges_arr, reference_sorted, n_bins)
    # Whole-array passes, not blocks: with two threads, many short numpy calls per feature
    # convoy on the GIL (measured: blocks of 32k values made two threads slower than one).
    K = _walk(bits, n, m, ws.walk[:total])
    d, wasserstein = _statistics(K, merged, n, m, ws)
    # Each value is off by at most one ulp, so W1 is off by at most 2 ulp(max |value|)
    # (the per-value errors weigh 1/n or 1/m each). Data far from zero relative to its
    # spread could make that visible: then the exact path.
    if 2.0 * float(np.spacing(max(-merged[0], merged[-1]))) > 1e-10 * wasserstein:
        return _two_sample_split(ref, cur, edges_arr, reference_sorted, n_bins)
    if n_bins is not None:
        edges_arr = _quantile_edges(lambda ranks: _ref_order_stats_fast(ranks, K, bits, ref, n, m, ws), n, n_bins)
    etrunc = np.add(edges_arr, 0.0).view(np.uint64) >> _ONE
    pos = np.searchsorted(merged, edges_arr, side="left")  # points certainly below each edge
    after = bits[np.minimum(pos, total - 1)] >> _ONE
    before = bits[np.maximum(pos - 1, 0)] >> _ONE
    near = ((pos < total) & (after == etrunc)) | ((pos > 0) & (before == etrunc))
    cur_below = np.where(pos > 0, (pos * m - K[np.maximum(pos - 1, 0)]) // (n + m), 0)
    ref_below = pos - cur_below
    for i in np.flatnonzero(near).tolist():  # a value within one ulp of the edge: count the raw data
        cur_below[i] = int(np.count_nonzero(cur < edges_arr[i]))
        ref_below[i] = int(np.count_nonzero(ref < edges_arr[i]))
    return TwoSample(n, m, d, wasserstein, ref_below, cur_below, edges_arr)


def _quantile_edges(order_stats, n: int, n_bins: int) -> np.ndarray:
    """``np.unique(np.quantile(ref, k / n_bins))`` from a function giving ref order statistics.

    The indices and the interpolation are numpy's "linear" method, step for step
    (:func:`~mlops.drift.psi.sorted_quantiles`), in Python floats (the same IEEE
    operations), so the edges are the same floats.
    """
    if n_bins < 2:
        return np.empty(0)
    plan = []
    for k in range(1, n_bins):
        virtual = (n - 1) * (k / n_bins)
        if virtual >= n - 1:
            lo = hi = n - 1
            gamma = virtual - (-1)  # numpy's gamma uses the index it clipped to -1
        else:
            lo = int(math.floor(virtual))
            hi = lo + 1
            gamma = virtual - lo
        plan.append((lo, hi, gamma))
    ranks = sorted({r for lo, hi, _ in plan for r in (lo, hi)})
    values = dict(zip(ranks, order_stats(np.array(ranks, dtype=np.int64)).tolist()))
    edges = set()
    for lo, hi, t in plan:
        a, b = values[lo], values[hi]
        diff = b - a
        edges.add(b - diff * (1 - t) if t >= 0.5 else a + diff * t)
    return np.array(sorted(edges), dtype=np.float64)


def _ref_order_stats_fast(ranks: np.ndarray, K: np.ndarray, bits: np.ndarray, ref: np.ndarray,
                          n: int, m: int, ws: "_Workspace") -> np.ndarray:
    """Reference order statistics (0-based ranks) from the fast-path merge, exactly.

    The rank-r reference value sits at the first merged position where the running
    reference count ``((i + 1) n + K_i) / (n + m)`` reaches r + 1 (found on every 256th
    position, then within one block per rank). Its last bit was overwritten by the label;
    as no two merged values share the other 63 bits (that is what the fast path checked),
    the raw reference holds exactly one value with those bits: a 64k-entry lookup table on
    the low 16 bits finds the few candidates in one pass.
    """
    total = len(K)
    target = ranks.astype(np.int64) + 1
    step = 256  # a coarse pass over every 256th position, then one block per rank
    coarse = np.arange(step - 1, total, step)
    if len(coarse):
        blk = np.searchsorted(((coarse + 1) * n + K[coarse]) // (n + m), target, side="left")
        start = np.where(blk > 0, coarse[np.maximum(blk - 1, 0)] + 1, 0)
    else:
        start = np.zeros(len(target), dtype=np.int64)
    idx = np.minimum(start[:, None] + np.arange(step)[None, :], total - 1)
    reached = ((idx + 1) * n + K[idx]) // (n + m) >= target[:, None]
    lo = start + np.argmax(reached, axis=1)
    truncs = bits[lo] >> _ONE
    lut = np.zeros(1 << 16, dtype=bool)
    even = (truncs << _ONE) & _LOW16  # the low 16 bits of 2t and 2t + 1
    lut[even.view(np.int64)] = True
    lut[(even | _ONE).view(np.int64)] = True
    k = len(ref)
    rbits = ref.view(np.uint64)
    low = ws.absk[:k].view(np.uint64)
    np.bitwise_and(rbits, _LOW16, out=low)
    hits = np.flatnonzero(lut[low.view(np.int64)])
    exact = {int(b) >> 1: int(b) for b in rbits[hits].tolist()}
    out = np.array([exact[int(t)] for t in truncs.tolist()], dtype=np.uint64).view(np.float64)
    return out + 0.0  # -0.0 -> 0.0, as the merge counts it


def _walk(merged: np.ndarray, n: int, m: int, out: np.ndarray) -> np.ndarray:
    """K after each merged value: +m for a reference value, -n for a current one."""
    np.bitwise_and(merged.view(np.int64), 1, out=out)
    out *= -(n + m)
    out += m
    return np.cumsum(out, out=out)


def _statistics(K: np.ndarray, values: np.ndarray, n: int, m: int, ws: "_Workspace") -> tuple[float, float]:
    """(D, W1) from the walk K and the merged values (one entry per distinct value)."""
    nm = float(n) * float(m)
    k = len(values)
    absk = ws.absk[:k]
    np.abs(K, out=absk, casting="unsafe")
    d = float(absk.max()) / nm
    if k < 2:
        return d, 0.0
    gaps = ws.gaps[:k - 1]
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf when a sample holds infinities
        np.subtract(values[1:], values[:-1], out=gaps)
        w = float(np.dot(absk[:-1], gaps))
    if np.isfinite(w) or not np.isfinite(gaps).all():
        return d, w / nm
    absk /= nm  # |K| * gap overflowed: scale to |F_ref - F_cur| <= 1 first
    return d, float(np.dot(absk[:-1], gaps))


def _fast_path_valid(merged: np.ndarray, bits: np.ndarray, ref: np.ndarray, cur: np.ndarray) -> bool:
    """False if labelling the last bit may have changed the order (checked after the sort).

    A NaN at the end comes from an input NaN (an error) or a current +-inf (whose last bit
    makes it NaN); infinities go to the exact path. Around zero, -0.0, -5e-324 and the
    labelled zeros would sort wrongly (-0.0 equals 0.0; a current -0.0 becomes -5e-324):
    any value with the sign bit set and nothing else but the label bit sends the merge to
    the exact path as well.
    """
    if merged[-1] != merged[-1] or merged[-1] == np.inf or merged[0] == -np.inf:
        if np.isnan(ref).any() or np.isnan(cur).any():
            raise ValueError("NaN in the samples: remove nulls first")
        return False
    lo = int(np.searchsorted(merged, -_TINY, side="left"))
    hi = int(np.searchsorted(merged, 0.0, side="right"))
    if hi > lo and bool(np.any((bits[lo:hi] >> _ONE) == _NEG_ZERO_TRUNC)):
        return False
    return True


def _split(x: np.ndarray, is_sorted: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(bit patterns of -x for x < 0, bit patterns of x for x >= 0); -0.0 joins 0.0."""
    if is_sorted:
        k = int(np.searchsorted(x, 0.0, side="left"))  # -0.0 == 0.0, so it is not < 0
        return np.negative(x[:k]).view(np.uint64), np.abs(x[k:]).view(np.uint64)
    neg = x < 0
    if not neg.any():
        return _EMPTY, np.abs(x).view(np.uint64)
    if neg.all():
        return np.negative(x).view(np.uint64), _EMPTY
    negative = x[neg]
    np.negative(negative, out=negative)
    nonneg = x[~neg]
    np.abs(nonneg, out=nonneg)
    return negative.view(np.uint64), nonneg.view(np.uint64)


def _two_sample_split(ref: np.ndarray, cur: np.ndarray, edges: np.ndarray, reference_sorted: bool,
                      n_bins: int | None = None) -> TwoSample:
    """The exact path: every value keeps all its bits.

    Each sample is split by sign. Within the non-negative part a value's bit pattern is its
    order key; within the negative part ``bits(+inf) - bits(|x|)`` is. Either fits in 63
    bits, leaving the lowest bit for the label (equal values put the reference first). The
    two parts are sorted separately in one buffer, negatives first, and walked as one
    sequence, evaluated at the last element of each run of equal values.
    """
    n, m = len(ref), len(cur)
    rn, rp = _split(ref, reference_sorted)
    cn, cp = _split(cur)
    n_neg = len(rn) + len(cn)
    total = n + m
    ws = _workspace(total)
    merged = ws.keys[:total]
    for src, start, label in ((rn, 0, 0), (cn, len(rn), 1)):  # negatives, ascending in value
        part = merged[start:start + len(src)]
        np.subtract(_INF_BITS, src, out=part)
        part <<= _ONE
        if label:
            part |= _ONE
    for src, start, label in ((rp, n_neg, 0), (cp, n_neg + len(rp), 1)):  # non-negatives
        part = merged[start:start + len(src)]
        np.left_shift(src, _ONE, out=part)
        if label:
            part |= _ONE
    if n_neg:
        merged[:n_neg].sort()
    if n_neg < total:
        merged[n_neg:].sort()
    K = _walk(merged, n, m, ws.walk[:total])
    merged >>= _ONE  # value keys (per part)
    same = merged[1:] == merged[:-1]
    if 0 < n_neg < total:
        same[n_neg - 1] = False  # the parts' key spaces overlap; their values never tie
    ends = np.empty(total, dtype=bool)
    np.logical_not(same, out=ends[:-1])
    ends[-1] = True
    idx = np.flatnonzero(ends)
    K = K[idx]
    vkeys = merged[idx]
    split = int(np.searchsorted(idx, n_neg))
    values = np.empty(len(vkeys), dtype=np.float64)
    np.subtract(_INF_BITS, vkeys[:split], out=values[:split].view(np.uint64))
    np.negative(values[:split], out=values[:split])
    values[split:] = vkeys[split:].view(np.float64)
    d, wasserstein = _statistics(K, values, n, m, ws)
    if n_bins is not None:
        ref_at = (idx + 1) - (((idx + 1) * m - K) // (n + m))  # reference values up to each point
        edges = _quantile_edges(lambda ranks: values[np.searchsorted(ref_at, ranks + 1, side="left")], n, n_bins)
    pos = np.searchsorted(values, edges, side="left") - 1  # last point with value < e
    safe = np.maximum(pos, 0)
    at = idx[safe] + 1 if len(idx) else safe + 1  # values counted up to that point
    cur_at = (at * m - K[safe]) // (n + m)
    cur_below = np.where(pos >= 0, cur_at, 0).astype(np.int64)
    ref_below = np.where(pos >= 0, at - cur_at, 0).astype(np.int64)
    return TwoSample(n, m, d, wasserstein, ref_below, cur_below, edges)


class _Workspace:
    """Scratch arrays reused across calls in one thread: fresh multi-megabyte temporaries
    cost page faults that, on a busy machine, took as long as the arithmetic."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.keys = np.empty(size, dtype=np.uint64)
        self.tmp = np.empty(size, dtype=np.uint64)
        self.walk = np.empty(size, dtype=np.int64)
        self.values = np.empty(size, dtype=np.float64)
        self.gaps = np.empty(size, dtype=np.float64)
        self.absk = np.empty(size, dtype=np.float64)


_LOCAL = threading.local()


def _workspace(size: int) -> _Workspace:
    ws = getattr(_LOCAL, "ws", None)
    if ws is None or ws.size < size:
        ws = _Workspace(max(size, int(1.25 * ws.size) if ws is not None else size))
        _LOCAL.ws = ws
    return ws
