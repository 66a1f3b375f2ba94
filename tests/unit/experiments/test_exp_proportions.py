"""The two-proportion z-test and its intervals against statsmodels on the same counts."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint, proportions_ztest

from mlops.experiments.errors import ExperimentError, InsufficientData
from mlops.experiments.proportions import two_proportion_ztest, wilson_interval
from mlops.experiments.summary import ProportionStats

CASES = [(1000, 100, 1000, 130), (5000, 4500, 4800, 4380), (40, 3, 55, 9), (20000, 200, 21000, 245),
         (12, 0, 15, 2), (300, 150, 280, 120), (100, 99, 100, 100)]


@pytest.mark.parametrize("nc,xc,nt,xt", CASES)
@pytest.mark.parametrize("alternative", ["two-sided", "larger", "smaller"])
def test_statistic_and_p_value_equal_proportions_ztest(nc, xc, nt, xt, alternative) -> None:
    ours = two_proportion_ztest(ProportionStats(nc, xc), ProportionStats(nt, xt), alternative=alternative)
    z, p = proportions_ztest([xt, xc], [nt, nc], alternative=alternative)
    assert ours.statistic == pytest.approx(z, rel=1e-12)
    assert ours.p_value == pytest.approx(p, rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("nc,xc,nt,xt", CASES)
@pytest.mark.parametrize("method", ["newcomb", "wald", "agresti-caffo"])
@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_difference_interval_equals_confint_proportions_2indep(nc, xc, nt, xt, method, alpha) -> None:
    ours = two_proportion_ztest(ProportionStats(nc, xc), ProportionStats(nt, xt), alpha=alpha, ci_method=method)
    low, high = confint_proportions_2indep(xt, nt, xc, nc, method=method, compare="diff", alpha=alpha)
    assert ours.ci_low == pytest.approx(low, rel=1e-12, abs=1e-15)
    assert ours.ci_high == pytest.approx(high, rel=1e-12, abs=1e-15)
    assert ours.estimate == pytest.approx(xt / nt - xc / nc, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("nc,xc,nt,xt", [c for c in CASES if c[1] > 0 and c[3] > 0])
@pytest.mark.parametrize("method", ["log-adjusted", "log"])
def test_lift_interval_equals_the_ratio_interval_minus_one(nc, xc, nt, xt, method) -> None:
    ours = two_proportion_ztest(ProportionStats(nc, xc), ProportionStats(nt, xt), lift_method=method)
    low, high = confint_proportions_2indep(xt, nt, xc, nc, method=method, compare="ratio", alpha=0.05)
    assert ours.lift == pytest.approx((xt / nt) / (xc / nc) - 1, rel=1e-12)
    assert ours.lift_ci_low == pytest.approx(low - 1, rel=1e-12, abs=1e-14)
    assert ours.lift_ci_high == pytest.approx(high - 1, rel=1e-12, abs=1e-14)


def test_one_sided_interval_is_the_bound_of_the_two_sided_interval_at_twice_alpha() -> None:
    c, t = ProportionStats(1000, 100), ProportionStats(1000, 130)
    larger = two_proportion_ztest(c, t, alternative="larger", alpha=0.05)
    low, _ = confint_proportions_2indep(130, 1000, 100, 1000, method="newcomb", alpha=0.10)
    assert larger.ci_low == pytest.approx(low, rel=1e-12) and larger.ci_high == math.inf
    smaller = two_proportion_ztest(c, t, alternative="smaller", alpha=0.05)
    _, high = confint_proportions_2indep(130, 1000, 100, 1000, method="newcomb", alpha=0.10)
    assert smaller.ci_high == pytest.approx(high, rel=1e-12) and smaller.ci_low == -math.inf


@settings(max_examples=100, deadline=None)
@given(nc=st.integers(1, 5000), nt=st.integers(1, 5000), fc=st.floats(0, 1), ft=st.floats(0, 1))
def test_property_against_statsmodels(nc: int, nt: int, fc: float, ft: float) -> None:
    xc, xt = int(round(fc * nc)), int(round(ft * nt))
    if xc + xt in (0, nc + nt):
        with pytest.raises(InsufficientData):
            two_proportion_ztest(ProportionStats(nc, xc), ProportionStats(nt, xt))
        return
    ours = two_proportion_ztest(ProportionStats(nc, xc), ProportionStats(nt, xt))
    z, p = proportions_ztest([xt, xc], [nt, nc])
    assert ours.statistic == pytest.approx(z, rel=1e-11, abs=1e-12)
    assert ours.p_value == pytest.approx(p, rel=1e-11, abs=1e-300)
    low, high = confint_proportions_2indep(xt, nt, xc, nc)
    assert (ours.ci_low, ours.ci_high) == pytest.approx((low, high), rel=1e-11, abs=1e-14)


@pytest.mark.parametrize("x,n", [(0, 10), (10, 10), (3, 40), (450, 1000), (1, 100000)])
def test_wilson_interval_equals_proportion_confint(x: int, n: int) -> None:
    assert wilson_interval(x, n, 0.05) == pytest.approx(proportion_confint(x, n, alpha=0.05, method="wilson"),
                                                         rel=1e-12, abs=1e-15)


def test_bad_input_names_the_field() -> None:
    c, t = ProportionStats(100, 10), ProportionStats(100, 12)
    for kwargs, field in [({"alpha": 0}, "alpha"), ({"alternative": "both"}, "alternative"),
                          ({"ci_method": "exact"}, "ci_method"), ({"lift_method": "score"}, "lift_method")]:
        with pytest.raises(ExperimentError) as info:
            two_proportion_ztest(c, t, **kwargs)
        assert info.value.field == field
    with pytest.raises(ExperimentError) as info:
        ProportionStats(10, 11)
    assert info.value.field == "successes"
    with pytest.raises(ExperimentError) as info:
        ProportionStats.from_dict({"n": 10.5, "successes": 1}, "metrics.rate.control")
    assert info.value.field == "metrics.rate.control.n"
    with pytest.raises(InsufficientData) as info:
        two_proportion_ztest(ProportionStats(0, 0), t)
    assert info.value.field == "control.n"
