"""Pearson's chi-square goodness of fit for a categorical feature (= scipy.stats.chisquare).

**Expected counts.** The reference is a frequency table. Over the union of categories seen
in the reference or the current window, the expected count of category c in a current
window of N values is ``N * ref_count(c) / ref_total`` (Evidently's scaling), so expected
and observed totals agree, as scipy requires. A category the reference never saw has an
expected count of 0: its term is +inf and the p-value 0 - a new category *is* drift (the
data-quality checks also flag it). Nulls are not a category here; they are counted apart.

``statistic = sum((obs - exp)^2 / exp)``; ``p = P(chi2_{k-1} >= statistic)`` with k the
number of categories, i.e. ``Q((k-1)/2, statistic/2)``, the regularized upper incomplete
gamma function, ported from cephes (series below ``x < a`` or ``x < 1``, Legendre's
continued fraction above) - no scipy in the drift function.

>>> r = chisquare([16, 18, 16, 14, 12, 12], [16, 16, 16, 16, 16, 8])
>>> round(r.statistic, 6), round(r.pvalue, 6)
(3.5, 0.623388)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_MACHEP = 1.11022302462515654042e-16
_BIG = 4.503599627370496e15
_BIGINV = 2.22044604925031308085e-16
_MAXITER = 100_000


@dataclass(frozen=True)
class ChiSquareResult:
    statistic: float
    pvalue: float
    dof: int


def _igam_factor(a: float, x: float) -> float:
    """x^a e^-x / Gamma(a), in logs to avoid overflow."""
    ax = a * math.log(x) - x - math.lgamma(a)
    if ax < -745.0:
        return 0.0
    return math.exp(ax)


def _igam_series(a: float, x: float) -> float:
    """Regularized lower incomplete gamma P(a, x) by its power series."""
    factor = _igam_factor(a, x)
    if factor == 0.0:
        return 0.0
    r, c, ans = a, 1.0, 1.0
    for _ in range(_MAXITER):
        r += 1.0
        c *= x / r
        ans += c
        if c <= _MACHEP * ans:
            break
    return ans * factor / a


def _igamc_continued_fraction(a: float, x: float) -> float:
    """Regularized upper incomplete gamma Q(a, x) by Legendre's continued fraction."""
    factor = _igam_factor(a, x)
    if factor == 0.0:
        return 0.0
    y = 1.0 - a
    z = x + y + 1.0
    c = 0.0
    pkm2, qkm2 = 1.0, x
    pkm1, qkm1 = x + 1.0, z * x
    ans = pkm1 / qkm1
    for _ in range(_MAXITER):
        c += 1.0
        y += 1.0
        z += 2.0
        yc = y * c
        pk = pkm1 * z - pkm2 * yc
        qk = qkm1 * z - qkm2 * yc
        if qk != 0:
            r = pk / qk
            t = abs((ans - r) / r)
            ans = r
        else:
            t = 1.0
        pkm2, pkm1 = pkm1, pk
        qkm2, qkm1 = qkm1, qk
        if abs(pk) > _BIG:
            pkm2 *= _BIGINV
            pkm1 *= _BIGINV
            qkm2 *= _BIGINV
            qkm1 *= _BIGINV
        if t <= _MACHEP:
            break
    return ans * factor


def gammaincc(a: float, x: float) -> float:
    """Q(a, x) = Gamma(a, x) / Gamma(a), the regularized upper incomplete gamma function."""
    if math.isnan(a) or math.isnan(x) or a <= 0 or x < 0:
        return math.nan
    if x == 0:
        return 1.0
    if math.isinf(x):
        return 0.0
    if x < 1.0 or x < a:
        return 1.0 - _igam_series(a, x)
    return _igamc_continued_fraction(a, x)


def chi2_sf(statistic: float, dof: int) -> float:
    """P(chi2_dof >= statistic) (= ``scipy.stats.chi2.sf``)."""
    if dof <= 0:
        return math.nan
    if math.isnan(statistic):
        return math.nan
    if statistic <= 0:
        return 1.0
    return gammaincc(dof / 2.0, statistic / 2.0)


def chisquare(observed: Sequence[float] | np.ndarray, expected: Sequence[float] | np.ndarray) -> ChiSquareResult:
    """Pearson's statistic and p-value with k-1 degrees of freedom (= scipy.stats.chisquare)."""
    obs = np.asarray(observed, dtype=np.float64)
    exp = np.asarray(expected, dtype=np.float64)
    if obs.shape != exp.shape or obs.ndim != 1:
        raise ValueError("observed and expected must be 1-D and of equal length")
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = (obs - exp) ** 2 / exp
    statistic = float(np.sum(terms))
    dof = len(obs) - 1
    return ChiSquareResult(statistic, chi2_sf(statistic, dof) if dof > 0 else math.nan, dof)


def expected_from_reference(reference_counts: Mapping[Any, float], current_counts: Mapping[Any, float]
                            ) -> tuple[list[Any], np.ndarray, np.ndarray]:
    """(categories, observed, expected) over the union of categories, reference order first.

    ``expected[c] = N_current * ref_count[c] / ref_total``.
    """
    categories = list(reference_counts)
    seen = set(categories)
    categories += [c for c in current_counts if c not in seen]
    ref = np.array([float(reference_counts.get(c, 0)) for c in categories])
    obs = np.array([float(current_counts.get(c, 0)) for c in categories])
    ref_total = ref.sum()
    n_cur = obs.sum()
    expected = ref * (n_cur / ref_total) if ref_total > 0 else np.zeros_like(ref)
    return categories, obs, expected
