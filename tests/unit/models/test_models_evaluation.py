"""The numpy metrics against scikit-learn's on the same data, ties and single-class cases included."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.calibration import calibration_curve
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss as sk_log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from mlops.models import evaluation as ev

TOL = 1e-9


def _tied_data(seed: int, n: int = 500, levels: int = 25, rate: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """Scores on a coarse grid (many ties) loosely related to the labels."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < rate).astype(int)
    raw = np.clip(0.2 + 0.35 * y + rng.normal(0, 0.2, n), 0, 1)
    return y, np.round(raw * levels) / levels


labelled_scores = st.lists(
    st.tuples(st.integers(0, 1), st.integers(0, 12)), min_size=1, max_size=80
).map(lambda rows: (np.array([r[0] for r in rows]), np.array([r[1] / 12 for r in rows])))


def _sk_nan(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        warnings.simplefilter("ignore", UserWarning)
        return fn(*args, **kwargs)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ranking_metrics_match_sklearn_with_ties(seed: int) -> None:
    y, s = _tied_data(seed)
    assert len(np.unique(s)) < len(s) / 5  # the data really has ties
    assert ev.roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=TOL)
    assert ev.average_precision(y, s) == pytest.approx(average_precision_score(y, s), abs=TOL)


def test_ranking_metrics_match_sklearn_on_continuous_scores() -> None:
    rng = np.random.default_rng(7)
    y = (rng.random(2000) < 0.07).astype(int)
    s = 1 / (1 + np.exp(-(rng.normal(size=2000) + 1.5 * y)))
    assert ev.roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=TOL)
    assert ev.average_precision(y, s) == pytest.approx(average_precision_score(y, s), abs=TOL)


@settings(max_examples=150, deadline=None)
@given(labelled_scores)
def test_ranking_metrics_property(data: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = data
    sk_auc = _sk_nan(roc_auc_score, y, s)
    ours = ev.roc_auc(y, s)
    if len(np.unique(y)) < 2:
        assert ours is None and np.isnan(sk_auc)
    else:
        assert ours == pytest.approx(sk_auc, abs=TOL)
    ap = ev.average_precision(y, s)
    if y.sum() == 0:
        assert ap is None  # scikit-learn returns 0.0 with a warning that recall is undefined
    else:
        assert ap == pytest.approx(average_precision_score(y, s), abs=TOL)


@settings(max_examples=150, deadline=None)
@given(labelled_scores, st.integers(0, 13))
def test_threshold_metrics_property(data: tuple[np.ndarray, np.ndarray], t: int) -> None:
    y, s = data
    threshold = t / 12
    pred = (s >= threshold).astype(int)
    ours = ev.threshold_metrics(y, s, threshold)
    expected = {
        "accuracy": accuracy_score(y, pred),
        "precision": _sk_nan(precision_score, y, pred, zero_division=np.nan),
        "recall": _sk_nan(recall_score, y, pred, zero_division=np.nan),
        "f1": _sk_nan(f1_score, y, pred, zero_division=np.nan),
    }
    for name, value in expected.items():
        if np.isnan(value):
            assert ours[name] is None, name
        else:
            assert ours[name] == pytest.approx(value, abs=TOL), name


@settings(max_examples=100, deadline=None)
@given(labelled_scores)
def test_probabilistic_metrics_property(data: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = data
    assert ev.log_loss(y, p) == pytest.approx(sk_log_loss(y, p, labels=[0, 1]), abs=TOL)
    assert ev.brier_score(y, p) == pytest.approx(brier_score_loss(y, p, labels=[0, 1]), abs=TOL)


def test_log_loss_clips_certain_wrong_predictions_like_sklearn() -> None:
    y = np.array([1, 0, 1, 0])
    p = np.array([0.0, 1.0, 1.0, 0.0])
    ours = ev.log_loss(y, p)
    assert np.isfinite(ours) and ours > 10
    assert ours == pytest.approx(sk_log_loss(y, p), abs=TOL)


@pytest.mark.parametrize("n_bins", [5, 10, 12])
def test_calibration_bins_match_sklearn(n_bins: int) -> None:
    y, p = _tied_data(3, n=1000, levels=40)  # values on bin edges (0.1, 0.2, ...) included
    bins = ev.calibration_bins(y, p, n_bins)
    assert len(bins) == n_bins and sum(b["count"] for b in bins) == len(y)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=n_bins, strategy="uniform")
    filled = [b for b in bins if b["count"]]
    assert len(filled) == len(prob_true)
    np.testing.assert_allclose([b["observed_rate"] for b in filled], prob_true, atol=TOL, rtol=0)
    np.testing.assert_allclose([b["mean_predicted"] for b in filled], prob_pred, atol=TOL, rtol=0)
    for b in bins:
        if not b["count"]:
            assert b["observed_rate"] is None and b["mean_predicted"] is None
        else:
            assert b["lower"] <= b["mean_predicted"] <= b["upper"]


def test_expected_calibration_error_is_the_weighted_gap() -> None:
    y, p = _tied_data(4)
    bins = ev.calibration_bins(y, p, 10)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10)
    counts = np.array([b["count"] for b in bins if b["count"]])
    expected = float(np.sum(counts * np.abs(prob_true - prob_pred)) / counts.sum())
    assert ev.expected_calibration_error(bins) == pytest.approx(expected, abs=TOL)


