"""A training set as plain columns: input checks, the time-based split and the content hash.

Training takes a point-in-time training set as a dict of numpy columns (feature name -> float
array, NaN = missing), a 0/1 label array and event timestamps. This module turns that into a
checked matrix, splits it by time (the latest fraction is validation, never shuffled across
time) and fingerprints it, so a model version can name exactly the data it was trained on.
It uses numpy only: a function can hash or describe a training set without scikit-learn.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

HASH_FORMAT = "mlops.trainingset/1"


class TrainingDataError(ValueError):
    """The training set is malformed; the message names the column and the problem."""


@dataclass(frozen=True)
class TrainingSet:
    """Checked training data: `x[:, j]` is feature `feature_names[j]`.

    `x` is float64 with NaN for missing values, `labels` int8 in {0, 1}, `timestamps_ms`
    int64 milliseconds since the Unix epoch (UTC). Rows keep the caller's order.
    """

    feature_names: tuple[str, ...]
    x: np.ndarray
    labels: np.ndarray
    timestamps_ms: np.ndarray

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class TimeSplit:
    """Boolean row masks of a time-based split and the first validation timestamp.

    Every training row is strictly older than every validation row: rows that share the
    split timestamp all go to validation, so one instant never straddles the two sides.
    """

    train: np.ndarray
    validation: np.ndarray
    split_time_ms: int


def as_epoch_ms(timestamps: ArrayLike) -> np.ndarray:
    """Timestamps as int64 epoch milliseconds (UTC).

    Accepts numpy datetime64 of any unit, ISO-8601 strings, or numbers meaning epoch seconds.
    NaT, NaN or infinite values are refused, since a row without a time cannot be split.
    """
    arr = np.asarray(timestamps)
    if arr.ndim != 1:
        raise TrainingDataError(f"timestamps must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind in "UO":
        try:
            arr = arr.astype("datetime64[ms]")
        except (ValueError, TypeError) as exc:
            raise TrainingDataError(f"timestamps: cannot parse as datetimes ({exc})") from exc
    if arr.dtype.kind == "M":
        if np.isnat(arr).any():
            raise TrainingDataError(f"timestamps: {int(np.isnat(arr).sum())} value(s) are NaT")
        return arr.astype("datetime64[ms]").astype(np.int64)
    if arr.dtype.kind in "iuf":
        seconds = arr.astype(np.float64)
        if not np.isfinite(seconds).all():
            raise TrainingDataError("timestamps: NaN or infinite epoch seconds")
        return np.round(seconds * 1000.0).astype(np.int64)
    raise TrainingDataError(f"timestamps: unsupported dtype {arr.dtype}")


def iso_utc(epoch_ms: int) -> str:
    """Format epoch milliseconds as ISO-8601 UTC with a trailing Z (deterministic)."""
    return str(np.datetime_as_string(np.datetime64(int(epoch_ms), "ms"), unit="ms")) + "Z"


def make_training_set(
    features: Mapping[str, ArrayLike], labels: ArrayLike, timestamps: ArrayLike
) -> TrainingSet:
    """Check the columns and stack them into a `TrainingSet`, in the mapping's column order.

    Every column must be one-dimensional, numeric (None and NaN mean missing) and finite
    otherwise; labels must be 0/1 (or booleans); all lengths must agree. Errors name the column.
    """
    if not features:
        raise TrainingDataError("the training set has no feature columns")
    y_raw = np.asarray(labels)
    if y_raw.ndim != 1:
        raise TrainingDataError(f"labels must be one-dimensional, got shape {y_raw.shape}")
    n = y_raw.shape[0]
    if n == 0:
        raise TrainingDataError("the training set has no rows")
    if y_raw.dtype.kind == "b":
        y = y_raw.astype(np.int8)
    elif y_raw.dtype.kind in "iuf":
        if y_raw.dtype.kind == "f" and not np.isfinite(y_raw).all():
            raise TrainingDataError("labels: NaN or infinite values")
        bad = ~np.isin(y_raw, (0, 1))
        if bad.any():
            raise TrainingDataError(
                f"labels must be 0 or 1; found {sorted(set(np.unique(y_raw[bad]).tolist()))[:5]}"
            )
        y = y_raw.astype(np.int8)
    else:
        raise TrainingDataError(f"labels: unsupported dtype {y_raw.dtype}")
    ts = as_epoch_ms(timestamps)
    if ts.shape[0] != n:
        raise TrainingDataError(f"timestamps have {ts.shape[0]} rows, labels have {n}")
    names = tuple(features)
    for name in names:
        if not isinstance(name, str) or not name:
            raise TrainingDataError(f"feature names must be non-empty strings, got {name!r}")
    x = np.empty((n, len(names)), dtype=np.float64)
    for j, name in enumerate(names):
        try:
            col = np.asarray(features[name], dtype=np.float64)
        except (ValueError, TypeError) as exc:
            raise TrainingDataError(f"feature {name!r}: not numeric ({exc})") from exc
        if col.ndim != 1:
            raise TrainingDataError(f"feature {name!r}: must be one-dimensional, got {col.shape}")
        if col.shape[0] != n:
            raise TrainingDataError(f"feature {name!r}: has {col.shape[0]} rows, labels have {n}")
        if np.isinf(col).any():
            raise TrainingDataError(
                f"feature {name!r}: {int(np.isinf(col).sum())} infinite value(s); use NaN for missing"
            )
        x[:, j] = col
    return TrainingSet(feature_names=names, x=x, labels=y, timestamps_ms=ts)


def time_split(timestamps_ms: np.ndarray, validation_fraction: float) -> TimeSplit:
    """Split rows by time: the latest `validation_fraction` of rows become validation.

    The cut is the timestamp of the row at position ceil(n * (1 - fraction)) in time order;
    rows at or after it are validation. Both sides must be non-empty.
    """
    if not 0.0 < validation_fraction < 1.0:
        raise TrainingDataError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    ts = np.asarray(timestamps_ms, dtype=np.int64)
    n = ts.shape[0]
    n_val = max(1, math.ceil(n * validation_fraction))
    if n_val >= n:
        raise TrainingDataError(f"{n} rows are too few for a validation fraction of {validation_fraction}")
    split_time = int(np.sort(ts, kind="stable")[n - n_val])
    validation = ts >= split_time
    train = ~validation
    if not train.any():
        raise TrainingDataError(
            "time split left no training rows: the latest timestamp holds more rows than the "
            "training side; the data needs more distinct timestamps"
        )
    return TimeSplit(train=train, validation=validation, split_time_ms=split_time)


def _canonical_floats(col: np.ndarray) -> bytes:
    """Little-endian float64 bytes with one NaN bit pattern and -0.0 folded into 0.0."""
    canon = np.where(np.isnan(col), np.nan, col + 0.0)
    return canon.astype("<f8").tobytes()


def content_hash(data: TrainingSet) -> str:
    """sha256 of the training set's content: column names and order, values, labels, times.

    Row order matters (it can change what is learned). NaN payloads and the sign of zero do
    not, so the same data always hashes the same whatever produced it.
    """
    h = hashlib.sha256()
    header = {"format": HASH_FORMAT, "features": list(data.feature_names), "rows": data.n_rows}
    h.update(json.dumps(header, sort_keys=True, separators=(",", ":")).encode())
    for j in range(data.x.shape[1]):
        h.update(_canonical_floats(data.x[:, j]))
    h.update(data.labels.astype(np.int8).tobytes())
    h.update(data.timestamps_ms.astype("<i8").tobytes())
    return h.hexdigest()


def _side(labels: np.ndarray, ts: np.ndarray) -> dict[str, Any]:
    positives = int(labels.sum())
    return {
        "rows": int(labels.shape[0]),
        "positives": positives,
        "positive_rate": positives / int(labels.shape[0]),
        "start": iso_utc(int(ts.min())),
        "end": iso_utc(int(ts.max())),
    }


def data_reference(data: TrainingSet, split: TimeSplit, validation_fraction: float) -> dict[str, Any]:
    """The lineage record of a training set: content hash, time range, rows, label balance."""
    return {
        "content_sha256": content_hash(data),
        "rows": data.n_rows,
        "features": len(data.feature_names),
        "positives": int(data.labels.sum()),
        "positive_rate": float(data.labels.mean()),
        "time_range": {
            "start": iso_utc(int(data.timestamps_ms.min())),
            "end": iso_utc(int(data.timestamps_ms.max())),
        },
        "validation_fraction": validation_fraction,
        "split_time": iso_utc(split.split_time_ms),
        "train": _side(data.labels[split.train], data.timestamps_ms[split.train]),
        "validation": _side(data.labels[split.validation], data.timestamps_ms[split.validation]),
    }
