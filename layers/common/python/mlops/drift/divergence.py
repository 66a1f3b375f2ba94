"""Kullback-Leibler divergence and Jensen-Shannon distance of two histograms.

* :func:`kl_divergence` equals ``scipy.stats.entropy(p, q)``: both are normalised to sum 1,
  then ``sum(rel_entr(p, q))`` with ``rel_entr(x, y) = x ln(x/y)`` for x, y > 0, 0 for
  x = 0 and +inf for x > 0 = y. The drift report uses KL(reference || current) on the
  PSI bins with empty shares set to ``psi.EPSILON`` (so it stays finite), as Evidently does.
* :func:`jensen_shannon` equals ``scipy.spatial.distance.jensenshannon(p, q)`` (natural
  log): ``sqrt((KL(p||m) + KL(q||m)) / 2)`` with ``m = (p + q) / 2``; always finite, in
  ``[0, sqrt(ln 2)]``. The report uses the raw shares (no epsilon needed).

Both work along the last axis, so one call handles many features.

>>> round(kl_divergence([0.5, 0.5], [0.9, 0.1]), 6)
0.510826
>>> round(jensen_shannon([1, 0], [0, 1]), 6)
0.832555
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

ArrayLike = Sequence[float] | np.ndarray


def rel_entr(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Elementwise ``x ln(x/y)`` with scipy.special.rel_entr's conventions at 0 and inf."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = x * np.log(x / y)
    out = np.where(x == 0, np.where(y >= 0, 0.0, np.inf), out)
    out = np.where((x > 0) & (y == 0), np.inf, out)
    out = np.where((x < 0) | (y < 0), np.inf, out)
    return np.where(np.isnan(x) | np.isnan(y), np.nan, out)


def _normalise(p: ArrayLike) -> np.ndarray:
    a = np.asarray(p, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return a / a.sum(axis=-1, keepdims=True)


def kl_divergence(p: ArrayLike, q: ArrayLike) -> float | np.ndarray:
    """KL(p || q) in nats after normalising both (= ``scipy.stats.entropy(p, q)``)."""
    if _small(p, q):
        pn, qn = _normalise_list(p), _normalise_list(q)
        return sum(_rel_entr(x, y) for x, y in zip(pn, qn))
    value = np.sum(rel_entr(_normalise(p), _normalise(q)), axis=-1)
    return float(value) if np.ndim(value) == 0 else value


def jensen_shannon(p: ArrayLike, q: ArrayLike) -> float | np.ndarray:
    """Jensen-Shannon *distance* (= ``scipy.spatial.distance.jensenshannon(p, q)``)."""
    if _small(p, q):
        pn, qn = _normalise_list(p), _normalise_list(q)
        mn = [(x + y) / 2.0 for x, y in zip(pn, qn)]
        js = sum(_rel_entr(x, y) for x, y in zip(pn, mn)) + sum(_rel_entr(x, y) for x, y in zip(qn, mn))
        return math.sqrt(js / 2.0) if js >= 0 else math.nan
    pn = _normalise(p)
    qn = _normalise(q)
    m = (pn + qn) / 2.0
    js = np.sum(rel_entr(pn, m), axis=-1) + np.sum(rel_entr(qn, m), axis=-1)
    value = np.sqrt(js / 2.0)
    return float(value) if np.ndim(value) == 0 else value


# Short 1-D histograms (the usual 10 bins) take a pure-Python path: a dozen numpy calls on
# ten numbers cost more than the arithmetic, and hold the GIL while many features run on
# threads. Same formulas; sums may round differently in the last bit.
_SMALL = 64


def _small(p: ArrayLike, q: ArrayLike) -> bool:
    return (isinstance(p, (list, tuple)) and isinstance(q, (list, tuple)) and len(p) == len(q) <= _SMALL
            and not (p and isinstance(p[0], (list, tuple, np.ndarray))))


def _normalise_list(p: Sequence[float]) -> list[float]:
    total = float(sum(p))
    return [float(x) / total if total else math.nan for x in p]


def _rel_entr(x: float, y: float) -> float:
    if x != x or y != y:
        return math.nan
    if x > 0 and y > 0:
        return x * math.log(x / y)
    if x == 0 and y >= 0:
        return 0.0
    return math.inf
