"""Global feature importance of a model: the mean absolute SHAP value of each feature over
validation rows, computed at training from the exported artifact (so it describes exactly the
model that is served) and kept in the version's record and model card.

At most `IMPORTANCE_ROWS` rows are explained, evenly spaced over the validation set (which is
ordered by time), so a forest's importance costs seconds, not minutes; the record says how
many rows were used. Attributions are of the margin (log-odds for gradient boosting and
logistic regression, probability for a random forest): see `mlops.explain.onnx_model`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mlops.explain.onnx_model import ExplainableModel

#: The most validation rows explained for the global importance.
IMPORTANCE_ROWS = 100

_OUTPUT = {"logistic": "margin (log-odds; the probability is its logistic)", "identity": "probability"}


def spaced_rows(n: int, k: int) -> np.ndarray:
    """At most `k` row indices spread evenly over 0..n-1, first and last included."""
    if n <= k:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, k).round().astype(np.int64))


def global_importance(model: ExplainableModel, x: np.ndarray, features: Sequence[str],
                      *, max_rows: int = IMPORTANCE_ROWS) -> dict[str, Any]:
    """Mean |SHAP| per feature over (at most `max_rows` of) the rows `x` [n, features].

    Returns method, explained output, rows used, expected value, ``mean_abs`` (feature ->
    value, in input order), ``ranking`` (features by decreasing importance, ties by name) and
    ``additivity_max_error`` (largest |sum of attributions + expected value - margin|).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(features):
        raise ValueError(f"expected rows of {len(features)} features, got shape {list(x.shape)}")
    if x.shape[0] == 0 or max_rows < 1:
        raise ValueError("global importance needs at least one row")
    rows = spaced_rows(x.shape[0], max_rows)
    explained = model.explain(x[rows])
    mean_abs = np.abs(explained.attributions).mean(axis=0)
    error = np.abs(explained.attributions.sum(axis=1) + explained.expected_value - explained.margin).max()
    return {
        "method": explained.method,
        "output": _OUTPUT[explained.link],
        "rows": int(rows.shape[0]),
        "expected_value": explained.expected_value,
        "mean_abs": {name: float(v) for name, v in zip(features, mean_abs)},
        "ranking": [features[i] for i in sorted(range(len(features)), key=lambda i: (-mean_abs[i], features[i]))],
        "additivity_max_error": float(error),
    }
