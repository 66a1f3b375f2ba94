"""Binary classification metrics in numpy: ranking, threshold, probabilistic and calibration.

These run inside Lambda functions (evaluation, canary gates, feedback), where scikit-learn is
too heavy to import, so they are written with numpy only and tested against scikit-learn's
implementations on the same data. A metric that is undefined on the data (ROC AUC on a
single class, precision with no predicted positives, ...) is None, and `undefined` in the
report says why; it is never silently replaced by 0.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

#: Probabilities are clipped to [EPS, 1 - EPS] in the log loss, as scikit-learn does.
EPS = float(np.finfo(np.float64).eps)
#: The label of rows whose slice value is missing (None or NaN).
MISSING_SLICE = "<missing>"


def _labels(y_true: ArrayLike) -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ValueError(f"y_true must be one-dimensional, got shape {y.shape}")
    if y.dtype.kind == "b":
        return y.astype(np.int64)
    if y.dtype.kind not in "iuf" or not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must contain only 0 and 1")
    return y.astype(np.int64)


def _scores(scores: ArrayLike, n: int, *, probabilities: bool = False) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if s.shape != (n,):
        raise ValueError(f"scores must have shape ({n},), got {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    if probabilities and ((s < 0).any() or (s > 1).any()):
        raise ValueError("probabilities must lie in [0, 1]")
    return s


def ranking_counts(y_true: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative true and false positives at every distinct score, highest score first.

    Returns (thresholds, tps, fps): predicting positive for `score >= thresholds[k]` gives
    `tps[k]` true and `fps[k]` false positives. Tied scores form one threshold. This is the
    curve that ROC, precision-recall and the threshold policies are read from.
    """
    y = _labels(y_true)
    s = _scores(scores, y.shape[0])
    order = np.argsort(-s, kind="mergesort")
    s_sorted = s[order]
    y_sorted = y[order]
    last_of_group = np.r_[np.flatnonzero(np.diff(s_sorted)), y.shape[0] - 1]
    tps = np.cumsum(y_sorted)[last_of_group]
    fps = (last_of_group + 1) - tps
    return s_sorted[last_of_group], tps.astype(np.int64), fps.astype(np.int64)


def roc_auc(y_true: ArrayLike, scores: ArrayLike) -> float | None:
    """Area under the ROC curve, ties counted as one half (Mann-Whitney U / (P * N)).

    None when only one class is present, where the curve is undefined.
    """
    y = _labels(y_true)
    s = _scores(scores, y.shape[0])
    n_pos = int(y.sum())
    n_neg = int(y.shape[0] - n_pos)
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(s, kind="mergesort")
    s_sorted = s[order]
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
    ends = np.r_[starts[1:], s_sorted.shape[0]]
    group = np.cumsum(np.r_[True, s_sorted[1:] != s_sorted[:-1]]) - 1
    ranks = np.empty_like(s)
    ranks[order] = ((starts + 1 + ends) / 2.0)[group]
    u = ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def average_precision(y_true: ArrayLike, scores: ArrayLike) -> float | None:
    """PR AUC as average precision: sum over thresholds of (recall step) x precision.

    The step-wise (not interpolated) area, as scikit-learn's `average_precision_score`.
    None when there are no positives (recall is undefined).
    """
    _, tps, fps = ranking_counts(y_true, scores)
    n_pos = int(tps[-1])
    if n_pos == 0:
        return None
    precision = tps / (tps + fps)
    recall = tps / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def confusion(y_true: ArrayLike, scores: ArrayLike, threshold: float) -> dict[str, int]:
    """Counts of the confusion matrix when `score >= threshold` predicts positive."""
    y = _labels(y_true)
    s = _scores(scores, y.shape[0])
    pred = s >= threshold
    tp = int(np.sum(pred & (y == 1)))
    fp = int(np.sum(pred & (y == 0)))
    fn = int(np.sum(~pred & (y == 1)))
    return {"tp": tp, "fp": fp, "tn": int(y.shape[0]) - tp - fp - fn, "fn": fn}


def rates_from_counts(tp: int, fp: int, tn: int, fn: int) -> dict[str, float | None]:
    """Accuracy, precision, recall and F1 from confusion counts; None where undefined.

    Precision needs a predicted positive, recall an actual positive, and F1 = 2TP / (2TP +
    FP + FN) a positive on either side; scikit-learn returns 0 (with a warning) there instead.
    """
    n = tp + fp + tn + fn
    return {
        "accuracy": (tp + tn) / n if n else None,
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
        "f1": 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else None,
    }


def threshold_metrics(y_true: ArrayLike, scores: ArrayLike, threshold: float) -> dict[str, float | None]:
    """Accuracy, precision, recall and F1 when `score >= threshold` predicts positive."""
    c = confusion(y_true, scores, threshold)
    return rates_from_counts(c["tp"], c["fp"], c["tn"], c["fn"])


def log_loss(y_true: ArrayLike, probabilities: ArrayLike) -> float:
    """Mean negative log-likelihood (natural log), probabilities clipped to [eps, 1 - eps]."""
    y = _labels(y_true)
    p = np.clip(_scores(probabilities, y.shape[0], probabilities=True), EPS, 1.0 - EPS)
    return float(-np.mean(np.where(y == 1, np.log(p), np.log(1.0 - p))))


