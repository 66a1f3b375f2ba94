"""Two-sample Kolmogorov-Smirnov test, equal to ``scipy.stats.ks_2samp(method="auto")``.

The statistic is ``D = sup_z |F_ref(z) - F_cur(z)|`` over the two empirical CDFs. Its
two-sided p-value follows scipy's rule exactly:

* **exact** when ``max(n1, n2) <= 10_000``: D is rounded to the lattice ``h / lcm(n1, n2)``
  (and the statistic returned is that rounded value, as scipy does); equal sizes use the
  closed form of :func:`prob_outside_square` (Horner-like alternating sum), unequal sizes
  count lattice paths that leave the band ``|x/n1 - y/n2| < h/lcm``
  (:func:`outer_prob_inside`, Hodges' inside method in Viehmann's ``1 - p`` recursion).
  If that count overflows, scipy falls back to the asymptotic regime; so does this.
* **asymptotic** otherwise: ``kstwo.sf(D, round(n1*n2/(n1+n2)))``, the exact one-sample
  distribution at the effective size (:func:`~mlops.drift.kolmogorov.kstwo_sf`).

The lattice recursion is evaluated cell by cell with scipy's own expression
``(A[i-1,j]*i + A[i,j-1]*j)/(i+j)``, column by column for small problems and, when the
band holds many cells, one anti-diagonal at a time (every cell of an anti-diagonal depends
only on the previous one, so a whole diagonal is one numpy expression). Both orders give
the same floats as scipy's compiled loop.

>>> r = ks_2samp([0.1, 0.4, 0.7, 0.9], [0.2, 0.5, 0.6, 0.8, 1.2])
>>> round(r.statistic, 6), round(r.pvalue, 6), r.method
(0.3, 0.968254, 'exact')
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from mlops.drift.kolmogorov import kstwo_sf

MAX_AUTO_N = 10_000  # scipy: method="auto" is exact iff max(n1, n2) <= MAX_AUTO_N
_INT32_MAX = 2**31 - 1


@dataclass(frozen=True)
class KSResult:
    """Statistic, two-sided p-value and the regime scipy's ``method="auto"`` picks."""

    statistic: float
    pvalue: float
    method: Literal["exact", "asymp"]


def prob_outside_square(n: int, h: int) -> float:
    """P(D_{n,n} >= h/n): the share of lattice paths leaving the band |x - y| < h.

    Scipy's ``_compute_prob_outside_square``: 2 * (A0 (1 - A1 (1 - A2 (...)))).
    """
    P = 0.0
    k = int(math.floor(n / h))
    while k >= 0:
        p1 = 1.0
        for j in range(h):
            p1 = (n - k * h - j) * p1 / (n + k * h + j + 1)
        P = p1 * (1.0 - P)
        k -= 1
    return 2 * P


def _band(i: int, ng: int, mg: int, h: int, n: int) -> tuple[int, int]:
    """The rows [minj, maxj) of column i that lie strictly inside the band."""
    minj = max(int(math.floor((ng * i - h) / mg)) + 1, 0)
    minj = min(minj, n)
    maxj = min(int(math.ceil((ng * i + h) / mg)), n + 1)
    return minj, maxj


