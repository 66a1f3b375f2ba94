"""Threshold policies against a brute-force scan with scikit-learn's metrics."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score, precision_recall_fscore_support, precision_score, recall_score

from mlops.models.thresholds import ThresholdChoice, ThresholdError, ThresholdPolicy, choose_threshold


def _scan(y: np.ndarray, s: np.ndarray) -> list[tuple[float, float, float, float]]:
    """(threshold, precision, recall, f1) at every distinct score, via scikit-learn."""
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for t in sorted(set(s.tolist())):
            pred = (s >= t).astype(int)
            precision, recall, f1, _ = precision_recall_fscore_support(y, pred, average="binary", zero_division=0.0)
            rows.append((t, float(precision), float(recall), float(f1)))
    return rows


data = st.lists(st.tuples(st.integers(0, 1), st.integers(0, 15)), min_size=2, max_size=60).filter(
    lambda rows: any(r[0] == 1 for r in rows)
).map(lambda rows: (np.array([r[0] for r in rows]), np.array([r[1] / 15 for r in rows])))


def _check_achieved(choice: ThresholdChoice, y: np.ndarray, s: np.ndarray) -> None:
    pred = (s >= choice.threshold).astype(int)
    assert choice.recall == pytest.approx(recall_score(y, pred), abs=1e-12)
    assert choice.f1 == pytest.approx(f1_score(y, pred), abs=1e-12)
    assert choice.predicted_positive_rate == pytest.approx(pred.mean(), abs=1e-12)
    assert choice.positives == int(y.sum()) and choice.n == len(y)


@settings(max_examples=80, deadline=None)
@given(data)
def test_max_f1_is_the_best_f1_at_the_highest_tied_threshold(d: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = d
    scan = _scan(y, s)
    best = max(r[3] for r in scan)
    expected_t = max(r[0] for r in scan if r[3] == pytest.approx(best, abs=1e-12))
    choice = choose_threshold(y, s, ThresholdPolicy.max_f1())
    assert choice.f1 == pytest.approx(best, abs=1e-12)
    assert choice.threshold == expected_t
    _check_achieved(choice, y, s)


@settings(max_examples=80, deadline=None)
@given(data, st.sampled_from([0.1, 0.5, 0.8, 0.9, 0.95, 1.0]))
def test_target_recall_is_the_highest_threshold_reaching_it(d: tuple[np.ndarray, np.ndarray], r: float) -> None:
    y, s = d
    expected_t = max(t for t, _, rec, _ in _scan(y, s) if rec >= r)
    choice = choose_threshold(y, s, ThresholdPolicy.target_recall(r))
    assert choice.threshold == expected_t
    assert choice.recall >= r
    _check_achieved(choice, y, s)


@settings(max_examples=80, deadline=None)
@given(data, st.sampled_from([0.2, 0.5, 0.75, 1.0]))
def test_target_precision_maximises_recall_among_thresholds_reaching_it(
    d: tuple[np.ndarray, np.ndarray], p: float
) -> None:
    y, s = d
    ok = [row for row in _scan(y, s) if row[1] >= p]
    policy = ThresholdPolicy.target_precision(p)
    if not ok:
        with pytest.raises(ThresholdError, match="no threshold reaches precision"):
            choose_threshold(y, s, policy)
        return
    best_recall = max(row[2] for row in ok)
    expected_t = max(row[0] for row in ok if row[2] == best_recall)
    choice = choose_threshold(y, s, policy)
    assert choice.threshold == expected_t
    assert choice.precision >= p
    _check_achieved(choice, y, s)


def test_fixed_threshold_reports_what_it_achieves() -> None:
    y = np.array([0, 0, 1, 1, 0, 1])
    s = np.array([0.1, 0.6, 0.7, 0.4, 0.2, 0.9])
    choice = choose_threshold(y, s, ThresholdPolicy.fixed(0.5))
    assert choice.threshold == 0.5
    assert choice.precision == pytest.approx(precision_score(y, s >= 0.5))
    assert choice.recall == pytest.approx(2 / 3)
    # Above every score: nothing predicted positive, precision undefined (None), recall 0.
    high = choose_threshold(y, s, ThresholdPolicy.fixed(0.95))
    assert high.precision is None and high.recall == 0.0 and high.predicted_positive_rate == 0.0


def test_known_example() -> None:
    y = np.array([1, 1, 0, 1, 0, 0, 0, 0])
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    assert choose_threshold(y, s, ThresholdPolicy.max_f1()).threshold == 0.6  # F1 6/7
    assert choose_threshold(y, s, ThresholdPolicy.target_recall(0.6)).threshold == 0.8
    assert choose_threshold(y, s, ThresholdPolicy.target_precision(1.0)).threshold == 0.8
    assert choose_threshold(y, s, ThresholdPolicy.target_precision(0.7)).threshold == 0.6


def test_policies_validate_and_round_trip() -> None:
    for policy in (ThresholdPolicy.max_f1(), ThresholdPolicy.target_recall(0.9),
                   ThresholdPolicy.target_precision(0.5), ThresholdPolicy.fixed(0.3)):
        assert ThresholdPolicy.from_dict(policy.to_dict()) == policy
        assert policy.describe()
    for bad in (lambda: ThresholdPolicy("median"), lambda: ThresholdPolicy.target_recall(1.5),
                lambda: ThresholdPolicy("max_f1", 0.3), lambda: ThresholdPolicy("fixed"),
                lambda: ThresholdPolicy.target_recall(0.0)):
        with pytest.raises(ValueError):
            bad()
    with pytest.raises(ThresholdError, match="needs positives"):
        choose_threshold([0, 0], [0.1, 0.2], ThresholdPolicy.max_f1())
