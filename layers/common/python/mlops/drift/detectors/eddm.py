"""EDDM, the Early Drift Detection Method (Baena-Garcia et al. 2006; river's ``drift.binary.EDDM``).

Input: a 0/1 error stream. EDDM tracks the *distance between consecutive errors*: its
running mean p' and standard deviation s' (Welford, ddof=1), and the maximum of
p' + 2 s'. Once ``warm_start`` values and ``warm_start`` errors were seen, at each error

* ``(p' + 2 s') / max < beta`` (0.9) -> drift,
* ``< alpha`` (0.95) -> warning (cleared when the ratio recovers).

Why: errors getting closer together signal a gradual decline earlier than the error rate
itself does (DDM). Same arithmetic as river (including ``** 0.5`` for the square root and
flags that persist across correct predictions).

>>> import random
>>> rng = random.Random(42)
>>> eddm = EDDM(alpha=0.8, beta=0.75)
>>> stream = rng.choices([0, 1], k=1000) + rng.choices([0, 1], k=1000, weights=[0.3, 0.7])
>>> eddm.update_many(stream).drifts
[1278]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mlops.drift.detectors.base import Detections, DriftAndWarningDetector


class EDDM(DriftAndWarningDetector):
    """Early Drift Detection Method on a 0/1 error stream; river's defaults."""

    kind = "EDDM"

    def __init__(self, warm_start: int = 30, alpha: float = 0.95, beta: float = 0.9) -> None:
        super().__init__()
        if alpha < beta:
            raise ValueError("'alpha' must be greater or equal to 'beta'.")
        self.warm_start = warm_start
        self.alpha = alpha
        self.beta = beta
        self._reset()

    def _reset(self) -> None:
        self._drift_detected = False
        self._warning_detected = False
        self._var_n = 0.0  # Welford over the distances between errors
        self._var_mean = 0.0
        self._var_s = 0.0
        self._n = 0
        self._last_error = 0
        self._n_errors = 0
        self._p2s_max = -1.0

    def update(self, x: float) -> "EDDM":
        if self._drift_detected:
            self._reset()
        self.n_seen += 1
        self._n += 1
        if x == 1:
            self._n_errors += 1
            dist = self._n - self._last_error
            old = self._var_mean
            self._var_n += 1.0
            self._var_mean += (1.0 / self._var_n) * (dist - self._var_mean)
            self._var_s += 1.0 * (dist - old) * (dist - self._var_mean)
            if self._n > self.warm_start:
                var = self._var_s / (self._var_n - 1) if self._var_n > 1 else 0.0
                p2s = self._var_mean + 2 * var**0.5
                if p2s > self._p2s_max:
                    self._p2s_max = p2s
                elif self._n_errors > self.warm_start:
                    level = p2s / self._p2s_max
                    if level < self.beta:
                        self._drift_detected = True
                    elif level < self.alpha:
                        self._warning_detected = True
                    else:
                        self._warning_detected = False
            self._last_error = self._n
        return self

    def update_many(self, values: Iterable[float]) -> Detections:
        """The same updates in a loop over locals."""
        out = Detections()
        warm, alpha, beta = self.warm_start, self.alpha, self.beta
        drift, warning = self._drift_detected, self._warning_detected
        vn, vm, vs = self._var_n, self._var_mean, self._var_s
        n, last, n_err, p2s_max = self._n, self._last_error, self._n_errors, self._p2s_max
        seen = 0
        for i, x in enumerate(values):
            seen += 1
            if drift:
                drift = warning = False
                vn, vm, vs, n, last, n_err, p2s_max = 0.0, 0.0, 0.0, 0, 0, 0, -1.0
            n += 1
            if x == 1:
                n_err += 1
                dist = n - last
                old = vm
                vn += 1.0
                vm += (1.0 / vn) * (dist - vm)
                vs += 1.0 * (dist - old) * (dist - vm)
                if n > warm:
                    var = vs / (vn - 1) if vn > 1 else 0.0
                    p2s = vm + 2 * var**0.5
                    if p2s > p2s_max:
                        p2s_max = p2s
                    elif n_err > warm:
                        level = p2s / p2s_max
                        if level < beta:
                            drift = True
                        elif level < alpha:
                            warning = True
                        else:
                            warning = False
                last = n
            if drift:
                out.drifts.append(i)
            if warning:
                out.warnings.append(i)
        self.n_seen += seen
        self._drift_detected, self._warning_detected = drift, warning
        self._var_n, self._var_mean, self._var_s = vn, vm, vs
        self._n, self._last_error, self._n_errors, self._p2s_max = n, last, n_err, p2s_max
        return out

    def params(self) -> dict[str, Any]:
        return {"warm_start": self.warm_start, "alpha": self.alpha, "beta": self.beta}

    def _get_state(self) -> dict[str, Any]:
        return {"drift": self._drift_detected, "warning": self._warning_detected, "var_n": self._var_n,
                "var_mean": self._var_mean, "var_s": self._var_s, "n": self._n, "last_error": self._last_error,
                "n_errors": self._n_errors, "p2s_max": self._p2s_max}

    def _set_state(self, s: Mapping[str, Any]) -> None:
        self._drift_detected, self._warning_detected = bool(s["drift"]), bool(s["warning"])
        self._var_n, self._var_mean, self._var_s = float(s["var_n"]), float(s["var_mean"]), float(s["var_s"])
        self._n, self._last_error, self._n_errors = int(s["n"]), int(s["last_error"]), int(s["n_errors"])
        self._p2s_max = float(s["p2s_max"])
