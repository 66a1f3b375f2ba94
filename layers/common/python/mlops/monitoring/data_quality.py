"""Data quality at serving: per-request flags against the training baseline, and their
aggregation over a window.

:class:`QualityRanges` is what a warm inference function keeps per model version, built once
from the version's :class:`mlops.drift.baseline.Baseline`: per numeric feature the training
min and max (widened by ``margin`` times the range), per few-valued feature the set of values
seen in training, and per feature the training null rate. :meth:`QualityRanges.check` flags
one request's features in a few microseconds:

* ``null`` - the value is missing (None/NaN) or the feature is absent;
* ``out_of_range`` - a numeric value below the training min or above the max;
* ``unseen`` - a categorical feature (or a numeric one with at most
  :data:`~mlops.drift.chooser.FEW_VALUES` distinct training values, the drift chooser's
  rule) takes a value training never saw.

:func:`aggregate` counts the flags of a window of logged inputs per feature and reports
**null spikes**: a feature whose null rate in the window exceeds its training null rate by
more than ``null_delta`` (absolute) and by more than ``null_factor`` times, with at least
``min_rows`` rows in the window. Pure Python (the serving path imports it; ``mlops.drift`` is
imported only when ranges are built from a baseline).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any



NULL, OUT_OF_RANGE, UNSEEN = "null", "out_of_range", "unseen"
KeyOf = Callable[[Any], str]


@dataclass(frozen=True)
class RequestQuality:
    """One request's flags: feature names per problem, and the offending values."""

    nulls: tuple[str, ...] = ()
    out_of_range: tuple[tuple[str, float, float, float], ...] = ()  # (feature, value, min, max)
    unseen: tuple[tuple[str, Any], ...] = ()                        # (feature, value)

    def __bool__(self) -> bool:
        return bool(self.nulls or self.out_of_range or self.unseen)

    def to_log(self) -> dict[str, list[str]]:
        """The prediction log's ``quality`` attribute: feature names per problem (non-empty)."""
        out = {NULL: list(self.nulls), OUT_OF_RANGE: [f for f, *_ in self.out_of_range],
               UNSEEN: [f for f, _ in self.unseen]}
        return {k: v for k, v in out.items() if v}

    def warning(self) -> dict[str, Any]:
        """The warning returned to the client (``code`` ``data_quality``)."""
        parts = []
        if self.out_of_range:
            parts.append("out of the training range: " + ", ".join(f for f, *_ in self.out_of_range))
        if self.unseen:
            parts.append("values not seen in training: " + ", ".join(f for f, _ in self.unseen))
        if self.nulls:
            parts.append("missing: " + ", ".join(self.nulls))
        return {
            "code": "data_quality",
            "out_of_range": [{"feature": f, "value": v, "min": lo, "max": hi} for f, v, lo, hi in self.out_of_range],
            "unseen": [{"feature": f, "value": v} for f, v in self.unseen],
            "nulls": list(self.nulls),
            "message": "inputs unlike the training data (" + "; ".join(parts) + "): the prediction may be unreliable",
        }


CLEAN = RequestQuality()  # the common answer, shared


def _number(x: Any) -> float:
    if x is None or isinstance(x, bool):
        return math.nan
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


