"""Page-Hinkley: a CUSUM on deviations from the running mean (river's ``drift.PageHinkley``).

With x_t the input and mean_t its running mean, two cumulative sums with forgetting
factor alpha track upward and downward deviations::

    S+_t = alpha S+_{t-1} + (x_t - mean_t) - delta      S-_t = alpha S-_{t-1} + (x_t - mean_t) + delta

Drift when ``S+_t - min S+ > threshold`` (mode "up"), ``max S- - S-_t > threshold``
("down") or either ("both"), once ``min_instances`` values were seen. Why: a mean shift
makes the deviations persistently positive (or negative), which the sums accumulate; the
delta term absorbs small wobbles. No warnings. Same arithmetic, in the same order, as
river, hence the same detections.

>>> import random
>>> rng = random.Random(12345)
>>> ph = PageHinkley()
>>> stream = rng.choices([0, 1], k=1000) + rng.choices(range(4, 8), k=1000)
>>> [i for i, x in enumerate(stream) if ph.update(x).drift_detected]
[1006]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mlops.drift.detectors.base import Detections, DriftDetector, dec, enc

_MODES = ("up", "down", "both")


class PageHinkley(DriftDetector):
    """Page-Hinkley test; river's defaults."""

    kind = "PageHinkley"

    def __init__(self, min_instances: int = 30, delta: float = 0.005, threshold: float = 50.0,
                 alpha: float = 1 - 0.0001, mode: str = "both") -> None:
        super().__init__()
        if mode not in _MODES:
            raise ValueError(f"Invalid 'mode'. Valid values are: {list(_MODES)}")
        self.min_instances = min_instances
        self.delta = delta
        self.threshold = threshold
        self.alpha = alpha
        self.mode = mode
        self._reset()

    def _reset(self) -> None:
        self._drift_detected = False
        self._n = 0.0
        self._mean = 0.0
        self._sum_increase = 0.0
        self._sum_decrease = 0.0
        self._min_increase = float("inf")
        self._max_decrease = -1.0

    def update(self, x: float) -> "PageHinkley":
        if self._drift_detected:
            self._reset()
        self.n_seen += 1
        self._n += 1.0
        self._mean += (1.0 / self._n) * (x - self._mean)
        dev = x - self._mean
        self._sum_increase = self.alpha * self._sum_increase + dev - self.delta
        self._sum_decrease = self.alpha * self._sum_decrease + dev + self.delta
        if self._sum_increase < self._min_increase:
            self._min_increase = self._sum_increase
        if self._sum_decrease > self._max_decrease:
            self._max_decrease = self._sum_decrease
        if self._n >= self.min_instances:
            up = self._sum_increase - self._min_increase > self.threshold
            down = self._max_decrease - self._sum_decrease > self.threshold
            self._drift_detected = up if self.mode == "up" else down if self.mode == "down" else (up or down)
        return self

    def update_many(self, values: Iterable[float]) -> Detections:
        """The same updates in a loop over locals (several times faster than ``update``)."""
        out = Detections()
        alpha, delta, threshold, min_n = self.alpha, self.delta, self.threshold, self.min_instances
        up_on, down_on = self.mode in ("up", "both"), self.mode in ("down", "both")
        drift = self._drift_detected
        n, mean, s_inc, s_dec = self._n, self._mean, self._sum_increase, self._sum_decrease
        min_inc, max_dec = self._min_increase, self._max_decrease
        seen = 0
        for i, x in enumerate(values):
            seen += 1
            if drift:
                drift = False
                n, mean, s_inc, s_dec, min_inc, max_dec = 0.0, 0.0, 0.0, 0.0, float("inf"), -1.0
            n += 1.0
            mean += (1.0 / n) * (x - mean)
            dev = x - mean
            s_inc = alpha * s_inc + dev - delta
            s_dec = alpha * s_dec + dev + delta
            if s_inc < min_inc:
                min_inc = s_inc
            if s_dec > max_dec:
                max_dec = s_dec
            if n >= min_n:
                drift = (up_on and s_inc - min_inc > threshold) or (down_on and max_dec - s_dec > threshold)
                if drift:
                    out.drifts.append(i)
        self.n_seen += seen
        self._drift_detected = drift
        self._n, self._mean, self._sum_increase, self._sum_decrease = n, mean, s_inc, s_dec
        self._min_increase, self._max_decrease = min_inc, max_dec
        return out

    def params(self) -> dict[str, Any]:
        return {"min_instances": self.min_instances, "delta": self.delta, "threshold": self.threshold,
                "alpha": self.alpha, "mode": self.mode}

    def _get_state(self) -> dict[str, Any]:
        return {"drift": self._drift_detected, "n": self._n, "mean": self._mean,
                "sum_increase": self._sum_increase, "sum_decrease": self._sum_decrease,
                "min_increase": enc(self._min_increase), "max_decrease": enc(self._max_decrease)}

    def _set_state(self, s: Mapping[str, Any]) -> None:
        self._drift_detected = bool(s["drift"])
        self._n, self._mean = float(s["n"]), float(s["mean"])
        self._sum_increase, self._sum_decrease = float(s["sum_increase"]), float(s["sum_decrease"])
        self._min_increase, self._max_decrease = dec(s["min_increase"]), dec(s["max_decrease"])
