"""Population Stability Index over bins from reference quantiles.

``PSI = sum_i (q_i - p_i) * ln(q_i / p_i)`` with p the reference and q the current share of
each bin. Bins come from the reference: interior edges at its quantiles ``k / n_bins``
(numpy's default linear interpolation), duplicates removed (a discrete feature gets fewer,
wider bins), outer bins open-ended so current values beyond the reference range still
count. Bin i is ``[e_{i-1}, e_i)``.

**Empty bins.** A share of exactly 0 would make the log infinite; such shares are replaced
by ``EPSILON = 1e-4`` (the value Evidently uses), without renormalising. With 10 bins a
bin that empties completely then contributes about ``p * ln(p / 1e-4)``, e.g. 0.69 for a
10% bin: an empty bin is a large shift, and the PSI says so without becoming infinite.

Rule of thumb (Siddiqi): < 0.1 no significant change, 0.1-0.25 moderate, > 0.25 major;
the chooser's default threshold is 0.1.

>>> round(psi([25, 25, 25, 25], [10, 20, 30, 40]), 6)
0.228217
>>> quantile_edges(np.arange(10.0), 4).tolist()
[2.25, 4.5, 6.75]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

EPSILON = 1e-4
DEFAULT_BINS = 10


def quantile_edges(values: np.ndarray, n_bins: int = DEFAULT_BINS, is_sorted: bool = False) -> np.ndarray:
    """Interior bin edges at the reference quantiles k/n_bins, k = 1..n_bins-1, deduplicated.

    ``np.unique(np.quantile(values, k / n_bins))`` (numpy's default linear method). A sorted
    input skips numpy's partitions (several passes over the data) and interpolates between
    the order statistics with numpy's own formula, so the edges are the same floats.
    """
    x = np.asarray(values, dtype=np.float64)
    if len(x) == 0 or n_bins < 2:
        return np.empty(0)
    q = np.arange(1, n_bins) / n_bins
    if not is_sorted:
        return np.unique(np.quantile(x, q))
    return np.unique(sorted_quantiles(x, q))


def sorted_quantiles(x: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``np.quantile(x, q)`` for a sorted NaN-free x, by numpy's "linear" arithmetic."""
    n = len(x)
    virtual = (n - 1) * q
    previous = np.floor(virtual)
    following = previous + 1
    above = virtual >= n - 1
    previous[above] = -1
    following[above] = -1
    below = virtual < 0
    previous[below] = 0
    following[below] = 0
    prev_i = previous.astype(np.intp)
    next_i = following.astype(np.intp)
    a, b = x[prev_i], x[next_i]
    t = virtual - prev_i
    diff = b - a
    out = a + diff * t
    np.subtract(b, diff * (1 - t), out=out, where=t >= 0.5)
    return out


def bin_counts(below: np.ndarray, total: int) -> np.ndarray:
    """Counts per bin from the counts of values below each edge (len(edges) + 1 bins)."""
    b = np.asarray(below, dtype=np.int64)
    return np.diff(np.concatenate([[0], b, [total]]))


def share_list(counts: Sequence[float], eps: float = EPSILON) -> list[float]:
    """:func:`shares` for a short list, in pure Python."""
    total = float(sum(counts))
    out = [float(c) / total if total else math.nan for c in counts]
    return [eps if x == 0 else x for x in out]


def shares(counts: Sequence[float] | np.ndarray, eps: float = EPSILON) -> np.ndarray:
    """Counts to shares with empty bins set to ``eps`` (along the last axis)."""
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = c / total
    return np.where(p == 0, eps, p)


def psi(reference_counts: Sequence[float] | np.ndarray, current_counts: Sequence[float] | np.ndarray,
        eps: float = EPSILON) -> float | np.ndarray:
    """PSI of two histograms on the same bins (vectorised over leading axes; two short
    lists take a pure-Python path with the same formula)."""
    if isinstance(reference_counts, list) and isinstance(current_counts, list) and len(reference_counts) <= 64:
        return sum((q - p) * math.log(q / p)
                   for p, q in zip(share_list(reference_counts, eps), share_list(current_counts, eps)))
    p = shares(reference_counts, eps)
    q = shares(current_counts, eps)
    value = np.sum((q - p) * np.log(q / p), axis=-1)
    return float(value) if np.ndim(value) == 0 else value