def test_evaluate_report_matches_sklearn() -> None:
    y, p = _tied_data(5)
    threshold = 0.4
    r = ev.evaluate(y, p, threshold)
    pred = (p >= threshold).astype(int)
    assert r["n"] == len(y) and r["positives"] == int(y.sum())
    assert r["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=TOL)
    assert r["pr_auc"] == pytest.approx(average_precision_score(y, p), abs=TOL)
    assert r["accuracy"] == pytest.approx(accuracy_score(y, pred), abs=TOL)
    assert r["precision"] == pytest.approx(precision_score(y, pred), abs=TOL)
    assert r["recall"] == pytest.approx(recall_score(y, pred), abs=TOL)
    assert r["f1"] == pytest.approx(f1_score(y, pred), abs=TOL)
    assert r["log_loss"] == pytest.approx(sk_log_loss(y, p), abs=TOL)
    assert r["brier"] == pytest.approx(brier_score_loss(y, p), abs=TOL)
    assert r["predicted_positive_rate"] == pytest.approx(pred.mean(), abs=TOL)
    c = r["confusion"]
    assert (c["tp"], c["fp"], c["fn"]) == (
        int(((pred == 1) & (y == 1)).sum()), int(((pred == 1) & (y == 0)).sum()), int(((pred == 0) & (y == 1)).sum())
    )
    assert r["undefined"] == {}
    assert len(r["calibration"]) == 10


def test_slices_match_sklearn_per_value_and_state_single_class() -> None:
    y, p = _tied_data(6, n=600)
    rng = np.random.default_rng(6)
    tester = rng.choice(["T1", "T2", "T3"], size=len(y)).astype(object)
    # T9: a tester whose rows are all passes (single class); one row has no tester at all.
    all_pass = np.flatnonzero(y == 0)[:15]
    tester[all_pass] = "T9"
    tester[np.flatnonzero(y == 1)[0]] = None
    out = ev.slice_metrics(y, p, 0.4, {"tester": tester, "fab_site": np.array(["A"] * len(y))})
    assert [e["value"] for e in out["tester"]] == ["<missing>", "T1", "T2", "T3", "T9"]
    assert [e["value"] for e in out["fab_site"]] == ["A"]
    for entry in out["tester"]:
        mask = np.array([ev._slice_key(v) == entry["value"] for v in tester])
        assert entry["n"] == int(mask.sum()) and entry["positives"] == int(y[mask].sum())
        if len(np.unique(y[mask])) == 2:
            assert entry["roc_auc"] == pytest.approx(roc_auc_score(y[mask], p[mask]), abs=TOL)
            assert entry["pr_auc"] == pytest.approx(average_precision_score(y[mask], p[mask]), abs=TOL)
            assert "roc_auc" not in entry["undefined"]
        else:
            assert entry["roc_auc"] is None
            assert "only one class" in entry["undefined"]["roc_auc"]
        pred = (p[mask] >= 0.4).astype(int)
        assert entry["accuracy"] == pytest.approx(accuracy_score(y[mask], pred), abs=TOL)
    t9 = out["tester"][-1]
    assert t9["positives"] == 0 and t9["recall"] is None and t9["pr_auc"] is None
    assert t9["undefined"]["roc_auc"] == "only one class present (no positives)"
    missing = out["tester"][0]
    assert missing["n"] == 1 and missing["undefined"]["roc_auc"] == "only one class present (no negatives)"


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="only 0 and 1"):
        ev.roc_auc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="shape"):
        ev.roc_auc([0, 1], [0.1])
    with pytest.raises(ValueError, match="finite"):
        ev.log_loss([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ev.brier_score([0, 1], [0.1, 1.5])
    with pytest.raises(ValueError, match="zero rows"):
        ev.evaluate([], [], 0.5)
