"""Sufficient statistics of a metric per variant: what the analysis needs, and all it needs.

The experiment store keeps running totals per (experiment, variant, metric) with atomic
DynamoDB ``ADD`` updates: ``n``, ``sum`` and ``sum_sq`` (for a 0/1 metric ``sum`` is the count
of successes). These classes turn such totals - or raw values, or ``mean``/``var`` - into the
numbers the tests use. ``from_sums`` computes the variance as ``(sum_sq - sum^2/n)/(n-1)``,
which loses digits when the mean is large compared with the spread (the tests use both
paths); when raw values are at hand, ``from_values`` is exact to rounding (numpy's two-pass
``var``).

>>> MeanStats.from_sums(n=4, total=10.0, total_sq=30.0)
MeanStats(n=4, mean=2.5, var=1.6666666666666667)
>>> ProportionStats(n=200, successes=30).rate
0.15
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from mlops.experiments.errors import ExperimentError, check_number


@dataclass(frozen=True)
class MeanStats:
    """n, mean and sample variance (ddof=1) of a continuous metric in one variant."""

    n: int
    mean: float
    var: float

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, (int, np.integer)) or self.n < 0:
            raise ExperimentError("n", f"must be a whole number >= 0, got {self.n!r}")
        check_number("mean", self.mean)
        if check_number("var", self.var) < 0:
            raise ExperimentError("var", f"must be >= 0, got {self.var!r}")

    @classmethod
    def from_values(cls, values: ArrayLike) -> "MeanStats":
        """From raw per-entity values (NaN refused: missing values are the caller's decision)."""
        x = np.asarray(values, dtype=float)
        if x.ndim != 1:
            raise ExperimentError("values", f"must be one-dimensional, got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ExperimentError("values", "contain NaN or infinite values")
        n = int(x.size)
        return cls(n=n, mean=float(x.mean()) if n else 0.0, var=float(x.var(ddof=1)) if n > 1 else 0.0)

    @classmethod
    def from_sums(cls, n: int, total: float, total_sq: float) -> "MeanStats":
        """From running totals n, sum(x), sum(x^2) (negative rounding noise in var clipped to 0)."""
        if n == 0:
            return cls(n=0, mean=0.0, var=0.0)
        mean = total / n
        var = max((total_sq - total * total / n) / (n - 1), 0.0) if n > 1 else 0.0
        return cls(n=int(n), mean=float(mean), var=float(var))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], field: str = "stats") -> "MeanStats":
        """From ``{"n", "mean", "var"}`` or ``{"n", "sum", "sum_sq"}``."""
        try:
            if "mean" in data:
                return cls(n=int(data["n"]), mean=float(data["mean"]), var=float(data.get("var", 0.0)))
            return cls.from_sums(int(data["n"]), float(data["sum"]), float(data["sum_sq"]))
        except KeyError as missing:
            raise ExperimentError(f"{field}.{missing.args[0]}", "is required: give n, mean, var or n, sum, sum_sq") from None
        except (TypeError, ValueError) as err:
            if isinstance(err, ExperimentError):
                raise ExperimentError(f"{field}.{err.field}", err.message) from None
            raise ExperimentError(field, f"needs numbers: {err}") from None

    @property
    def std(self) -> float:
        return math.sqrt(self.var)


@dataclass(frozen=True)
class ProportionStats:
    """n and number of successes of a 0/1 metric in one variant."""

    n: int
    successes: int

    def __post_init__(self) -> None:
        for name in ("n", "successes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ExperimentError(name, f"must be a whole number >= 0, got {value!r}")
        if self.successes > self.n:
            raise ExperimentError("successes", f"cannot exceed n ({self.n}), got {self.successes}")

    @classmethod
    def from_values(cls, values: ArrayLike) -> "ProportionStats":
        """From raw 0/1 outcomes."""
        x = np.asarray(values)
        if x.ndim != 1 or not np.all((x == 0) | (x == 1)):
            raise ExperimentError("values", "a proportion metric needs a 1-d array of 0/1 outcomes")
        return cls(n=int(x.size), successes=int(x.sum()))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], field: str = "stats") -> "ProportionStats":
        """From ``{"n", "successes"}`` or ``{"n", "sum"}``."""
        if "successes" not in data and "sum" not in data:
            raise ExperimentError(f"{field}.successes", "is required: give n and successes (or sum)")
        try:
            successes = data["successes"] if "successes" in data else data["sum"]
            return cls(n=_whole(data["n"], f"{field}.n"), successes=_whole(successes, f"{field}.successes"))
        except KeyError as missing:
            raise ExperimentError(f"{field}.{missing.args[0]}", "is required: give n and successes (or sum)") from None
        except ExperimentError as err:
            if err.field.startswith(field):
                raise
            raise ExperimentError(f"{field}.{err.field}", err.message) from None

    @property
    def rate(self) -> float:
        return self.successes / self.n if self.n else 0.0

    def as_mean(self) -> MeanStats:
        """The same data as a mean metric (0/1 values): mean p, variance n p (1 - p) / (n - 1)."""
        p = self.rate
        var = self.n * p * (1 - p) / (self.n - 1) if self.n > 1 else 0.0
        return MeanStats(n=self.n, mean=p, var=var)


def _whole(value: Any, field: str) -> int:
    number = check_number(field, value)
    if number != int(number):
        raise ExperimentError(field, f"must be a whole number, got {value!r}")
    return int(number)