def brier_score(y_true: ArrayLike, probabilities: ArrayLike) -> float:
    """Mean squared difference between the probability of the positive class and the label."""
    y = _labels(y_true)
    p = _scores(probabilities, y.shape[0], probabilities=True)
    return float(np.mean((p - y) ** 2))


def calibration_bins(y_true: ArrayLike, probabilities: ArrayLike, n_bins: int = 10) -> list[dict[str, Any]]:
    """Reliability bins: `n_bins` equal-width bins on [0, 1], each with its count, mean
    predicted probability and observed positive rate (None for an empty bin).

    A probability on an inner edge belongs to the lower bin, as in scikit-learn's
    `calibration_curve(strategy="uniform")`; 1.0 falls in the last bin.
    """
    if n_bins < 1:
        raise ValueError("n_bins must be at least 1")
    y = _labels(y_true)
    p = _scores(probabilities, y.shape[0], probabilities=True)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ids = np.searchsorted(edges[1:-1], p)
    counts = np.bincount(ids, minlength=n_bins)
    sum_p = np.bincount(ids, weights=p, minlength=n_bins)
    sum_y = np.bincount(ids, weights=y.astype(np.float64), minlength=n_bins)
    bins = []
    for b in range(n_bins):
        count = int(counts[b])
        bins.append({
            "lower": float(edges[b]),
            "upper": float(edges[b + 1]),
            "count": count,
            "mean_predicted": float(sum_p[b] / count) if count else None,
            "observed_rate": float(sum_y[b] / count) if count else None,
        })
    return bins


def expected_calibration_error(bins: Sequence[Mapping[str, Any]]) -> float | None:
    """Count-weighted mean |observed rate - mean predicted| over non-empty bins."""
    total = sum(b["count"] for b in bins)
    if total == 0:
        return None
    return float(sum(
        b["count"] * abs(b["observed_rate"] - b["mean_predicted"]) for b in bins if b["count"]
    ) / total)


def _point_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, Any]:
    n = int(y.shape[0])
    positives = int(y.sum())
    c = confusion(y, p, threshold)
    out: dict[str, Any] = {
        "n": n,
        "positives": positives,
        "positive_rate": positives / n,
        "threshold": float(threshold),
        "predicted_positive_rate": (c["tp"] + c["fp"]) / n,
        "roc_auc": roc_auc(y, p),
        "pr_auc": average_precision(y, p),
        **rates_from_counts(c["tp"], c["fp"], c["tn"], c["fn"]),
        "log_loss": log_loss(y, p),
        "brier": brier_score(y, p),
        "confusion": c,
    }
    undefined: dict[str, str] = {}
    single = "only one class present" + (" (no positives)" if positives == 0 else " (no negatives)")
    if out["roc_auc"] is None:
        undefined["roc_auc"] = single
    if out["pr_auc"] is None:
        undefined["pr_auc"] = "no positives, recall is undefined"
    if out["precision"] is None:
        undefined["precision"] = "no predicted positives at this threshold"
    if out["recall"] is None:
        undefined["recall"] = "no positives"
    if out["f1"] is None:
        undefined["f1"] = "no positives and no predicted positives"
    out["undefined"] = undefined
    return out


def evaluate(
    y_true: ArrayLike, probabilities: ArrayLike, threshold: float, *, n_bins: int = 10
) -> dict[str, Any]:
    """The full metric report of one set of predictions at one threshold.

    Keys: n, positives, positive_rate, threshold, predicted_positive_rate, roc_auc, pr_auc,
    accuracy, precision, recall, f1, log_loss, brier, confusion, calibration (bins), ece, and
    undefined (metric -> reason, for every metric that is None).
    """
    y = _labels(y_true)
    if y.shape[0] == 0:
        raise ValueError("cannot evaluate zero rows")
    p = _scores(probabilities, y.shape[0], probabilities=True)
    report = _point_metrics(y, p, threshold)
    bins = calibration_bins(y, p, n_bins)
    report["calibration"] = bins
    report["ece"] = expected_calibration_error(bins)
    return report


def _slice_key(value: Hashable) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return MISSING_SLICE
    if isinstance(value, np.generic):
        value = value.item()
    return str(value)


def slice_metrics(
    y_true: ArrayLike,
    probabilities: ArrayLike,
    threshold: float,
    slices: Mapping[str, Sequence[Hashable] | np.ndarray],
) -> dict[str, list[dict[str, Any]]]:
    """Metrics per value of each declared slice column (e.g. tester, fab_site).

    Returns column -> one entry per distinct value (as a string, sorted; None/NaN become
    "<missing>") with `value` and the same point metrics as `evaluate` minus calibration.
    A slice with a single class has roc_auc None and says so in `undefined`.
    """
    y = _labels(y_true)
    p = _scores(probabilities, y.shape[0], probabilities=True)
    out: dict[str, list[dict[str, Any]]] = {}
    for column, raw in slices.items():
        values = list(raw)
        if len(values) != y.shape[0]:
            raise ValueError(f"slice column {column!r} has {len(values)} rows, labels have {y.shape[0]}")
        keys = np.array([_slice_key(v) for v in values], dtype=object)
        entries = []
        for key in sorted(set(keys.tolist())):
            mask = keys == key
            entries.append({"value": key, **_point_metrics(y[mask], p[mask], threshold)})
        out[column] = entries
    return out
