"""Sample size and power against statsmodels' solvers on the same inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.power import NormalIndPower, TTestIndPower, normal_sample_size_one_tail
from statsmodels.stats.proportion import (
    power_proportions_2indep,
    proportion_effectsize,
    samplesize_proportions_2indep_onetail,
)

from mlops.experiments.definition import ExperimentDefinition
from mlops.experiments.errors import ExperimentError
from mlops.experiments.power import (
    duration,
    plan,
    power_means,
    power_proportions,
    sample_size_means,
    sample_size_proportions,
)
from mlops.experiments.sequential import sample_size_factor

MEANS = [(0.5, 2.0, 2.0, 1.0, 0.05, 0.8), (0.1, 1.0, 1.5, 2.0, 0.01, 0.9), (3.0, 10.0, 7.0, 0.5, 0.1, 0.6),
         (0.02, 0.3, 0.3, 1.0, 0.05, 0.8), (-1.5, 4.0, 6.0, 3.0, 0.2, 0.95)]
PROPS = [(0.1, 0.12, 1.0, 0.05, 0.8), (0.5, 0.45, 2.0, 0.01, 0.9), (0.9, 0.92, 0.5, 0.05, 0.8),
         (0.02, 0.025, 1.0, 0.05, 0.8), (0.3, 0.2, 0.25, 0.1, 0.7)]


def _sp(sc: float, st_: float, r: float) -> float:
    """The pooled sd that makes NormalIndPower's effect size equal delta / se."""
    return math.sqrt((sc ** 2 + st_ ** 2 / r) * r / (1 + r))


@pytest.mark.parametrize("delta,sc,st_,r,alpha,power", MEANS)
def test_means_formula_equals_the_issue_formula_and_statsmodels_one_tail(delta, sc, st_, r, alpha, power) -> None:
    s = sample_size_means(delta, sc, st_, alpha=alpha, power=power, ratio=r)
    ref = normal_sample_size_one_tail(abs(delta), power, alpha / 2, std_null=math.sqrt(sc ** 2 + st_ ** 2 / r))
    assert s.n_control == pytest.approx(ref, rel=1e-12)
    assert s.n_treatment == pytest.approx(ref * r, rel=1e-12)
    assert s.n_control_ceil == math.ceil(ref) and s.n_treatment_ceil == math.ceil(ref * r - 1e-9)
    if r == 1.0:  # the issue's formula as written
        from statistics import NormalDist
        z = NormalDist().inv_cdf
        n = (z(1 - alpha / 2) + z(power)) ** 2 * (sc ** 2 + st_ ** 2) / delta ** 2
        assert s.n_control == pytest.approx(n, rel=1e-12)


@pytest.mark.parametrize("delta,sc,st_,r,alpha,power", MEANS)
def test_means_exact_equals_normal_ind_power_solver(delta, sc, st_, r, alpha, power) -> None:
    s = sample_size_means(delta, sc, st_, alpha=alpha, power=power, ratio=r, method="exact")
    es = abs(delta) / _sp(sc, st_, r)
    solved = NormalIndPower().solve_power(effect_size=es, nobs1=None, alpha=alpha, power=power, ratio=r)
    assert s.n_control == pytest.approx(solved, abs=1e-5)  # statsmodels' brentq xtol
    # stricter: statsmodels' own power function at our n is the target power
    assert NormalIndPower().power(es, s.n_control, alpha, ratio=r) == pytest.approx(power, abs=1e-12)
    assert power_means(delta, sc, st_, s.n_control, alpha=alpha, ratio=r) == pytest.approx(power, abs=1e-12)
    # the far tail only ever lowers the requirement, and only a little
    one_tail = sample_size_means(delta, sc, st_, alpha=alpha, power=power, ratio=r)
    assert s.n_control <= one_tail.n_control < s.n_control * 1.01


@pytest.mark.parametrize("delta,sc,st_,r,alpha,power", MEANS)
def test_power_means_equals_normal_ind_power(delta, sc, st_, r, alpha, power) -> None:
    es = delta / _sp(sc, st_, r)
    for n in (10, 123.4, 5000):
        for alt in ("two-sided", "larger", "smaller"):
            ref = NormalIndPower().power(es, n, alpha, ratio=r, alternative=alt)
            assert power_means(delta, sc, st_, n, alpha=alpha, ratio=r, alternative=alt) == pytest.approx(
                ref, rel=1e-12, abs=1e-300)


