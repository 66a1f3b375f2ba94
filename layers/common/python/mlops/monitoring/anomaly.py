"""k-sigma anomaly alerts on moving averages of a metric series (hourly p95 latency, error rate...).

Each point is compared with the moving mean and standard deviation of the points *before*
it (so a spike cannot hide itself): ``z = (x_t - mean_{t-1}) / std_{t-1}``, and the point is
an anomaly when ``|z| > k`` (or ``z > k`` / ``z < -k`` for ``direction`` up / down), once at
least ``warmup`` points have been seen. Two moving statistics:

* ``ewma`` - exponentially weighted mean and standard deviation with smoothing ``alpha``,
  computed exactly as pandas' ``Series.ewm(alpha=alpha, adjust=adjust).mean()`` /
  ``.std()`` (bias-corrected, the default ``bias=False``), in one streaming pass whose state
  is a handful of floats (:class:`EWMState`, JSON-serialisable);
* ``rolling`` - mean and sample standard deviation (``ddof=1``) of the last ``window``
  points: pandas' ``rolling(window, min_periods=2).mean()`` / ``.std()``.

Missing points (None/NaN: an hour without labels has no accuracy) are skipped, as pandas
does with ``ignore_na=True``. ``min_std`` floors the standard deviation: a series that was
flat (std 0) and moves is an anomaly with an infinite z, unless ``min_std`` says how much
movement is noise. Pure numpy.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

Direction = Literal["both", "up", "down"]


@dataclass
class EWMState:
    """pandas' ``ewmcov`` recursion for one series (x = y), with ``ignore_na=True``."""

    alpha: float
    adjust: bool = False
    n: int = 0
    mean: float = math.nan
    cov: float = 0.0
    sum_wt: float = 1.0
    sum_wt2: float = 1.0
    old_wt: float = 1.0

    def update(self, x: float) -> None:
        """Take one observation (NaN is skipped)."""
        if x != x:
            return
        self.n += 1
        if self.n == 1:
            self.mean = float(x)
            return
        old_factor = 1.0 - self.alpha
        new_wt = 1.0 if self.adjust else self.alpha
        self.sum_wt *= old_factor
        self.sum_wt2 *= old_factor * old_factor
        self.old_wt *= old_factor
        old_mean = self.mean
        if self.mean != x:  # as pandas: a constant series keeps an exact mean
            self.mean = (self.old_wt * old_mean + new_wt * x) / (self.old_wt + new_wt)
        self.cov = (self.old_wt * (self.cov + (old_mean - self.mean) ** 2)
                    + new_wt * (x - self.mean) ** 2) / (self.old_wt + new_wt)
        self.sum_wt += new_wt
        self.sum_wt2 += new_wt * new_wt
        self.old_wt += new_wt
        if not self.adjust:
            self.sum_wt /= self.old_wt
            self.sum_wt2 /= self.old_wt * self.old_wt
            self.old_wt = 1.0

    @property
    def var(self) -> float:
        """Bias-corrected variance (pandas ``bias=False``); NaN before two observations."""
        if self.n < 2:
            return math.nan
        numerator = self.sum_wt * self.sum_wt
        denominator = numerator - self.sum_wt2
        return (numerator / denominator) * self.cov if denominator > 0 else math.nan

    @property
    def std(self) -> float:
        v = self.var
        return math.sqrt(v) if v == v and v >= 0 else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and v != v else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EWMState":
        return cls(**{k: (math.nan if v is None else v) for k, v in d.items()})


@dataclass
class RollingState:
    """The last ``window`` observations (NaN skipped)."""

    window: int
    values: deque = field(default_factory=deque)

    def update(self, x: float) -> None:
        if x != x:
            return
        self.values.append(float(x))
        while len(self.values) > self.window:
            self.values.popleft()

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else math.nan

    @property
    def std(self) -> float:
        return float(np.std(self.values, ddof=1)) if len(self.values) >= 2 else math.nan


@dataclass(frozen=True)
class AnomalyConfig:
    """How a series is judged (see the module docstring)."""

    k: float = 3.0
    method: Literal["ewma", "rolling"] = "ewma"
    alpha: float = 0.3
    adjust: bool = False
    window: int = 12
    warmup: int = 6
    direction: Direction = "both"
    min_std: float = 0.0

    def __post_init__(self) -> None:
        if not self.k > 0:
            raise ValueError("k must be positive")
        if self.method not in ("ewma", "rolling"):
            raise ValueError("method must be ewma or rolling")
        if not 0 < self.alpha <= 1:
            raise ValueError("alpha must be in (0, 1]")
        if self.window < 2:
            raise ValueError("window must be at least 2")
        if self.warmup < 2:
            raise ValueError("warmup must be at least 2 (a standard deviation needs two points)")
        if self.direction not in ("both", "up", "down"):
            raise ValueError("direction must be both, up or down")
        if self.min_std < 0:
            raise ValueError("min_std must be >= 0")

    def state(self) -> EWMState | RollingState:
        return EWMState(self.alpha, self.adjust) if self.method == "ewma" else RollingState(self.window)


@dataclass(frozen=True)
class Point:
    """One point of a judged series."""

    index: int
    value: float | None
    mean: float | None    # moving mean before this point
    std: float | None     # moving std before this point (floored by min_std)
    z: float | None       # None when not judged, or infinite
    anomaly: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _finite(x: float) -> float | None:
    return x if x == x and math.isfinite(x) else None


def detect(values: Iterable[float | None], config: AnomalyConfig = AnomalyConfig()) -> list[Point]:
    """Judge every point of ``values`` (see the module docstring)."""
    state = config.state()
    out: list[Point] = []
    for i, raw in enumerate(values):
        x = math.nan if raw is None else float(raw)
        mean, std = state.mean, state.std
        if std == std:
            std = max(std, config.min_std)
        z = None
        anomaly = False
        if x == x and state.n >= config.warmup and std == std:
            diff = x - mean
            if std > 0:
                z = diff / std
            elif diff != 0:
                z = math.copysign(math.inf, diff)
            else:
                z = 0.0
            if config.direction == "both":
                anomaly = abs(z) > config.k
            elif config.direction == "up":
                anomaly = z > config.k
            else:
                anomaly = z < -config.k
        out.append(Point(i, None if x != x else x, _finite(mean), _finite(std), None if z is None else _finite(z),
                         anomaly))
        state.update(x)
    return out


def anomalies(values: Sequence[float | None], config: AnomalyConfig = AnomalyConfig()) -> list[Point]:
    """Only the anomalous points of :func:`detect`."""
    return [p for p in detect(values, config) if p.anomaly]
