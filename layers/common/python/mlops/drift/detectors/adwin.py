"""ADWIN: adaptive windowing (Bifet & Gavalda 2007; river's ``drift.ADWIN``).

ADWIN keeps a window of recent values compressed into *buckets*: level i holds up to
``max_buckets`` summaries (total and variance) of 2^i consecutive values; when a level
overflows its two oldest buckets merge into one of the next level (the exponential
histogram of ADWIN2). Every ``clock`` values (once more than ``grace_period`` were seen)
it tries every cut of the window into an older part W0 and a newer part W1 at bucket
boundaries and declares drift when, for some cut with both parts at least
``min_window_length`` long, ``|mean(W0) - mean(W1)| > eps_cut`` with::

    m = 1 / (n0 - mwl + 1) + 1 / (n1 - mwl + 1),  d' = ln(2 ln(width) / delta)
    eps_cut = sqrt(2 m (variance / width) d') + 2/3 d' m

after which it drops the oldest buckets until no cut fires. Why: a change in the mean
makes the older and newer halves of the window differ by more than chance allows
(Hoeffding/Bernstein bound at confidence delta).

**Same detections as river.** river 0.26 runs ADWIN in Rust (``AdaptiveWindowing``, a
line-by-line port of its earlier Cython). This is the same algorithm with the same
floating-point expressions in the same order (IEEE doubles, libm ``log``), so every
comparison comes out the same. As in river, the update after a detection starts from an
empty window.

:meth:`ADWIN.update_many` adds a vectorised path for batches (see its docstring).

>>> import random
>>> rng = random.Random(12345)
>>> adwin = ADWIN()
>>> stream = rng.choices([0, 1], k=1000) + rng.choices(range(4, 8), k=1000)
>>> [i for i, x in enumerate(stream) if adwin.update(x).drift_detected]
[1023]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from mlops.drift.detectors.base import Detections, DriftDetector


class ADWIN(DriftDetector):
    """Adaptive windowing drift detector; river's defaults."""

    kind = "ADWIN"

    def __init__(self, delta: float = 0.002, clock: int = 32, max_buckets: int = 5, min_window_length: int = 5,
                 grace_period: int = 10) -> None:
        super().__init__()
        self.delta = delta
        self.clock = clock
        self.max_buckets = max_buckets
        self.min_window_length = min_window_length
        self.grace_period = grace_period
        self._reset()

    def _reset(self) -> None:
        self._drift_detected = False
        self._totals: list[list[float]] = [[]]  # per level, oldest bucket first
        self._variances: list[list[float]] = [[]]
        self._total = 0.0
        self._variance = 0.0
        self._width = 0.0
        self._tick = 0
        self._n_detections = 0

    # -- river's read-only properties ------------------------------------------------------

    @property
    def width(self) -> int:
        """Window size."""
        return int(self._width)

    @property
    def n_detections(self) -> int:
        """Detections since the last reset (river's counter: 0 or 1)."""
        return self._n_detections

    @property
    def variance(self) -> float:
        """Sum of squared deviations within the window (river's ``variance``)."""
        return self._variance

    @property
    def total(self) -> float:
        """Sum of the values in the window."""
        return self._total

    @property
    def estimation(self) -> float:
        """Mean of the window."""
        return 0.0 if self._width == 0 else self._total / self._width

    # -- the algorithm -------------------------------------------------------------------

    def update(self, x: float) -> "ADWIN":
        if self._drift_detected:
            self._reset()
        self.n_seen += 1
        self._insert(float(x))
        self._drift_detected = self._detect_change()
        return self

    def _insert(self, value: float) -> None:
        self._totals[0].append(value)
        self._variances[0].append(0.0)
        self._width += 1.0
        inc = 0.0
        if self._width > 1.0:
            dv = value - self._total / (self._width - 1.0)
            inc = (self._width - 1.0) * dv * dv / self._width
        self._variance += inc
        self._total += value
        self._compress()

    def _compress(self) -> None:
        totals, variances, cap = self._totals, self._variances, self.max_buckets + 1
        idx = 0
        while len(totals[idx]) == cap:
            n1 = float(1 << idx)
            t0, t1 = totals[idx][0], totals[idx][1]
            v0, v1 = variances[idx][0], variances[idx][1]
            mu1 = t0 / n1
            mu2 = t1 / n1
            temp = n1 * 0.5 * (mu1 - mu2) * (mu1 - mu2)
            if idx + 1 >= len(totals):
                totals.append([])
                variances.append([])
            totals[idx + 1].append(t0 + t1)
            variances[idx + 1].append(v0 + v1 + temp)
            del totals[idx][:2]
            del variances[idx][:2]
            if len(totals[idx + 1]) <= self.max_buckets:
                break
            idx += 1

    def _delete_oldest(self) -> None:
        last = len(self._totals) - 1
        n = float(1 << last)
        u = self._totals[last][0]
        v = self._variances[last][0]
        mu = u / n
        self._width -= n
        self._total -= u
        mu_window = _div(self._total, self._width)
        self._variance -= v + n * self._width * (mu - mu_window) * (mu - mu_window) / (n + self._width)
        del self._totals[last][0]
        del self._variances[last][0]
        if not self._totals[last]:
            self._totals.pop()
            self._variances.pop()

    def _detect_change(self) -> bool:
        change = False
        self._tick += 1
        if self._tick % self.clock == 0 and self._width > self.grace_period:
            mwl = float(self.min_window_length)
            reduce_width = True
            while reduce_width:
                reduce_width = False
                n0, n1, u0, u1 = 0.0, self._width, 0.0, self._total
                # constant over this scan: d' and the variance per value
                delta_prime = math.log(2.0 * math.log(self._width) / self.delta)
                var_w = self._variance / self._width
                cut = False
                for idx in range(len(self._totals) - 1, -1, -1):
                    size = float(1 << idx)
                    row = self._totals[idx]
                    last_k = len(row) - 1
                    for k, t in enumerate(row):
                        n0 += size
                        n1 -= size
                        u0 += t
                        u1 -= t
                        if idx == 0 and k == last_k:
                            break
                        if n1 >= mwl and n0 >= mwl:
                            delta_mean = u0 / n0 - u1 / n1
                            m_recip = 1.0 / (n0 - mwl + 1.0) + 1.0 / (n1 - mwl + 1.0)
                            eps = _sqrt(2.0 * m_recip * var_w * delta_prime) + 2.0 / 3.0 * delta_prime * m_recip
                            if abs(delta_mean) > eps:
                                cut = True
                                break
                    if cut:
                        break
                if cut:
                    change = True
                    if self._width > 0.0:
                        self._delete_oldest()
                        reduce_width = True
        if change:
            self._n_detections += 1
        return change

    # -- batches -------------------------------------------------------------------------

    def update_many(self, values: Iterable[float]) -> Detections:
        """Feed a batch; vectorised while the window only grows (see :mod:`.adwin_batch`)."""
        from mlops.drift.detectors.adwin_batch import run_batch

        return run_batch(self, np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=np.float64))

    # -- state ---------------------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        return {"delta": self.delta, "clock": self.clock, "max_buckets": self.max_buckets,
                "min_window_length": self.min_window_length, "grace_period": self.grace_period}

    def _get_state(self) -> dict[str, Any]:
        return {"drift": self._drift_detected, "totals": [list(r) for r in self._totals],
                "variances": [list(r) for r in self._variances], "total": self._total,
                "variance": self._variance, "width": self._width, "tick": self._tick,
                "n_detections": self._n_detections}

    def _set_state(self, s: Mapping[str, Any]) -> None:
        self._drift_detected = bool(s["drift"])
        self._totals = [[float(v) for v in r] for r in s["totals"]]
        self._variances = [[float(v) for v in r] for r in s["variances"]]
        self._total, self._variance, self._width = float(s["total"]), float(s["variance"]), float(s["width"])
        self._tick, self._n_detections = int(s["tick"]), int(s["n_detections"])


def _div(a: float, b: float) -> float:
    """IEEE division (Rust's f64): x/0 is +-inf or NaN instead of an exception."""
    if b != 0.0:
        return a / b
    return math.nan if a == 0.0 or a != a else math.copysign(math.inf, a) * math.copysign(1.0, b)


def _sqrt(x: float) -> float:
    """IEEE sqrt: NaN for negative input (a rounding-negative variance) instead of an exception."""
    return math.sqrt(x) if x >= 0.0 else math.nan