def test_means_one_sided() -> None:
    s = sample_size_means(0.4, 1.0, alpha=0.05, power=0.8, alternative="larger", method="exact")
    solved = NormalIndPower().solve_power(effect_size=0.4 / 1.0, nobs1=None, alpha=0.05, power=0.8,
                                          alternative="larger")
    assert s.n_control == pytest.approx(solved, abs=1e-5)
    assert s.n_control == pytest.approx(normal_sample_size_one_tail(0.4, 0.8, 0.05, std_null=math.sqrt(2)), rel=1e-12)


def test_t_test_solver_differs_by_under_one_entity_for_realistic_sizes() -> None:
    """Documented, not matched: TTestIndPower's noncentral t (n in the hundreds and up)."""
    s = sample_size_means(0.2, 1.0, alpha=0.05, power=0.8, method="exact")
    t = TTestIndPower().solve_power(effect_size=0.2, nobs1=None, alpha=0.05, power=0.8)
    assert 0 < t - s.n_control < 1.0


@pytest.mark.parametrize("pc,pt,r,alpha,power", PROPS)
def test_proportions_pooled_equals_statsmodels_onetail(pc, pt, r, alpha, power) -> None:
    s = sample_size_proportions(pc, pt, alpha=alpha, power=power, ratio=r)
    ref = samplesize_proportions_2indep_onetail(pt - pc, pc, power, ratio=1 / r, alpha=alpha)
    assert s.n_treatment == pytest.approx(ref, rel=1e-12)
    assert s.n_control == pytest.approx(ref / r, rel=1e-12)
    achieved = power_proportions_2indep(pt - pc, pc, s.n_treatment, ratio=1 / r, alpha=alpha).power
    assert achieved >= power - 1e-6  # one tail plus a sliver of the other
    assert power_proportions(pc, pt, s.n_control, alpha=alpha, ratio=r) == pytest.approx(achieved, rel=1e-12)


@pytest.mark.parametrize("pc,pt,r,alpha,power", PROPS)
def test_proportions_arcsine_equals_normal_ind_power_with_cohens_h(pc, pt, r, alpha, power) -> None:
    s = sample_size_proportions(pc, pt, alpha=alpha, power=power, ratio=r, method="arcsine")
    h = abs(proportion_effectsize(pt, pc))
    solved = NormalIndPower().solve_power(effect_size=h, nobs1=None, alpha=alpha, power=power, ratio=r)
    assert s.n_control == pytest.approx(solved, abs=1e-5)
    assert NormalIndPower().power(h, s.n_control, alpha, ratio=r) == pytest.approx(power, abs=1e-12)


@settings(max_examples=80, deadline=None)
@given(pc=st.floats(0.01, 0.95), lift=st.floats(0.02, 0.5), r=st.floats(0.2, 5), alpha=st.floats(0.001, 0.2),
       power=st.floats(0.5, 0.99))
def test_proportions_property(pc: float, lift: float, r: float, alpha: float, power: float) -> None:
    pt = min(pc * (1 + lift), 0.99)
    if pt - pc < 1e-4:
        return
    s = sample_size_proportions(pc, pt, alpha=alpha, power=power, ratio=r)
    ref = samplesize_proportions_2indep_onetail(pt - pc, pc, power, ratio=1 / r, alpha=alpha)
    assert s.n_treatment == pytest.approx(ref, rel=1e-11)
    for alt in ("two-sided", "larger"):
        ours = power_proportions(pc, pt, 321.5, alpha=alpha, ratio=r, alternative=alt)
        theirs = power_proportions_2indep(pt - pc, pc, 321.5 * r, ratio=1 / r, alpha=alpha, alternative=alt).power
        assert ours == pytest.approx(theirs, rel=1e-11, abs=1e-300)


