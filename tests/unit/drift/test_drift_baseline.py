"""Baseline (JSON, exact and quantile samples) and compare(): methods, overrides, the
dataset-level share with Bonferroni and Holm, and the report."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon
from statsmodels.stats.multitest import multipletests

from mlops.drift import Baseline, DriftConfig, choose_method, compare
from mlops.drift.baseline import CategoricalBaseline, NumericBaseline


def training(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    x = rng.normal(10, 2, n)
    x[rng.random(n) < 0.05] = np.nan
    return {
        "vdd": x,
        "leak": rng.lognormal(0, 1, n),
        "bin": rng.integers(0, 3, n).astype(float),  # few distinct values: categorical-like
        "tester": rng.choice(["T1", "T2", "T3", "T4"], n, p=[0.4, 0.3, 0.2, 0.1]),
        "flag": rng.random(n) < 0.3,
    }


def test_json_round_trip_is_exact_and_strict() -> None:
    rng = np.random.default_rng(0)
    base = Baseline.build(training(rng, 5000), metadata={"model": "yield", "version": 3})
    text = json.dumps(base.to_dict(), allow_nan=False)
    again = Baseline.from_dict(json.loads(text))
    assert again.to_dict() == base.to_dict()
    vdd = again.features["vdd"]
    expected_nulls = int(np.isnan(training(np.random.default_rng(0), 5000)["vdd"]).sum())
    assert isinstance(vdd, NumericBaseline) and vdd.nulls == expected_nulls > 0
    np.testing.assert_array_equal(vdd.sample, base.features["vdd"].sample)
    assert isinstance(again.features["tester"], CategoricalBaseline)
    assert again.features["flag"].frequencies.keys() == {"True", "False"}
    assert again.metadata == {"model": "yield", "version": 3}


def test_numeric_summary_is_exact() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=3000)
    b = NumericBaseline.build(x, n_bins=10, sample_size=500)
    assert (b.count, b.min, b.max) == (3000, x.min(), x.max())
    assert b.mean == pytest.approx(float(np.mean(x)), abs=1e-15) and b.std == pytest.approx(float(np.std(x)), rel=1e-14)
    edges = np.quantile(x, np.arange(1, 10) / 10)
    assert b.edges == edges.tolist()
    assert b.counts == np.histogram(x, np.concatenate([[-np.inf], edges, [np.inf]]))[0].tolist()
    assert not b.exact_sample and len(b.sample) == 500


def test_quantile_sample_ecdf_is_within_one_over_k() -> None:
    rng = np.random.default_rng(2)
    x = rng.lognormal(0, 1.5, 200_001)
    k = 700
    b = NumericBaseline.build(x, sample_size=k)
    xs = np.sort(x)
    grid = np.quantile(xs, np.linspace(0, 1, 5001))
    full = np.searchsorted(xs, grid, side="right") / len(xs)
    summary = np.searchsorted(b.sample, grid, side="right") / k
    assert np.max(np.abs(full - summary)) <= 1.0 / k


def test_small_reference_is_stored_whole_and_matches_scipy_on_raw_data() -> None:
    rng = np.random.default_rng(3)
    ref = rng.normal(size=900)
    cur = rng.normal(0.15, 1.1, size=700)
    base = Baseline.build({"x": ref}, sample_size=2000)
    f = compare(base, {"x": cur}).features["x"]
    ks = stats.ks_2samp(ref, cur)
    assert base.features["x"].exact_sample
    assert f.method == "ks" and f.score == pytest.approx(float(ks.pvalue), rel=1e-9)
    assert f.metrics["ks_statistic"] == pytest.approx(float(ks.statistic), abs=1e-15)
    assert f.metrics["wasserstein"] == pytest.approx(float(stats.wasserstein_distance(ref, cur)), rel=1e-9)


def test_methods_follow_evidently_rule_and_overrides() -> None:
    assert choose_method("numeric", 1000, 50) == "ks"
    assert choose_method("numeric", 1001, 50) == "wasserstein"
    assert choose_method("numeric", 500, 5) == "chisquare"
    assert choose_method("categorical", 500, 40) == "chisquare"
    assert choose_method("categorical", 5000, 3) == "jensenshannon"
    rng = np.random.default_rng(4)
    base = Baseline.build(training(rng, 4000))
    cur = training(rng, 1000)
    report = compare(base, cur)
    methods = {n: f.method for n, f in report.features.items()}
    assert methods == {"vdd": "wasserstein", "leak": "wasserstein", "bin": "jensenshannon",
                       "tester": "jensenshannon", "flag": "jensenshannon"}
    config = DriftConfig(methods={"vdd": "ks", "tester": "chisquare", "leak": "psi"}, thresholds={"leak": 0.5})
    report = compare(base, cur, config)
    assert report.features["vdd"].method == "ks" and report.features["vdd"].is_pvalue
    assert report.features["tester"].method == "chisquare"
    assert report.features["leak"].method == "psi" and report.features["leak"].threshold == 0.5
    with pytest.raises(ValueError):
        compare(base, cur, DriftConfig(methods={"tester": "ks"}))


def test_categorical_statistics_equal_scipy() -> None:
    rng = np.random.default_rng(5)
    ref = rng.choice(["a", "b", "c"], 600, p=[0.5, 0.3, 0.2])
    cur = rng.choice(["a", "b", "c", "d"], 400, p=[0.3, 0.3, 0.3, 0.1])
    base = Baseline.build({"c": ref})
    f = compare(base, {"c": cur}).features["c"]
    cats = ["a", "b", "c", "d"]
    r = np.array([(ref == c).sum() for c in cats], dtype=float)
    o = np.array([(cur == c).sum() for c in cats], dtype=float)
    assert f.bins["categories"] == cats and f.bins["current"] == o.tolist()
    assert f.metrics["chisquare_statistic"] == float("inf") and f.metrics["chisquare_pvalue"] == 0.0  # new "d"
    assert f.metrics["jensenshannon"] == pytest.approx(float(jensenshannon(r, o)), rel=1e-9)
    assert f.drifted
    same = rng.choice(["a", "b", "c"], 400, p=[0.5, 0.3, 0.2])
    g = compare(base, {"c": same}).features["c"]
    o2 = np.array([(same == c).sum() for c in cats[:3]], dtype=float)
    chi = stats.chisquare(o2, r[:3] * o2.sum() / r[:3].sum())
    assert g.metrics["chisquare_pvalue"] == pytest.approx(float(chi.pvalue), rel=1e-9)
    assert g.metrics["chisquare_statistic"] == pytest.approx(float(chi.statistic), rel=1e-12)


def test_dataset_share_with_corrections_equals_statsmodels() -> None:
    rng = np.random.default_rng(6)
    n_features = 40
    ref = {f"f{i}": rng.normal(size=600) for i in range(n_features)}
    cur = {f"f{i}": rng.normal(0.25 if i < 8 else 0.0, 1, size=500) for i in range(n_features)}
    report = compare(Baseline.build(ref), cur, DriftConfig(correction="holm", alpha=0.05, drift_share=0.1))
    p = np.array([report.features[f"f{i}"].score for i in range(n_features)])
    for method in ("bonferroni", "holm"):
        reject, adjusted, _, _ = multipletests(p, alpha=0.05, method=method)
        assert report.n_drifted[method] == int(reject.sum())
        assert report.shares[method] == reject.sum() / n_features
        got = [report.features[f"f{i}"].adjusted_pvalue[method] for i in range(n_features)]
        np.testing.assert_allclose(got, adjusted, rtol=1e-15)
    assert report.n_drifted["none"] == int((p < 0.05).sum())
    assert report.n_drifted["bonferroni"] <= report.n_drifted["holm"] <= report.n_drifted["none"]
    assert report.dataset_drift == (report.shares["holm"] >= 0.1)
    assert set(report.drifted_features) == {f"f{i}" for i in range(n_features)
                                           if report.features[f"f{i}"].drifted_by_correction["holm"]}


def test_skipped_features_and_strict_json_report() -> None:
    rng = np.random.default_rng(7)
    base = Baseline.build(training(rng, 3000))
    cur = training(rng, 800)
    cur["vdd"] = np.full(800, np.nan)
    del cur["leak"]
    cur["tester"] = np.array(["T9"] * 800)  # a category the reference never saw
    report = compare(base, cur)
    assert report.skipped == {"vdd": "no non-null current value", "leak": "missing from the current data"}
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["features"]["tester"]["drifted"] is True
    assert data["features"]["tester"]["metrics"]["chisquare_statistic"] == "inf"
    assert data["worst_feature"] == "tester"
    assert data["n_features"] == 3


def test_nulls_are_counted_apart() -> None:
    base = Baseline.build({"x": np.arange(200.0), "c": np.array(["a", None, "b", None] * 50, dtype=object)})
    assert base.features["c"].nulls == 100 and base.features["c"].frequencies == {"a": 50, "b": 50}
    cur = np.arange(50.0)
    cur[:10] = np.nan
    f = compare(base, {"x": cur, "c": np.array(["a"] * 10, dtype=object)}).features["x"]
    assert f.nulls_current == 10 and f.n_current == 40


def test_categories_match_across_int_and_float_encodings() -> None:
    base = Baseline.build({"site": np.array([1, 2, 2, 3] * 100)}, kinds={"site": "categorical"})
    assert base.features["site"].frequencies == {"2": 200, "1": 100, "3": 100}
    f = compare(base, {"site": np.array([1.0, 2.0, 2.0, 3.0] * 50)}).features["site"]
    assert f.bins["categories"] == ["2", "1", "3"] and f.metrics["chisquare_pvalue"] == 1.0 and not f.drifted
