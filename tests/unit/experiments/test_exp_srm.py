"""Sample-ratio mismatch: equal to scipy's chi-square, fires on a skewed split only."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mlops.experiments.errors import ExperimentError
from mlops.experiments.srm import THRESHOLD, check


@pytest.mark.parametrize("observed,allocation", [
    ({"a": 5000, "b": 5000}, {"a": 1, "b": 1}),
    ({"a": 5200, "b": 4800}, {"a": 1, "b": 1}),
    ({"a": 2010, "b": 2950, "c": 5040}, {"a": 0.2, "b": 0.3, "c": 0.5}),
    ({"a": 90, "b": 10}, {"a": 0.9, "b": 0.1}),
    ({"a": 0, "b": 1000}, {"a": 1, "b": 1}),
    ({"a": 7, "b": 3, "c": 12, "d": 9, "e": 4}, {"a": 1, "b": 1, "c": 1, "d": 1, "e": 1}),
])
def test_statistic_and_p_value_equal_scipy_chisquare(observed, allocation) -> None:
    r = check(observed, allocation)
    names = list(allocation)
    w = np.array([allocation[n] for n in names], dtype=float)
    obs = np.array([observed[n] for n in names], dtype=float)
    ref = stats.chisquare(obs, obs.sum() * w / w.sum())
    assert r.statistic == pytest.approx(ref.statistic, rel=1e-12, abs=1e-12)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-11, abs=1e-300)
    assert r.df == len(names) - 1
    assert r.alert == (ref.pvalue < THRESHOLD)


def test_fires_on_a_skewed_split_and_not_on_a_fair_one() -> None:
    rng = np.random.default_rng(99)
    fair_alerts = skew_alerts = 0
    for _ in range(200):
        fair = rng.multinomial(20000, [0.5, 0.5])
        skewed = rng.multinomial(20000, [0.52, 0.48])  # 2 points off: a real logging bug
        fair_alerts += check({"c": fair[0], "t": fair[1]}, {"c": 1, "t": 1}).alert
        skew_alerts += check({"c": skewed[0], "t": skewed[1]}, {"c": 1, "t": 1}).alert
    assert fair_alerts <= 2  # expected 0.2 false alarms in 200 at p < 0.001
    assert skew_alerts >= 195


def test_no_data_is_no_alert() -> None:
    r = check({"a": 0, "b": 0}, {"a": 1, "b": 1})
    assert r.p_value == 1.0 and not r.alert and r.total == 0


@pytest.mark.parametrize("observed,allocation,field", [
    ({"a": 10}, {"a": 1, "b": 1}, "observed.b"),
    ({"a": 10, "b": 1, "c": 1}, {"a": 1, "b": 1}, "observed.c"),
    ({"a": -1, "b": 1}, {"a": 1, "b": 1}, "observed.a"),
    ({"a": 1.5, "b": 1}, {"a": 1, "b": 1}, "observed.a"),
    ({"a": 1, "b": 1}, {"a": 1, "b": 0}, "allocation.b"),
    ({"a": 1}, {"a": 1}, "allocation"),
])
def test_bad_input_names_the_field(observed, allocation, field) -> None:
    with pytest.raises(ExperimentError) as info:
        check(observed, allocation)
    assert info.value.field == field