@dataclass(frozen=True)
class QualityRanges:
    """One version's ranges, categories and null rates for :meth:`check`; build with :meth:`from_baseline`."""

    numeric: tuple[tuple[str, float, float, float, float], ...]  # (feature, low, high, train min, train max)
    categories: Mapping[str, frozenset[str]]
    null_rates: Mapping[str, float]
    features: tuple[str, ...] = field(default=())
    key_of: KeyOf = str

    @classmethod
    def from_baseline(cls, baseline: Any, *, features: Sequence[str] | None = None,
                      margin: float = 0.0) -> "QualityRanges":
        """From a :class:`mlops.drift.baseline.Baseline`, restricted to ``features`` (the
        model's signature) when given; ``margin`` widens each range by that share of it."""
        # mlops.drift is imported here, not at module level: serving pays for it only once a
        # version has a baseline.
        from mlops.drift.baseline import CATEGORICAL, value_key  # noqa: PLC0415
        from mlops.drift.chooser import FEW_VALUES  # noqa: PLC0415

        if margin < 0:
            raise ValueError("margin must be >= 0")
        spec = baseline.features
        names = [n for n in (features if features is not None else spec) if n in spec]
        numeric = []
        categories: dict[str, frozenset[str]] = {}
        null_rates: dict[str, float] = {}
        for name in names:
            f = spec[name]
            total = f.count + f.nulls
            null_rates[name] = f.nulls / total if total else 0.0
            if f.kind == CATEGORICAL or (f.frequencies is not None and f.n_unique <= FEW_VALUES):
                categories[name] = frozenset(f.frequencies or ())
            elif f.count:
                pad = margin * (f.max - f.min)
                numeric.append((name, f.min - pad, f.max + pad, f.min, f.max))
        return cls(tuple(numeric), categories, null_rates, tuple(names), value_key)

    def check(self, inputs: Mapping[str, Any]) -> RequestQuality:
        """Flag one request's feature values (see the module docstring)."""
        # A plain loop: for the tens of features a request carries it is several times faster
        # than building a numpy array per request.
        nulls = [n for n in self.features if (v := inputs.get(n)) is None or v != v]
        try:  # serving's features are numbers or None; NaN compares False
            out = [(name, float(x), lo, hi) for name, low, high, lo, hi in self.numeric
                   if (x := inputs.get(name)) is not None and (x < low or x > high)]
        except TypeError:  # something else (text...): converted, or skipped as not a number
            out = [(name, x, lo, hi) for name, low, high, lo, hi in self.numeric
                   if (x := _number(inputs.get(name))) < low or x > high]
        unseen = []
        for name, seen in self.categories.items():
            v = inputs.get(name)
            if v is not None and not (isinstance(v, float) and v != v) and self.key_of(v) not in seen:
                unseen.append((name, v))
        if not (nulls or out or unseen):
            return CLEAN
        return RequestQuality(tuple(nulls), tuple(out), tuple(unseen))


@dataclass(frozen=True)
class FeatureQuality:
    """One feature's flags over a window."""

    feature: str
    rows: int
    nulls: int
    null_rate: float
    baseline_null_rate: float
    out_of_range: int
    unseen: int
    null_spike: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class WindowQuality:
    """A window's data quality: per feature, and the rows with any flag."""

    rows: int
    flagged_rows: int
    features: list[FeatureQuality]

    @property
    def null_spikes(self) -> list[FeatureQuality]:
        return [f for f in self.features if f.null_spike]

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "flagged_rows": self.flagged_rows,
                "flagged_rate": self.flagged_rows / self.rows if self.rows else None,
                "features": [f.to_dict() for f in self.features],
                "null_spikes": [f.feature for f in self.null_spikes]}


def aggregate(ranges: QualityRanges, inputs: Iterable[Mapping[str, Any]], *, null_delta: float = 0.05,
              null_factor: float = 2.0, min_rows: int = 20) -> WindowQuality:
    """Check every logged input of a window and count the flags per feature."""
    nulls = dict.fromkeys(ranges.features, 0)
    oor = dict.fromkeys(ranges.features, 0)
    unseen = dict.fromkeys(ranges.features, 0)
    rows = flagged = 0
    for row in inputs:
        rows += 1
        q = ranges.check(row)
        flagged += bool(q)
        for n in q.nulls:
            nulls[n] += 1
        for n, *_ in q.out_of_range:
            oor[n] += 1
        for n, _ in q.unseen:
            unseen[n] += 1
    features = []
    for name in ranges.features:
        rate = nulls[name] / rows if rows else 0.0
        base = ranges.null_rates[name]
        spike = rows >= min_rows and rate - base > null_delta and rate > null_factor * base
        features.append(FeatureQuality(name, rows, nulls[name], rate, base, oor[name], unseen[name], spike))
    return WindowQuality(rows, flagged, features)
