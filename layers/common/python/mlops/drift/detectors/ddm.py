"""DDM, the Drift Detection Method (Gama et al. 2004; river's ``drift.binary.DDM``).

Input: a stream of errors (1 = the model was wrong, 0 = right). With p_i the running error
rate and s_i = sqrt(p_i (1 - p_i) / i) its standard deviation, DDM remembers the point
where p + s was lowest (p_min, s_min) and, after ``warm_start`` values, signals

* a warning when ``p_i + s_i > p_min + warning_threshold * s_min`` (2 ~ 95%),
* a drift when ``p_i + s_i > p_min + drift_threshold * s_min`` (3 ~ 99%).

Why: under a stable concept the error rate of a learner does not grow; a significant rise
above its best level means the concept changed. Same arithmetic as river.

>>> import random
>>> rng = random.Random(42)
>>> ddm = DDM()
>>> stream = rng.choices([0, 1], k=1000) + rng.choices([0, 1], k=1000, weights=[0.3, 0.7])
>>> ddm.update_many(stream).drifts
[1334]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from mlops.drift.detectors.base import Detections, DriftAndWarningDetector, dec, enc


class DDM(DriftAndWarningDetector):
    """Drift Detection Method on a 0/1 error stream; river's defaults."""

    kind = "DDM"

    def __init__(self, warm_start: int = 30, warning_threshold: float = 2.0, drift_threshold: float = 3.0) -> None:
        super().__init__()
        self.warm_start = warm_start
        self.warning_threshold = warning_threshold
        self.drift_threshold = drift_threshold
        self._reset()

    def _reset(self) -> None:
        self._drift_detected = False
        self._warning_detected = False
        self._n = 0.0
        self._p = 0.0
        self._p_min: float | None = None
        self._s_min: float | None = None
        self._ps_min = float("inf")

    def update(self, x: float) -> "DDM":
        if self._drift_detected:
            self._reset()
        self.n_seen += 1
        self._n += 1.0
        self._p += (1.0 / self._n) * (x - self._p)
        p_i, n = self._p, self._n
        s_i = math.sqrt(p_i * (1 - p_i) / n)
        if n > self.warm_start:
            if p_i + s_i <= self._ps_min:
                self._p_min = p_i
                self._s_min = s_i
                self._ps_min = self._p_min + self._s_min
            assert self._p_min is not None and self._s_min is not None
            self._warning_detected = p_i + s_i > self._p_min + self.warning_threshold * self._s_min
            if p_i + s_i > self._p_min + self.drift_threshold * self._s_min:
                self._drift_detected = True
                self._warning_detected = False
        return self

    def update_many(self, values: Iterable[float]) -> Detections:
        """The same updates in a loop over locals."""
        out = Detections()
        warm, wt, dt = self.warm_start, self.warning_threshold, self.drift_threshold
        sqrt = math.sqrt
        drift, warning = self._drift_detected, self._warning_detected
        n, p, p_min, s_min, ps_min = self._n, self._p, self._p_min, self._s_min, self._ps_min
        seen = 0
        for i, x in enumerate(values):
            seen += 1
            if drift:
                drift = warning = False
                n, p, p_min, s_min, ps_min = 0.0, 0.0, None, None, float("inf")
            n += 1.0
            p += (1.0 / n) * (x - p)
            s = sqrt(p * (1 - p) / n)
            if n > warm:
                ps = p + s
                if ps <= ps_min:
                    p_min, s_min = p, s
                    ps_min = p_min + s_min
                warning = ps > p_min + wt * s_min
                if ps > p_min + dt * s_min:
                    drift, warning = True, False
                    out.drifts.append(i)
                elif warning:
                    out.warnings.append(i)
            elif warning:
                out.warnings.append(i)
        self.n_seen += seen
        self._drift_detected, self._warning_detected = drift, warning
        self._n, self._p, self._p_min, self._s_min, self._ps_min = n, p, p_min, s_min, ps_min
        return out

    def params(self) -> dict[str, Any]:
        return {"warm_start": self.warm_start, "warning_threshold": self.warning_threshold,
                "drift_threshold": self.drift_threshold}

    def _get_state(self) -> dict[str, Any]:
        return {"drift": self._drift_detected, "warning": self._warning_detected, "n": self._n, "p": self._p,
                "p_min": self._p_min, "s_min": self._s_min, "ps_min": enc(self._ps_min)}

    def _set_state(self, s: Mapping[str, Any]) -> None:
        self._drift_detected, self._warning_detected = bool(s["drift"]), bool(s["warning"])
        self._n, self._p = float(s["n"]), float(s["p"])
        self._p_min = None if s["p_min"] is None else float(s["p_min"])
        self._s_min = None if s["s_min"] is None else float(s["s_min"])
        self._ps_min = dec(s["ps_min"])
