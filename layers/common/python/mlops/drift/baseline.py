"""The training baseline a model version carries, so drift checks need no training data.

Built once from the training columns (:meth:`Baseline.build`), stored as JSON next to the
model artifact (:meth:`Baseline.to_dict` / :meth:`Baseline.from_dict`), read by the drift
check. Per feature:

* **numeric** (:class:`NumericBaseline`) - count, nulls, mean, population std, min, max,
  number of distinct values; interior bin edges at the reference quantiles
  (:func:`~mlops.drift.psi.quantile_edges`) and the reference count per bin (PSI, KL, JS);
  a sorted *sample* for KS and Wasserstein; and, for features with at most
  ``FREQUENCY_CAP`` distinct values, the frequency of each value (the chooser treats those
  as categorical, as Evidently does).
* **categorical** (:class:`CategoricalBaseline`) - count, nulls and the frequency of each
  category. Categories are stored (and matched) as strings (:func:`value_key`).

**The sample.** A reference of at most ``sample_size`` values (default 2000) is stored
whole, sorted: KS and Wasserstein against it equal scipy's on the training data exactly.
A larger reference is summarised by its *quantile sample*: the order statistics at ranks
``floor((i + 0.5) n / k)``, i = 0..k-1, one per block of n/k values. Its ECDF is within
``1/k`` of the reference ECDF everywhere, so the KS statistic moves by at most 1/k (5e-4
for k = 2000) and Wasserstein by at most the spread inside one block; the KS p-value uses
the true reference count n. Bin counts, moments and frequencies are always exact. The
sample is stored as base64 of little-endian float64 (16 kB per feature at k = 2000), so
590 features weigh about 13 MB of JSON.

NaN (and None in object columns) counts as null; +-inf are values.

>>> import numpy as np
>>> b = Baseline.build({"x": np.arange(100.0), "c": np.array(["a", "b", "a", "a"] * 25)})
>>> b.features["x"].edges[:3], b.features["x"].counts[:3], b.features["c"].frequencies
([9.9, 19.8, 29.7], [10, 10, 10], {'a': 75, 'b': 25})
>>> Baseline.from_dict(b.to_dict()).to_dict() == b.to_dict()
True
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlops.drift.psi import DEFAULT_BINS, quantile_edges

NUMERIC = "numeric"
CATEGORICAL = "categorical"
DEFAULT_SAMPLE_SIZE = 2000
FREQUENCY_CAP = 20  # numeric features with at most this many distinct values keep frequencies
FORMAT = 1


def _encode(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f8").tobytes()).decode("ascii")


def _decode(s: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), dtype="<f8").astype(np.float64)


def _json_float(x: float) -> float | str:
    return x if math.isfinite(x) else repr(x)  # "inf", "-inf", "nan": strict JSON


def _float(x: float | str | None) -> float:
    return math.nan if x is None else float(x)


def value_key(value: Any) -> str:
    """The string a category (or a few-valued numeric value) is stored and matched under.

    ``str(v)``, except that an integral float is written as the integer (1.0 -> "1", as
    the int 1 is: JSON round trips and pandas turn ints into floats) and other floats use
    ``repr`` (exact).

    >>> value_key(1.0), value_key(1), value_key(0.1), value_key("a"), value_key(True)
    ('1', '1', '0.1', 'a', 'True')
    """
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if v.is_integer() and abs(v) < 2**53:
            return str(int(v))
        return repr(v)
    if isinstance(value, (np.integer,)):
        return str(int(value))
    return str(value)


@dataclass
class NumericBaseline:
    """Summary of one numeric feature of the training data (see the module docstring)."""

    count: int
    nulls: int
    mean: float
    std: float
    min: float
    max: float
    n_unique: int
    edges: list[float]
    counts: list[int]
    sample: np.ndarray
    exact_sample: bool
    frequencies: dict[str, int] | None = None
    kind: str = NUMERIC

    @classmethod
    def build(cls, values: np.ndarray, n_bins: int = DEFAULT_BINS,
              sample_size: int = DEFAULT_SAMPLE_SIZE) -> "NumericBaseline":
        x = np.asarray(values, dtype=np.float64)
        nan = np.isnan(x)
        nulls = int(nan.sum())
        x = np.sort(x[~nan])
        n = len(x)
        if n == 0:
            return cls(0, nulls, math.nan, math.nan, math.nan, math.nan, 0, [], [0], np.empty(0), True, None)
        edges = quantile_edges(x, n_bins, is_sorted=True)
        below = np.searchsorted(x, edges, side="left")
        counts = np.diff(np.concatenate([[0], below, [n]])).astype(int).tolist()
        distinct = np.concatenate([[True], x[1:] != x[:-1]])
        n_unique = int(distinct.sum())
        frequencies = None
        if n_unique <= FREQUENCY_CAP:
            starts = np.flatnonzero(distinct)
            sizes = np.diff(np.concatenate([starts, [n]]))
            frequencies = {value_key(x[s]): int(c) for s, c in zip(starts, sizes)}
        if n <= sample_size:
            sample, exact = x, True
        else:
            ranks = ((np.arange(sample_size) + 0.5) * n / sample_size).astype(np.int64)
            sample, exact = x[np.minimum(ranks, n - 1)], False
        with np.errstate(invalid="ignore", over="ignore"):
            mean = float(np.mean(x))
            std = float(np.std(x))
        return cls(n, nulls, mean, std, float(x[0]), float(x[-1]), n_unique, edges.tolist(), counts,
                   np.ascontiguousarray(sample), exact, frequencies)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": NUMERIC, "count": self.count, "nulls": self.nulls,
                "mean": _json_float(self.mean), "std": _json_float(self.std),
                "min": _json_float(self.min), "max": _json_float(self.max), "n_unique": self.n_unique,
                "edges": [_json_float(e) for e in self.edges], "counts": list(self.counts),
                "sample": _encode(self.sample), "sample_size": int(len(self.sample)),
                "exact_sample": self.exact_sample, "frequencies": self.frequencies}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "NumericBaseline":
        sample = _decode(d["sample"])
        if len(sample) != d["sample_size"]:
            raise ValueError("baseline sample is truncated")
        return cls(int(d["count"]), int(d["nulls"]), _float(d["mean"]), _float(d["std"]), _float(d["min"]),
                   _float(d["max"]), int(d["n_unique"]), [_float(e) for e in d["edges"]],
                   [int(c) for c in d["counts"]], sample, bool(d["exact_sample"]),
                   None if d.get("frequencies") is None else {str(k): int(v) for k, v in d["frequencies"].items()})


@dataclass
class CategoricalBaseline:
    """Frequencies of one categorical feature of the training data (keys: ``value_key``)."""

    count: int
    nulls: int
    frequencies: dict[str, int]
    kind: str = CATEGORICAL

    @property
    def n_unique(self) -> int:
        return len(self.frequencies)

    @classmethod
    def build(cls, values: Any) -> "CategoricalBaseline":
        keys, nulls = categorical_keys(values)
        uniq, counts = np.unique(keys, return_counts=True) if len(keys) else (np.array([]), np.array([]))
        order = np.argsort(-counts, kind="stable")  # most frequent first
        return cls(len(keys), nulls, {str(uniq[i]): int(counts[i]) for i in order})

    def to_dict(self) -> dict[str, Any]:
        return {"kind": CATEGORICAL, "count": self.count, "nulls": self.nulls, "frequencies": dict(self.frequencies)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "CategoricalBaseline":
        return cls(int(d["count"]), int(d["nulls"]), {str(k): int(v) for k, v in d["frequencies"].items()})


def categorical_keys(values: Any) -> tuple[np.ndarray, int]:
    """(string keys of the non-null values, number of nulls); None and float NaN are null."""
    arr = np.asarray(values)
    if arr.dtype.kind in "fc":
        nan = np.isnan(arr)
        return np.array([value_key(v) for v in arr[~nan].tolist()], dtype=object).astype(str), int(nan.sum())
    if arr.dtype.kind in "biuUS":
        return arr.astype(str) if arr.dtype.kind != "b" else np.where(arr, "True", "False"), 0
    items = arr.tolist()
    keep = [v for v in items if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return np.array([value_key(v) for v in keep], dtype=str), len(items) - len(keep)


FeatureBaseline = NumericBaseline | CategoricalBaseline


def infer_kind(values: Any) -> str:
    """numeric for int/float columns, categorical for bool, string and object columns."""
    kind = np.asarray(values).dtype.kind
    return NUMERIC if kind in "iuf" else CATEGORICAL


@dataclass
class Baseline:
    """Per-feature summaries of the training data (JSON: :meth:`to_dict`)."""

    features: dict[str, FeatureBaseline]
    n_rows: int
    n_bins: int = DEFAULT_BINS
    sample_size: int = DEFAULT_SAMPLE_SIZE
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, columns: Mapping[str, Any], kinds: Mapping[str, str] | None = None,
              n_bins: int = DEFAULT_BINS, sample_size: int = DEFAULT_SAMPLE_SIZE,
              metadata: Mapping[str, Any] | None = None) -> "Baseline":
        """Summarise training columns; ``kinds`` overrides the inferred kind per feature."""
        if sample_size < 1:
            raise ValueError("sample_size must be >= 1")
        kinds = dict(kinds or {})
        features: dict[str, FeatureBaseline] = {}
        n_rows = 0
        for name, values in columns.items():
            kind = kinds.get(name) or infer_kind(values)
            n_rows = max(n_rows, len(values))
            if kind == NUMERIC:
                features[name] = NumericBaseline.build(np.asarray(values, dtype=np.float64), n_bins, sample_size)
            elif kind == CATEGORICAL:
                features[name] = CategoricalBaseline.build(values)
            else:
                raise ValueError(f"feature {name!r}: unknown kind {kind!r}")
        return cls(features, n_rows, n_bins, sample_size, dict(metadata or {}))

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "n_rows": self.n_rows, "n_bins": self.n_bins, "sample_size": self.sample_size,
                "metadata": dict(self.metadata),
                "features": {name: f.to_dict() for name, f in self.features.items()}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Baseline":
        if d.get("format") != FORMAT:
            raise ValueError(f"unsupported baseline format {d.get('format')!r}")
        features: dict[str, FeatureBaseline] = {}
        for name, f in d["features"].items():
            features[name] = NumericBaseline.from_dict(f) if f["kind"] == NUMERIC else CategoricalBaseline.from_dict(f)
        return cls(features, int(d["n_rows"]), int(d["n_bins"]), int(d["sample_size"]), dict(d.get("metadata", {})))