@pytest.mark.parametrize("call,field", [
    (lambda: sample_size_means(0.5, 1.0, alpha=0), "alpha"),
    (lambda: sample_size_means(0.5, 1.0, alpha=0.7), "alpha"),
    (lambda: sample_size_means(0.5, 1.0, power=1.0), "power"),
    (lambda: sample_size_means(0.5, 1.0, alpha=0.1, power=0.05), "power"),
    (lambda: sample_size_means(0.0, 1.0), "delta"),
    (lambda: sample_size_means(-0.5, 1.0, alternative="larger"), "delta"),
    (lambda: sample_size_means(0.5, 0.0), "sd_control"),
    (lambda: sample_size_means(0.5, 1.0, -1.0), "sd_treatment"),
    (lambda: sample_size_means(0.5, 1.0, ratio=0), "ratio"),
    (lambda: sample_size_means(0.5, 1.0, method="bayes"), "method"),
    (lambda: sample_size_proportions(0.0, 0.1), "p_control"),
    (lambda: sample_size_proportions(0.1, 1.0), "p_treatment"),
    (lambda: sample_size_proportions(0.1, 0.1), "p_treatment"),
    (lambda: sample_size_proportions(0.1, 0.2, alternative="greater"), "alternative"),
    (lambda: duration({"a": 10}, {"a": 0.5}, 0), "daily_entities"),
    (lambda: duration({"a": 10}, {"b": 0.5}, 100), "allocation.a"),
])
def test_bad_input_names_the_field(call, field: str) -> None:
    with pytest.raises(ExperimentError) as info:
        call()
    assert info.value.field == field


def test_duration_is_set_by_the_slowest_variant() -> None:
    d = duration({"control": 1000, "treatment": 1000}, {"control": 0.8, "treatment": 0.2}, daily_entities=500,
                 traffic=0.5)
    assert d.limiting_variant == "treatment"
    assert d.days == pytest.approx(1000 / (500 * 0.5 * 0.2))
    assert d.days_ceil == 20 and d.entities_needed == 5000


def _definition(**overrides) -> ExperimentDefinition:
    base = {"experiment_id": "e", "variants": [{"name": "c", "weight": 2}, {"name": "t1", "weight": 1},
                                               {"name": "t2", "weight": 1}],
            "primary_metric": {"name": "rate", "baseline": 0.2}, "guardrail_metrics": [{"name": "g", "kind": "mean"}],
            "mde": 0.1, "alpha": 0.05, "power": 0.8, "sequential": False}
    base.update(overrides)
    return ExperimentDefinition.from_dict(base)


def test_plan_per_comparison_with_bonferroni_alpha_and_ratio() -> None:
    p = plan(_definition(), daily_entities=1000)
    assert p.comparisons == 4 and p.alpha_per_comparison == pytest.approx(0.0125)
    ref = samplesize_proportions_2indep_onetail(0.02, 0.2, 0.8, ratio=2.0, alpha=0.0125)  # nobs1 = treatment
    assert p.per_comparison["t1"]["n_treatment"] == pytest.approx(ref, rel=1e-12)
    assert p.fixed == {"c": math.ceil(2 * ref), "t1": math.ceil(ref), "t2": math.ceil(ref)}
    assert p.required == p.fixed and p.sequential_factor == 1.0
    assert p.duration is not None  # whole entities, at 1000 a day split 2:1:1
    assert p.duration.days == pytest.approx(max(p.required["c"] / 500, p.required["t1"] / 250))


def test_plan_sequential_and_uncorrected_and_mean_metric() -> None:
    p = plan(_definition(sequential=True, correction="none"))
    assert p.alpha_per_comparison == 0.05
    assert p.sequential_factor == pytest.approx(sample_size_factor(0.05, 0.8))
    assert p.required["t1"] == math.ceil(p.per_comparison["t1"]["n_treatment"] * p.sequential_factor - 1e-9)
    m = plan(_definition(primary_metric={"name": "score", "kind": "mean", "baseline": 50.0, "std": 10.0},
                         mde=0.02, mde_kind="relative", correction="none",
                         variants=[{"name": "c", "weight": 1}, {"name": "t", "weight": 1}]))
    expected = normal_sample_size_one_tail(1.0, 0.8, 0.025, std_null=math.sqrt(200.0))
    assert m.per_comparison["t"]["n_control"] == pytest.approx(expected, rel=1e-12)
    down = plan(_definition(primary_metric={"name": "err", "baseline": 0.2, "direction": "decrease"}))
    ref = samplesize_proportions_2indep_onetail(-0.02, 0.2, 0.8, ratio=2.0, alpha=0.0125)
    assert down.per_comparison["t1"]["n_treatment"] == pytest.approx(ref, rel=1e-12)
    assert np.isfinite(down.delta) and down.delta < 0
