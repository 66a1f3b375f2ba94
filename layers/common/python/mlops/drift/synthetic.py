"""Synthetic streams with known drift points, and how to score detectors on them.

Every generator takes a seed (numpy ``default_rng``) and returns a :class:`Stream`: the
values, the indices where a new concept starts (``drift_points``), and a description.

* :func:`abrupt` - Gaussian noise whose mean jumps at each drift point (``shifts`` are the
  jump sizes in units of the noise std);
* :func:`gradual` - at each drift point a transition of ``width`` values starts in which
  each value comes from the new concept with a probability rising linearly from 0 to 1
  (MOA's "gradual" drift); the drift point is the start of the transition;
* :func:`incremental` - the mean moves linearly to its new level over ``width`` values;
* :func:`bernoulli` - a 0/1 error stream whose error rate changes at each drift point
  (for DDM and EDDM, which expect model errors);
* :func:`stationary` - no drift at all (false alarms only).

:func:`score` matches detections to drift points: a detection is *true* for the latest
drift point p at or before it if it comes within ``max_delay`` values of p and before the
next drift point, and is the first such; every other detection is a *false alarm*. It
reports each drift point's delay (None = missed) and the false alarms per 10,000 values.

>>> s = abrupt(n=2000, drift_points=[1000], shifts=[3.0], seed=1)
>>> s.drift_points, round(float(s.values[:1000].mean()), 1), round(float(s.values[1000:].mean()), 1)
([1000], -0.1, 3.0)
>>> score([990, 1003, 1500], [1000], n=2000, max_delay=400)
Score(delays=[3], false_alarms=2, false_alarm_rate=10.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Stream:
    """Values with the indices where each new concept begins."""

    values: np.ndarray
    drift_points: list[int]
    description: str


def _levels(n: int, drift_points: Sequence[int], shifts: Sequence[float]) -> np.ndarray:
    if len(drift_points) != len(shifts):
        raise ValueError("one shift per drift point")
    if list(drift_points) != sorted(drift_points) or any(not 0 < p < n for p in drift_points):
        raise ValueError("drift points must be increasing and inside the stream")
    level = np.zeros(n)
    for p, s in zip(drift_points, np.cumsum(shifts)):
        level[p:] = s
    return level


def abrupt(n: int = 10_000, drift_points: Sequence[int] = (5000,), shifts: Sequence[float] = (1.0,),
           noise: float = 1.0, seed: int = 0) -> Stream:
    """N(level, noise^2) with the level jumping by ``shifts[k] * noise`` at ``drift_points[k]``."""
    rng = np.random.default_rng(seed)
    level = _levels(n, drift_points, shifts) * noise
    return Stream(level + rng.normal(0.0, noise, n), list(drift_points),
                  f"abrupt mean shifts {list(shifts)} sd at {list(drift_points)}")


def gradual(n: int = 10_000, drift_points: Sequence[int] = (5000,), shifts: Sequence[float] = (1.0,),
            width: int = 1000, noise: float = 1.0, seed: int = 0) -> Stream:
    """Each value from the new concept with probability rising linearly over ``width`` values."""
    rng = np.random.default_rng(seed)
    before = np.concatenate([[0.0], np.cumsum(shifts)[:-1]]) * noise
    after = np.cumsum(shifts) * noise
    level = _levels(n, drift_points, shifts) * noise
    t = np.arange(n)
    for p, lo, hi in zip(drift_points, before, after):
        inside = (t >= p) & (t < p + width)
        new = rng.random(n) < (t - p + 1) / width
        level[inside] = np.where(new[inside], hi, lo)
    return Stream(level + rng.normal(0.0, noise, n), list(drift_points),
                  f"gradual (width {width}) mean shifts {list(shifts)} sd at {list(drift_points)}")


def incremental(n: int = 10_000, drift_points: Sequence[int] = (5000,), shifts: Sequence[float] = (1.0,),
                width: int = 1000, noise: float = 1.0, seed: int = 0) -> Stream:
    """The mean ramps linearly to its new level over ``width`` values."""
    rng = np.random.default_rng(seed)
    before = np.concatenate([[0.0], np.cumsum(shifts)[:-1]]) * noise
    after = np.cumsum(shifts) * noise
    level = _levels(n, drift_points, shifts) * noise
    t = np.arange(n)
    for p, lo, hi in zip(drift_points, before, after):
        inside = (t >= p) & (t < p + width)
        level[inside] = lo + (hi - lo) * (t[inside] - p + 1) / width
    return Stream(level + rng.normal(0.0, noise, n), list(drift_points),
                  f"incremental (width {width}) mean shifts {list(shifts)} sd at {list(drift_points)}")


def bernoulli(n: int = 10_000, drift_points: Sequence[int] = (5000,), rates: Sequence[float] = (0.1, 0.3),
              seed: int = 0) -> Stream:
    """0/1 errors with rate ``rates[k]`` in the k-th segment (len(rates) = drift points + 1)."""
    if len(rates) != len(drift_points) + 1:
        raise ValueError("one rate per segment")
    _levels(n, drift_points, [0.0] * len(drift_points))  # validates the points
    rng = np.random.default_rng(seed)
    rate = np.full(n, float(rates[0]))
    for p, r in zip(drift_points, rates[1:]):
        rate[p:] = r
    return Stream((rng.random(n) < rate).astype(np.int64), list(drift_points),
                  f"Bernoulli error rates {list(rates)} changing at {list(drift_points)}")


def stationary(n: int = 10_000, noise: float = 1.0, seed: int = 0) -> Stream:
    """N(0, noise^2), no drift."""
    rng = np.random.default_rng(seed)
    return Stream(rng.normal(0.0, noise, n), [], "stationary N(0, 1)")


@dataclass(frozen=True)
class Score:
    """Delay per drift point (None if missed) and the false alarms (count, per 10k values)."""

    delays: list[int | None]
    false_alarms: int
    false_alarm_rate: float


def score(detections: Sequence[int], drift_points: Sequence[int], n: int, max_delay: int) -> Score:
    """Match detections to drift points (see the module docstring)."""
    points = list(drift_points)
    delays: list[int | None] = [None] * len(points)
    false_alarms = 0
    for d in sorted(detections):
        k = int(np.searchsorted(points, d, side="right")) - 1  # latest drift point <= d
        if k >= 0 and delays[k] is None and d - points[k] < max_delay:
            delays[k] = d - points[k]
        else:
            false_alarms += 1
    return Score(delays, false_alarms, 10_000.0 * false_alarms / n if n else 0.0)
