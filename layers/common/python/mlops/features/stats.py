"""Feature statistics per view and day, computed on ingestion; freshness of a view.

For every feature of a view and every UTC day of event time, :func:`daily_stats` records
the count of present values, the nulls, min, max, mean, standard deviation and (for float
and int features) a :class:`~mlops.features.sketch.QuantileSketch`. Statistics of one day
arriving in many batches, or of many days forming a drift baseline, combine with
:meth:`ViewStats.merge` to the statistics of all their rows: counts, min and max exactly,
mean and variance to rounding (Chan's parallel update), quantiles within the sketch's
bound. Everything serialises to JSON (:meth:`ViewStats.to_dict`) for DynamoDB or S3.

NaN counts as null (a float column's missing value); bools count True as 1 in their mean;
strings have counts and nulls only.

>>> import numpy as np
>>> from datetime import timedelta
>>> from mlops.features.definitions import Entity, FeatureView, Field
>>> v = FeatureView("v", [Entity("d", "d")], [Field("x", "float")], timedelta(days=1), "s")
>>> day = 86_400_000_000
>>> s = daily_stats(v, {"d": np.array(["a", "b", "c"]), "event_timestamp": np.array([0, 1, day]),
...                     "x": np.array([1.0, np.nan, 3.0])})
>>> sorted(s), s["1970-01-01"].features["x"].count, s["1970-01-01"].features["x"].nulls
(['1970-01-01', '1970-01-02'], 1, 1)
>>> merge_stats(s.values()).features["x"].mean
2.0
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import reduce
from typing import Any

import numpy as np

from mlops.features.definitions import EVENT_TIMESTAMP, FeatureView
from mlops.features.sketch import QuantileSketch
from mlops.features.timestamps import as_micros, to_datetime

_DAY_US = 86_400_000_000
_SKETCHED = ("float", "int")


@dataclass
class FeatureStats:
    """Summary of one feature's values: counts, range, moments and (numbers) a sketch."""

    dtype: str
    count: int = 0
    nulls: int = 0
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    m2: float = 0.0  # sum of squared deviations from the mean
    sketch: QuantileSketch | None = None

    @property
    def std(self) -> float | None:
        """Population standard deviation (ddof=0), None without values."""
        return math.sqrt(self.m2 / self.count) if self.count else None

    @property
    def null_fraction(self) -> float:
        """Nulls over all rows (0 for no rows)."""
        total = self.count + self.nulls
        return self.nulls / total if total else 0.0

    @classmethod
    def of(cls, values: np.ndarray, dtype: str, k: int = 200) -> "FeatureStats":
        """Statistics of one column (float: NaN is null; others: None is null)."""
        arr = np.asarray(values)
        if dtype in ("float", "int", "bool", "timestamp"):
            if arr.dtype == object:
                present = np.fromiter((v is not None for v in arr), dtype=bool, count=arr.size)
                nums = np.asarray(arr[present].tolist(), dtype=np.float64)
            else:
                nums = arr.astype(np.float64)
                present = ~np.isnan(nums)
                nums = nums[present]
            stats = cls(dtype, count=int(nums.size), nulls=int(arr.size - nums.size))
            if nums.size:
                stats.min, stats.max = float(nums.min()), float(nums.max())
                if dtype != "timestamp":
                    stats.mean = float(nums.mean())
                    stats.m2 = float(np.square(nums - stats.mean).sum())
            if dtype in _SKETCHED:
                stats.sketch = QuantileSketch.from_values(nums, k=k)
            return stats
        nulls = sum(1 for v in arr if v is None)
        return cls(dtype, count=int(arr.size - nulls), nulls=int(nulls))

    def merge(self, other: "FeatureStats") -> "FeatureStats":
        """Statistics of both inputs' values together."""
        if self.dtype != other.dtype:
            raise ValueError(f"cannot merge {self.dtype} statistics with {other.dtype} statistics")
        out = FeatureStats(self.dtype, self.count + other.count, self.nulls + other.nulls)
        present = [s for s in (self, other) if s.count and s.min is not None]  # strings have no range
        if present:
            out.min = min(s.min for s in present)  # type: ignore[type-var]
            out.max = max(s.max for s in present)  # type: ignore[type-var]
        if self.mean is not None and other.mean is not None:
            delta = other.mean - self.mean
            out.mean = self.mean + delta * other.count / out.count
            out.m2 = self.m2 + other.m2 + delta * delta * self.count * other.count / out.count
        elif self.mean is not None or other.mean is not None:
            only = self if self.mean is not None else other
            out.mean, out.m2 = only.mean, only.m2
        if self.sketch is not None and other.sketch is not None:
            out.sketch = self.sketch.merge(other.sketch)
        else:
            out.sketch = self.sketch or other.sketch
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (with the derived std and, when sketched, the deciles for reading)."""
        data: dict[str, Any] = {
            "dtype": self.dtype,
            "count": self.count,
            "nulls": self.nulls,
            "min": self.min,
            "max": self.max,
            "mean": self.mean,
            "m2": self.m2,
            "std": self.std,
        }
        if self.sketch is not None:
            data["deciles"] = self.sketch.quantiles(np.linspace(0, 1, 11)).tolist() if self.count else None
            data["sketch"] = self.sketch.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FeatureStats":
        """Rebuild from :meth:`to_dict` output."""
        sketch = QuantileSketch.from_dict(data["sketch"]) if data.get("sketch") else None
        return cls(data["dtype"], int(data["count"]), int(data["nulls"]), data.get("min"), data.get("max"),
                   data.get("mean"), float(data.get("m2", 0.0)), sketch)


@dataclass
class ViewStats:
    """Statistics of a view's rows over the UTC days ``start``..``end`` (one day on ingestion)."""

    view: str
    start: str  # YYYY-MM-DD
    end: str
    rows: int
    first_event_us: int | None
    last_event_us: int | None
    features: dict[str, FeatureStats] = field(default_factory=dict)

    @property
    def last_event(self) -> datetime | None:
        """The newest event time seen, as an aware UTC datetime."""
        return None if self.last_event_us is None else to_datetime(self.last_event_us)

    def merge(self, other: "ViewStats") -> "ViewStats":
        """Statistics of both inputs' rows (the days span both)."""
        if other.view != self.view:
            raise ValueError(f"cannot merge statistics of {self.view!r} and {other.view!r}")
        firsts = [t for t in (self.first_event_us, other.first_event_us) if t is not None]
        lasts = [t for t in (self.last_event_us, other.last_event_us) if t is not None]
        names = list(self.features) + [n for n in other.features if n not in self.features]
        merged = {}
        for name in names:
            a, b = self.features.get(name), other.features.get(name)
            merged[name] = a.merge(b) if a is not None and b is not None else (a or b)  # type: ignore[assignment]
        return ViewStats(
            self.view,
            min(self.start, other.start),
            max(self.end, other.end),
            self.rows + other.rows,
            min(firsts) if firsts else None,
            max(lasts) if lasts else None,
            merged,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "view": self.view,
            "start": self.start,
            "end": self.end,
            "rows": self.rows,
            "first_event_us": self.first_event_us,
            "last_event_us": self.last_event_us,
            "features": {n: s.to_dict() for n, s in self.features.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ViewStats":
        """Rebuild from :meth:`to_dict` output."""
        return cls(
            data["view"], data["start"], data["end"], int(data["rows"]),
            data.get("first_event_us"), data.get("last_event_us"),
            {n: FeatureStats.from_dict(s) for n, s in data["features"].items()},
        )


def _day_name(day_index: int) -> str:
    return (date(1970, 1, 1) + timedelta(days=int(day_index))).isoformat()


def daily_stats(view: FeatureView, columns: Mapping[str, np.ndarray], *, k: int = 200) -> dict[str, ViewStats]:
    """Statistics of accepted rows (as columns, e.g. ``ValidationResult.columns()``) per UTC day
    of ``event_timestamp`` (int64 epoch microseconds or datetime64). Keys are ``YYYY-MM-DD``."""
    ts = np.asarray(columns[EVENT_TIMESTAMP])
    if ts.dtype.kind == "M":
        ts = ts.astype("datetime64[us]").view(np.int64)
    ts = ts.astype(np.int64, copy=False)
    days = np.floor_divide(ts, _DAY_US)
    out: dict[str, ViewStats] = {}
    for day in np.unique(days):
        mask = days == day
        name = _day_name(int(day))
        feats = {f.name: FeatureStats.of(np.asarray(columns[f.name])[mask], f.dtype, k=k) for f in view.schema}
        day_ts = ts[mask]
        out[name] = ViewStats(view.name, name, name, int(mask.sum()), int(day_ts.min()), int(day_ts.max()), feats)
    return out


def merge_stats(stats: Iterable[ViewStats]) -> ViewStats:
    """Merge several :class:`ViewStats` (batches of a day, or days of a baseline) into one."""
    items = list(stats)
    if not items:
        raise ValueError("nothing to merge")
    return reduce(ViewStats.merge, items)


def freshness(last_updated: datetime | int | None, now: datetime | int) -> timedelta | None:
    """How old the newest data is: ``now - last_updated`` (never negative: a row stamped a
    little ahead of ``now``, within the allowed clock skew, is simply fresh). None when the
    view was never updated. Times are aware datetimes or epoch microseconds."""
    if last_updated is None:
        return None
    return timedelta(microseconds=max(0, as_micros(now) - as_micros(last_updated)))


def is_stale(last_updated: datetime | int | None, now: datetime | int, threshold: timedelta) -> bool:
    """True when the data is older than ``threshold`` (or there is none): the freshness alert."""
    age = freshness(last_updated, now)
    return age is None or age > threshold
