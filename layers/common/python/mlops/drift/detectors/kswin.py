"""KSWIN: Kolmogorov-Smirnov windowing (Raab et al. 2020; river's ``drift.KSWIN``).

A sliding window of the last ``window_size`` values; its newest ``stat_size`` values R are
compared by a two-sample KS test with ``stat_size`` values W drawn without replacement
from the older part. Drift when ``p <= alpha`` and ``D > 0.1``. Why: a distribution change
(not only of the mean) shows as a large gap between the ECDFs of recent and older values.

**Same detections as river.** The draw is Python's ``random.Random(seed).sample(
range(window_size - stat_size), stat_size)``, called exactly when and as river calls it
(and the generator is re-seeded on reset, as in river), so both see the same W. The test is
river's ``scipy.stats.ks_2samp(W, R, method="auto")``: for two samples of ``stat_size``
values scipy's exact regime rounds D to ``h / stat_size`` and takes the p-value from
:func:`~mlops.drift.ks.prob_outside_square`; here h comes from an integer merge of the two
sorted samples and the p-value is cached per h. The generator's state is part of the JSON
state (``random.getstate()``), so a restored KSWIN draws what the original would have.

>>> import random
>>> rng = random.Random(12345)
>>> kswin = KSWIN(alpha=0.0001, seed=42)
>>> stream = rng.choices([0, 1], k=1000) + rng.choices(range(4, 8), k=1000)
>>> kswin.update_many(stream).drifts
[1016]
"""

from __future__ import annotations

import collections
import itertools
import random
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from mlops.drift.detectors.base import Detections, DriftDetector
from mlops.drift.ks import MAX_AUTO_N, ks_pvalue, prob_outside_square


@lru_cache(maxsize=4096)
def _exact_equal_sizes(n: int, h: int) -> float:
    """Scipy's exact two-sided p-value for D = h/n with two samples of n values."""
    if h == 0:
        return 1.0
    p = prob_outside_square(n, h)
    return min(max(p, 0.0), 1.0)


def ks_counts(a: list[float], b: list[float]) -> int:
    """max over z of |len(b) * #a<=z - len(a) * #b<=z| for two sorted lists (exact)."""
    n, m = len(a), len(b)
    i = j = best = 0
    while i < n and j < m:
        v = a[i] if a[i] <= b[j] else b[j]
        while i < n and a[i] <= v:
            i += 1
        while j < m and b[j] <= v:
            j += 1
        diff = abs(i * m - j * n)
        if diff > best:
            best = diff
    return best


class KSWIN(DriftDetector):
    """KS windowing drift detector; river's defaults (give ``seed`` to reproduce)."""

    kind = "KSWIN"

    def __init__(self, alpha: float = 0.005, window_size: int = 100, stat_size: int = 30,
                 seed: int | None = None, window: Iterable[float] | None = None) -> None:
        super().__init__()
        if alpha < 0 or alpha > 1:
            raise ValueError("Alpha must be between 0 and 1.")
        if window_size < 0:
            raise ValueError("window_size must be greater than 0.")
        if window_size < stat_size:
            raise ValueError("stat_size must be smaller than window_size.")
        self.alpha = alpha
        self.window_size = window_size
        self.stat_size = stat_size
        self.seed = seed
        self._reset()
        if window:
            self.window = collections.deque(window, maxlen=self.window_size)

    def _reset(self) -> None:
        self._drift_detected = False
        self.p_value = 0.0
        self.n = 0
        self.window: collections.deque[float] = collections.deque(maxlen=self.window_size)
        self._rng = random.Random(self.seed)

    def _test(self, sample: list[float], recent: list[float]) -> tuple[float, float]:
        """(statistic, p-value) of ``ks_2samp(sample, recent, method="auto")``."""
        a, b = sorted(sample), sorted(recent)
        k = ks_counts(a, b)
        n, m = len(a), len(b)
        if n == m and n <= MAX_AUTO_N:
            # exact regime, lcm = n: scipy's h = round(D * n) with D = |i - j| / n, and k = n |i - j|
            h = k // n
            return h * 1.0 / n, _exact_equal_sizes(n, h)
        r = ks_pvalue(k / (n * m), n, m)
        return r.statistic, r.pvalue

    def update(self, x: float) -> "KSWIN":
        if self._drift_detected:
            self._reset()
        self.n_seen += 1
        self.n += 1
        self.window.append(x)
        if len(self.window) >= self.window_size:
            rnd_window = [self.window[r] for r in self._rng.sample(range(self.window_size - self.stat_size),
                                                                   self.stat_size)]
            most_recent = list(itertools.islice(self.window, self.window_size - self.stat_size, self.window_size))
            st, self.p_value = self._test(rnd_window, most_recent)
            if self.p_value <= self.alpha and st > 0.1:
                self._drift_detected = True
                self.window = collections.deque(most_recent, maxlen=self.window_size)
            else:
                self._drift_detected = False
        else:
            self._drift_detected = False
        return self

    def params(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "window_size": self.window_size, "stat_size": self.stat_size, "seed": self.seed}

    def _get_state(self) -> dict[str, Any]:
        version, internal, gauss = self._rng.getstate()
        return {"drift": self._drift_detected, "p_value": self.p_value, "n": self.n, "window": list(self.window),
                "rng": [version, list(internal), gauss]}

    def _set_state(self, s: Mapping[str, Any]) -> None:
        self._drift_detected = bool(s["drift"])
        self.p_value = float(s["p_value"])
        self.n = int(s["n"])
        self.window = collections.deque(s["window"], maxlen=self.window_size)
        version, internal, gauss = s["rng"]
        self._rng.setstate((int(version), tuple(int(v) for v in internal), gauss))

    def update_many(self, values: Iterable[float]) -> Detections:
        out = Detections()
        for i, x in enumerate(values):
            if self.update(x)._drift_detected:
                out.drifts.append(i)
        return out