def outer_prob_inside(m: int, n: int, g: int, h: int) -> float:
    """P(D_{m,n} >= h/lcm): scipy's ``_compute_outer_prob_inside_method``.

    Works on the scaled counts A(i, j) = (#paths to (i, j) that left the band) / C(i+j, j)
    with A = 1 outside the band and A(0, j) = 0 inside it.
    """
    if m < n:
        m, n = n, m
    mg = m // g
    ng = n // g
    minj, maxj = 0, min(int(math.ceil(h / mg)), n + 1)
    # Work in the column order when the band is narrow; by anti-diagonals when wide.
    width = min(2 * h // mg + 2, n + 1)
    if m * width <= 60_000:
        return _outer_prob_columns(m, n, mg, ng, h, minj, maxj)
    return _outer_prob_diagonals(m, n, mg, ng, h)


def _outer_prob_columns(m: int, n: int, mg: int, ng: int, h: int, minj: int, maxj: int) -> float:
    curlen = maxj - minj
    lenA = min(2 * maxj + 2, n + 1)
    A = [1.0] * lenA
    for j in range(minj, maxj):
        A[j] = 0.0
    for i in range(1, m + 1):
        lastminj, lastlen = minj, curlen
        minj, maxj = _band(i, ng, mg, h, n)
        if maxj <= minj:
            return 1.0
        val = 0.0 if minj == 0 else 1.0
        shift = minj - lastminj
        for jj in range(maxj - minj):
            j = jj + minj
            val = (A[jj + shift] * i + val * j) / (i + j)
            A[jj] = val
        curlen = maxj - minj
        if lastlen > curlen:
            for t in range(maxj - minj, maxj - minj + (lastlen - curlen)):
                A[t] = 1.0
    return A[maxj - minj - 1]


def _outer_prob_diagonals(m: int, n: int, mg: int, ng: int, h: int) -> float:
    """The same recursion, one anti-diagonal d = i + j at a time (vectorised).

    Cell (i, j) is inside the band iff lo[i] <= j < hi[i]; on diagonal d the inside cells
    are the columns i in [ia(d), ib(d)] (both bounds move monotonically). Two buffers hold
    A(i, d-1-i) and A(i, d-i) by column i; before a diagonal is written, the positions the
    next diagonal reads are reset to 1.0 (cells outside the band count as left).
    """
    i_all = np.arange(m + 1, dtype=np.int64)
    lo = np.minimum(np.maximum(np.floor((ng * i_all - h) / mg).astype(np.int64) + 1, 0), n)
    hi = np.minimum(np.ceil((ng * i_all + h) / mg).astype(np.int64), n + 1)
    if np.any(hi[1:] <= lo[1:]):
        return 1.0
    d_all = np.arange(m + n + 2, dtype=np.int64)
    ia = np.maximum(np.searchsorted(i_all + hi, d_all, side="right"), np.maximum(d_all - n, 0))
    ib = np.minimum(np.searchsorted(i_all + lo, d_all, side="right") - 1, np.minimum(d_all, m))
    fi = i_all.astype(np.float64)
    prev = np.ones(m + 2)
    prev[0] = 0.0  # A(0, 0): inside the band, no path has left
    cur = np.ones(m + 2)
    for d in range(1, m + n + 1):
        a, b = int(ia[d]), int(ib[d])
        na, nb = int(ia[d + 1]), int(ib[d + 1])
        cur[max(na - 1, 0):nb + 1] = 1.0
        if a <= b:
            lo_i = a
            fii = fi[lo_i:b + 1]
            fjj = d - fii
            if lo_i == 0:  # column 0: A(0, j) = 0 inside the band
                vals = np.empty(b + 1)
                vals[0] = 0.0
                if b >= 1:
                    vals[1:] = (prev[0:b] * fii[1:] + prev[1:b + 1] * fjj[1:]) / (fii[1:] + fjj[1:])
            else:
                vals = (prev[lo_i - 1:b] * fii + prev[lo_i:b + 1] * fjj) / (fii + fjj)
            cur[lo_i:b + 1] = vals
        prev, cur = cur, prev
    return float(prev[m])


def attempt_exact(n1: int, n2: int, d: float) -> tuple[bool, float, float]:
    """Scipy's ``_attempt_exact_2kssamp`` (two-sided): (success, rounded d, p)."""
    g = math.gcd(n1, n2)
    lcm = (n1 // g) * n2
    h = int(np.round(d * lcm))
    d = h * 1.0 / lcm
    if h == 0:
        return True, d, 1.0
    try:
        with np.errstate(invalid="raise", over="raise"):
            if n1 == n2:
                prob = prob_outside_square(n1, h)
            else:
                prob = outer_prob_inside(n1, n2, g, h)
    except (FloatingPointError, OverflowError):
        return False, d, math.nan
    if not (0 <= prob <= 1):
        return False, d, prob
    return True, d, prob


def ks_pvalue(d: float, n1: int, n2: int, method: str = "auto") -> KSResult:
    """Two-sided p-value of statistic ``d`` for sample sizes ``n1``, ``n2`` (scipy's rule).

    ``method`` is "auto" (exact iff ``max(n1, n2) <= 10_000``), "exact" or "asymp".
    """
    if min(n1, n2) <= 0:
        raise ValueError("both samples must be non-empty")
    mode = method
    if mode == "auto":
        mode = "exact" if max(n1, n2) <= MAX_AUTO_N else "asymp"
    elif mode == "exact":
        g = math.gcd(n1, n2)
        if n1 // g >= _INT32_MAX / (n2 // g):
            mode = "asymp"
    prob = -math.inf
    if mode == "exact":
        ok, d, prob = attempt_exact(n1, n2, d)
        if not ok:
            mode = "asymp"
    if mode == "asymp":
        m, n = sorted([float(n1), float(n2)], reverse=True)
        en = m * n / (m + n)
        prob = kstwo_sf(d, int(round(en)))
    return KSResult(float(d), float(min(max(prob, 0.0), 1.0)), "exact" if mode == "exact" else "asymp")


def ks_statistic_sorted(a: np.ndarray, b: np.ndarray) -> float:
    """D for two *sorted* NaN-free samples, evaluated as scipy does (searchsorted CDFs)."""
    both = np.concatenate([a, b])
    cdf1 = np.searchsorted(a, both, side="right") / len(a)
    cdf2 = np.searchsorted(b, both, side="right") / len(b)
    diff = cdf1 - cdf2
    return float(max(np.clip(-np.min(diff), 0, 1), np.max(diff)))


def ks_2samp(a: np.ndarray | list[float], b: np.ndarray | list[float], method: str = "auto") -> KSResult:
    """Two-sample KS test on raw samples (NaN must be removed by the caller, as in scipy)."""
    x = np.sort(np.asarray(a, dtype=np.float64))
    y = np.sort(np.asarray(b, dtype=np.float64))
    if min(len(x), len(y)) == 0:
        raise ValueError("both samples must be non-empty")
    return ks_pvalue(ks_statistic_sorted(x, y), len(x), len(y), method)
