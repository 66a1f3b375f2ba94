"""Data validation before retraining: fail fast, with a reason a person can act on.

Two looks at the data of a retraining window, both pure:

* `check_labels` - the label rows (the label view's offline rows in the window): enough rows,
  labels are 0/1 with no nulls, both classes present and the minority class at least
  ``min_minority_share`` of the rows, entity keys present;
* `check_features` - the joined training set: no feature is missing (null, or no feature row
  within the view's TTL) for more than ``max_null_share`` of the label rows.

Each returns a `DataReport` (the numbers) and raises `DataValidationError` naming the first
problem; the retraining state machine catches the error by name and records the reason.

>>> check_labels({"label": [0, 1, 0, 0], "device_id": ["a", "b", "c", "d"]}, ["device_id"],
...              DataPolicy(min_rows=3, min_minority_share=0.2)).label_balance
0.25
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


class DataValidationError(ValueError):
    """The data cannot train a model; the message says why."""


@dataclass(frozen=True)
class DataPolicy:
    """What the data of a retraining window must satisfy."""

    min_rows: int = 200
    min_minority_share: float = 0.01
    max_null_share: float = 0.5

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> "DataPolicy":
        """From JSON; ValueError names an unknown field."""
        values = dict(values or {})
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown data policy field")
        return cls(**values)


@dataclass(frozen=True)
class DataReport:
    """What was checked and found."""

    rows: int
    positives: int = 0
    label_balance: float | None = None
    null_share: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def check_labels(columns: Mapping[str, Sequence[Any]], keys: Sequence[str], policy: DataPolicy) -> DataReport:
    """Check the label rows (columns by name); see the module docstring."""
    if "label" not in columns:
        raise DataValidationError("labels: the label rows have no 'label' column")
    labels = list(columns["label"])
    n = len(labels)
    if n < policy.min_rows:
        raise DataValidationError(f"row count: {n} label rows in the window, need at least {policy.min_rows}")
    nulls = sum(_is_null(v) for v in labels)
    if nulls:
        raise DataValidationError(f"labels: {nulls} of {n} label rows have no label")
    bad = sorted({repr(v) for v in labels if v not in (0, 1)})
    if bad:
        raise DataValidationError(f"labels: expected 0 or 1, found {', '.join(bad[:5])}")
    for key in keys:
        if key not in columns:
            raise DataValidationError(f"schema: the label rows have no {key!r} column (the join key)")
        missing = sum(_is_null(v) or v == "" for v in columns[key])
        if missing:
            raise DataValidationError(f"nulls: {missing} of {n} label rows have no {key!r}")
    positives = int(sum(labels))
    minority = min(positives, n - positives) / n
    if minority < policy.min_minority_share:
        raise DataValidationError(
            f"label balance: {positives} positives in {n} rows ({positives / n:.2%}); the minority class needs "
            f"at least {policy.min_minority_share:.2%} of the rows")
    return DataReport(rows=n, positives=positives, label_balance=positives / n)


def check_features(features: Mapping[str, np.ndarray], policy: DataPolicy) -> dict[str, float]:
    """Null share per feature of the joined set; DataValidationError when one is over the
    policy's ``max_null_share`` (names the worst feature)."""
    shares = {name: float(np.mean(np.isnan(np.asarray(col, dtype=np.float64)))) if len(col) else 1.0
              for name, col in features.items()}
    worst = max(shares, key=shares.__getitem__, default=None)
    if worst is not None and shares[worst] > policy.max_null_share:
        raise DataValidationError(
            f"nulls: feature {worst!r} is missing for {shares[worst]:.1%} of the label rows (no value, or no "
            f"feature row within the view's TTL); at most {policy.max_null_share:.0%} is allowed")
    return shares
