"""Welch's t-test against scipy.stats.ttest_ind(equal_var=False) on the same data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from mlops.experiments.errors import ExperimentError, InsufficientData
from mlops.experiments.summary import MeanStats
from mlops.experiments.welch import welch_from_stats, welch_test

SCIPY_ALT = {"two-sided": "two-sided", "larger": "greater", "smaller": "less"}


def _datasets() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(11)
    return [
        (rng.normal(10, 2, 40), rng.normal(10.8, 3, 55)),
        (rng.normal(0, 1, 5), rng.normal(0.3, 5, 9)),
        (rng.exponential(3, 2000), rng.exponential(3.2, 1500)),
        (rng.normal(100, 1, 30000), rng.normal(100.02, 1.1, 30000)),
        (rng.integers(0, 2, 300).astype(float), rng.integers(0, 2, 280).astype(float)),
        (np.array([1.0, 2.0]), np.array([5.0, 7.0, 9.0])),
    ]


@pytest.mark.parametrize("index", range(6))
@pytest.mark.parametrize("alternative", ["two-sided", "larger", "smaller"])
@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_matches_scipy(index: int, alternative: str, alpha: float) -> None:
    control, treatment = _datasets()[index]
    ours = welch_test(control, treatment, alpha=alpha, alternative=alternative)
    ref = stats.ttest_ind(treatment, control, equal_var=False, alternative=SCIPY_ALT[alternative])
    ci = ref.confidence_interval(confidence_level=1 - alpha)
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
    assert ours.df == pytest.approx(ref.df, rel=1e-12)
    for mine, theirs in ((ours.ci_low, ci.low), (ours.ci_high, ci.high)):
        if math.isinf(theirs):
            assert mine == theirs
        else:
            assert mine == pytest.approx(theirs, rel=1e-10, abs=1e-12)
    assert ours.estimate == pytest.approx(treatment.mean() - control.mean(), rel=1e-12, abs=1e-15)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n1=st.integers(2, 400), n2=st.integers(2, 400),
       shift=st.floats(-2, 2), scale=st.floats(0.1, 10))
def test_matches_scipy_property(seed: int, n1: int, n2: int, shift: float, scale: float) -> None:
    rng = np.random.default_rng(seed)
    control, treatment = rng.normal(0, 1, n1), rng.normal(shift, scale, n2)
    ours = welch_test(control, treatment)
    ref = stats.ttest_ind(treatment, control, equal_var=False)
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-10, abs=1e-12)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)


def test_from_running_sums_equals_from_values() -> None:
    """The store keeps n, sum, sum_sq; with well-conditioned data that is as good as the values."""
    rng = np.random.default_rng(5)
    a, b = rng.normal(3, 2, 5000), rng.normal(3.1, 2, 4000)
    sums = [MeanStats.from_sums(len(x), float(x.sum()), float((x * x).sum())) for x in (a, b)]
    ours = welch_from_stats(*sums)
    ref = stats.ttest_ind(b, a, equal_var=False)
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-9)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    via_dict = MeanStats.from_dict({"n": 5000, "sum": float(a.sum()), "sum_sq": float((a * a).sum())})
    assert via_dict == sums[0]


def test_lift_and_its_delta_method_interval_cover() -> None:
    """Seeded coverage check: the 95% lift interval covers the true lift about 95% of the time."""
    rng = np.random.default_rng(2024)
    true_lift = 10.5 / 10.0 - 1
    reps, covered = 2000, 0
    for _ in range(reps):
        c, t = rng.normal(10.0, 3.0, 400), rng.normal(10.5, 4.0, 300)
        r = welch_test(c, t)
        assert r.lift == pytest.approx(t.mean() / c.mean() - 1, rel=1e-12)
        covered += r.lift_ci_low <= true_lift <= r.lift_ci_high
    assert 0.935 <= covered / reps <= 0.965


def test_lift_is_none_when_the_control_mean_is_zero() -> None:
    r = welch_from_stats(MeanStats(10, 0.0, 1.0), MeanStats(10, 1.0, 1.0))
    assert r.lift is None and r.lift_ci_low is None


def test_insufficient_data_and_bad_input() -> None:
    with pytest.raises(InsufficientData) as info:
        welch_test([1.0], [1.0, 2.0])
    assert info.value.field == "control.n"
    with pytest.raises(InsufficientData) as info:
        welch_test([1.0, 1.0], [2.0, 2.0])
    assert info.value.field == "var"
    with pytest.raises(ExperimentError) as info:
        welch_test([1.0, 2.0], [1.0, 3.0], alpha=1.2)
    assert info.value.field == "alpha"
    with pytest.raises(ExperimentError) as info:
        welch_test([1.0, 2.0], [1.0, 3.0], alternative="greater")
    assert info.value.field == "alternative"
    with pytest.raises(ExperimentError) as info:
        welch_test([1.0, float("nan")], [1.0, 3.0])
    assert info.value.field == "values"
    with pytest.raises(ExperimentError) as info:
        MeanStats(5, 1.0, -1.0)
    assert info.value.field == "var"
    with pytest.raises(ExperimentError) as info:
        MeanStats.from_dict({"n": 5, "sum": 3.0}, "metrics.m.c")
    assert info.value.field == "metrics.m.c.sum_sq"
