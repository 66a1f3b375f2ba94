"""Feature statistics against numpy/pandas, the quantile sketch's error bound, freshness."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from functools import reduce

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops.features.definitions import Entity, FeatureView, Field
from mlops.features.sketch import QuantileSketch
from mlops.features.stats import FeatureStats, ViewStats, daily_stats, freshness, is_stale, merge_stats
from mlops.features.validation import validate_rows
from mlops.features.yield_example import tester_health

DAY_US = 86_400_000_000
EPS_K200 = 0.0165  # the sketch's stated bound for k=200 (all quantiles at once, 99%)
QS = np.linspace(0.01, 0.99, 99)


def within_rank_bound(data: np.ndarray, estimates: np.ndarray, qs: np.ndarray, eps: float) -> np.ndarray:
    """Per quantile: is the estimate between numpy.quantile at q - eps and at q + eps?
    (That is: its rank in the data is within eps of q.)"""
    low = np.quantile(data, np.clip(qs - eps, 0, 1), method="inverted_cdf")
    high = np.quantile(data, np.clip(qs + eps, 0, 1), method="higher")
    return (low <= estimates) & (estimates <= high)


def rank_error(data: np.ndarray, estimates: np.ndarray, qs: np.ndarray) -> float:
    s = np.sort(data)
    lo = np.searchsorted(s, estimates, side="left") / s.size
    hi = np.searchsorted(s, estimates, side="right") / s.size
    return float(np.max(np.maximum(0, np.maximum(lo - qs, qs - hi))))


# --- the sketch ---------------------------------------------------------------------------

@pytest.mark.parametrize("dist", ["normal", "lognormal", "few_values", "sorted_drift"])
def test_sketch_of_a_hundred_merged_days_meets_its_rank_error_bound(dist: str) -> None:
    rng = np.random.default_rng(42)
    n = 1_000_000
    data = {
        "normal": lambda: rng.normal(5, 2, n),
        "lognormal": lambda: rng.lognormal(0, 2, n),
        "few_values": lambda: rng.integers(0, 20, n).astype(float),  # heavy ties
        "sorted_drift": lambda: np.sort(rng.normal(0, 1, n)) + np.linspace(0, 3, n),  # each day shifted
    }[dist]()
    days = [QuantileSketch.from_values(chunk) for chunk in np.array_split(data, 100)]
    merged = reduce(QuantileSketch.merge, days)
    estimates = merged.quantiles(QS)
    assert within_rank_bound(data, estimates, QS, EPS_K200).all()
    # the bound holds with room to spare; a broken compaction (say, always keeping the same
    # half) pushes the error far past it
    assert rank_error(data, estimates, QS) < EPS_K200
    assert merged.n == n and merged.min == data.min() and merged.max == data.max()
    assert merged.quantiles([0, 1]).tolist() == [data.min(), data.max()]
    assert merged.retained < 1000  # a few hundred values stand for a million
    points = np.quantile(data, QS)
    true_cdf = np.searchsorted(np.sort(data), points, side="right") / n
    np.testing.assert_allclose(merged.cdf(points), true_cdf, atol=EPS_K200)


def test_sketch_survives_json_and_merges_symmetrically() -> None:
    rng = np.random.default_rng(1)
    a = QuantileSketch.from_values(rng.normal(size=50_000))
    b = QuantileSketch.from_values(rng.exponential(size=30_000))
    assert QuantileSketch.from_dict(json.loads(json.dumps(a.to_dict()))) == a
    assert a.merge(b) == b.merge(a)
    ab = a.merge(b)
    assert ab.n == 80_000 and a.n == 50_000  # inputs unchanged
    restored = QuantileSketch.from_dict(json.loads(json.dumps(ab.to_dict())))
    np.testing.assert_array_equal(restored.quantiles(QS), ab.quantiles(QS))


def test_sketch_ignores_non_finite_values_and_empty_sketches_say_so() -> None:
    s = QuantileSketch.from_values([1.0, np.nan, np.inf, -np.inf, 3.0])
    assert s.n == 2 and s.quantiles([0.0, 1.0]).tolist() == [1.0, 3.0]
    empty = QuantileSketch()
    assert np.isnan(empty.quantiles([0.5])).all() and empty.cdf([0.0]).tolist() == [0.0]
    assert empty.merge(s) == s.merge(empty)
    with pytest.raises(ValueError, match="k="):
        s.merge(QuantileSketch(k=100))
    with pytest.raises(ValueError, match="corrupt"):
        QuantileSketch.from_dict({**s.to_dict(), "n": 5})


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=3000))
def test_small_inputs_are_kept_exactly(values: list[float]) -> None:
    s = QuantileSketch.from_values(values)
    data = np.array(values)
    if data.size <= 200:  # below capacity nothing is compacted: quantiles are exact
        assert rank_error(data, s.quantiles(QS), QS) <= 1 / data.size
    assert rank_error(data, s.quantiles(QS), QS) < EPS_K200 + 1 / data.size


# --- feature statistics -------------------------------------------------------------------

def test_feature_stats_equal_pandas_and_merge_exactly() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(10, 3, 20_000)
    values[rng.random(values.size) < 0.1] = np.nan
    parts = np.array_split(values, [5, 6000, 6001, 13_000])
    merged = reduce(FeatureStats.merge, [FeatureStats.of(p, "float") for p in parts])
    ref = pd.Series(values)
    assert merged.count == ref.count() and merged.nulls == ref.isna().sum()
    assert merged.min == ref.min() and merged.max == ref.max()
    assert merged.mean == pytest.approx(ref.mean(), rel=1e-12)
    assert merged.std == pytest.approx(ref.std(ddof=0), rel=1e-9)
    whole = FeatureStats.of(values, "float")
    assert merged.mean == pytest.approx(whole.mean, rel=1e-12)
    assert merged.null_fraction == pytest.approx(ref.isna().mean())


def test_feature_stats_of_other_types() -> None:
    ints = np.array([3, None, 5, 10], dtype=object)
    s = FeatureStats.of(ints, "int")
    assert (s.count, s.nulls, s.min, s.max, s.mean) == (3, 1, 3.0, 10.0, 6.0)
    assert s.sketch is not None and s.sketch.n == 3
    flags = FeatureStats.of(np.array([True, False, True, None], dtype=object), "bool")
    assert (flags.count, flags.nulls, flags.mean) == (3, 1, pytest.approx(2 / 3))
    assert flags.sketch is None
    words = FeatureStats.of(np.array(["ok", None, "down"], dtype=object), "str")
    assert (words.count, words.nulls, words.min, words.mean) == (2, 1, None, None)


def test_daily_stats_split_by_utc_day_and_merge_to_the_whole() -> None:
    rng = np.random.default_rng(9)
    n = 3000
    view = FeatureView("v", [Entity("d", "d")], [Field("x", "float"), Field("n", "int")], timedelta(days=1), "s")
    ts = rng.integers(0, 3 * DAY_US, n)
    x = rng.normal(size=n)
    x[::7] = np.nan
    counts = np.empty(n, dtype=object)
    counts[:] = [int(v) for v in rng.integers(0, 50, n)]
    cols = {"d": np.array(["a"] * n, dtype=object), "event_timestamp": ts, "x": x, "n": counts}
    per_day = daily_stats(view, cols)
    assert sorted(per_day) == ["1970-01-01", "1970-01-02", "1970-01-03"]
    for i, (name, stats) in enumerate(sorted(per_day.items())):
        mask = ts // DAY_US == i
        ref = pd.Series(x[mask])
        assert stats.rows == mask.sum() and (stats.start, stats.end) == (name, name)
        assert stats.features["x"].count == ref.count() and stats.features["x"].nulls == ref.isna().sum()
        assert stats.features["x"].mean == pytest.approx(ref.mean(), rel=1e-12)
        assert stats.first_event_us == ts[mask].min() and stats.last_event_us == ts[mask].max()
    stored = [ViewStats.from_dict(json.loads(json.dumps(s.to_dict()))) for s in per_day.values()]
    baseline = merge_stats(stored)
    assert (baseline.start, baseline.end, baseline.rows) == ("1970-01-01", "1970-01-03", n)
    assert baseline.features["x"].mean == pytest.approx(np.nanmean(x), rel=1e-12)
    assert baseline.features["x"].std == pytest.approx(np.nanstd(x), rel=1e-9)
    assert baseline.features["n"].max == max(counts)
    assert baseline.last_event == datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=int(ts.max()))
    est = baseline.features["x"].sketch.quantiles(QS)  # type: ignore[union-attr]
    assert within_rank_bound(x[~np.isnan(x)], est, QS, EPS_K200).all()


def test_stats_from_a_validated_batch() -> None:
    now = datetime(2024, 5, 2, tzinfo=timezone.utc)
    rows = [{"tester_id": f"T{i % 3}", "event_timestamp": f"2024-05-01T0{i % 10}:00:00Z",
             "alarms_24h": i % 4, "status": ["ok", "degraded"][i % 2], "contact_res_ohm": 1.0 + i}
            for i in range(40)]
    result = validate_rows(tester_health, rows, now=now)
    stats = daily_stats(tester_health, result.columns())["2024-05-01"]
    assert stats.rows == 40
    assert stats.features["alarms_24h"].mean == pytest.approx(np.mean([i % 4 for i in range(40)]))
    assert stats.features["contact_res_ohm"].max == 40.0
    assert stats.features["in_calibration"].nulls == 40
    assert stats.features["status"].count == 40


def test_freshness_and_staleness() -> None:
    now = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
    assert freshness(now - timedelta(minutes=30), now) == timedelta(minutes=30)
    assert freshness(now + timedelta(seconds=5), now) == timedelta(0)  # within the clock skew
    assert freshness(None, now) is None
    us = int((now - datetime(1970, 1, 1, tzinfo=timezone.utc)) / timedelta(microseconds=1))
    assert freshness(us - 1_000_000, us) == timedelta(seconds=1)
    assert not is_stale(now - timedelta(hours=1), now, threshold=timedelta(hours=1))
    assert is_stale(now - timedelta(hours=1, microseconds=1), now, threshold=timedelta(hours=1))
    assert is_stale(None, now, threshold=timedelta(days=365))
