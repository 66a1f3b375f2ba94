"""Hypothesis properties of pure logic: drift and experiment statistics never return NaN for
valid input (and agree with scipy where it has the same statistic), and routing weights, the
experiment allocation and the bandits' choice probabilities always sum to 1.

Derandomized (the same examples every run), so a failure reproduces."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon

from mlops.drift.divergence import jensen_shannon, kl_divergence
from mlops.drift.ks import ks_2samp
from mlops.drift.psi import psi
from mlops.drift.wasserstein import wasserstein
from mlops.experiments import bandits, srm
from mlops.experiments.definition import ExperimentDefinition
from mlops.experiments.proportions import two_proportion_ztest
from mlops.experiments.summary import MeanStats, ProportionStats
from mlops.experiments.welch import welch_from_stats
from mlops.models.routing import Deployment

PROPERTY = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
samples = st.lists(finite, min_size=1, max_size=60)


@st.composite
def histograms(draw: st.DrawFn) -> tuple[list[int], list[int]]:
    """Two histograms on the same bins, each with at least one count."""
    bins = draw(st.integers(min_value=2, max_value=20))
    counts = st.lists(st.integers(min_value=0, max_value=10_000), min_size=bins, max_size=bins)
    p, q = draw(counts), draw(counts)
    assume(sum(p) > 0 and sum(q) > 0)
    return p, q


def _no_nan(*values: float | None) -> None:
    for value in values:
        assert value is None or not math.isnan(value), values


# ------------------------------------------------------------------------------- drift
@PROPERTY
@given(histograms(), st.booleans())
def test_psi_is_finite_and_non_negative(hists: tuple[list[int], list[int]], as_array: bool) -> None:
    p, q = hists
    value = psi(np.asarray(p, dtype=float), np.asarray(q, dtype=float)) if as_array else psi(p, q)
    assert math.isfinite(value) and value >= -1e-12


@PROPERTY
@given(histograms())
def test_divergences_are_never_nan_and_match_scipy(hists: tuple[list[int], list[int]]) -> None:
    p, q = hists
    js = jensen_shannon(p, q)
    assert 0.0 <= js <= math.sqrt(math.log(2)) + 1e-12
    assert js == pytest.approx(jensenshannon(p, q), abs=1e-9)
    kl = kl_divergence(p, q)  # +inf where q has an empty bin that p fills: never NaN
    assert not math.isnan(kl) and kl >= -1e-12
    assert kl == pytest.approx(sps.entropy(p, q), rel=1e-9, abs=1e-12)


@PROPERTY
@given(samples, samples)
def test_ks_and_wasserstein_are_never_nan_and_match_scipy(a: list[float], b: list[float]) -> None:
    result = ks_2samp(a, b)
    assert 0.0 <= result.statistic <= 1.0 and 0.0 <= result.pvalue <= 1.0
    reference = sps.ks_2samp(a, b, method="auto")
    assert result.statistic == pytest.approx(reference.statistic, abs=1e-12)
    assert result.pvalue == pytest.approx(reference.pvalue, rel=1e-6, abs=1e-12)
    w = wasserstein(a, b)
    assert math.isfinite(w) and w >= 0.0
    assert w == pytest.approx(sps.wasserstein_distance(a, b), rel=1e-9, abs=1e-9)


# ------------------------------------------------------------------------------- experiments
@st.composite
def proportions(draw: st.DrawFn) -> tuple[ProportionStats, ProportionStats]:
    n1, n2 = draw(st.integers(1, 10**6)), draw(st.integers(1, 10**6))
    s1, s2 = draw(st.integers(0, n1)), draw(st.integers(0, n2))
    assume(0 < s1 + s2 < n1 + n2)  # a pooled rate of 0 or 1 is InsufficientData, not a number
    return ProportionStats(n=n1, successes=s1), ProportionStats(n=n2, successes=s2)


@PROPERTY
@given(proportions(), st.sampled_from(["two-sided", "larger", "smaller"]))
def test_two_proportion_test_is_never_nan(groups: tuple[ProportionStats, ProportionStats], alternative: str) -> None:
    control, treatment = groups
    r = two_proportion_ztest(control, treatment, alternative=alternative)
    _no_nan(r.estimate, r.statistic, r.p_value, r.ci_low, r.ci_high, r.se_unpooled, r.lift, r.lift_ci_low,
            r.lift_ci_high)
    assert 0.0 <= r.p_value <= 1.0 and r.ci_low <= r.estimate <= r.ci_high


@st.composite
def means(draw: st.DrawFn) -> tuple[MeanStats, MeanStats]:
    def group() -> MeanStats:
        return MeanStats(n=draw(st.integers(2, 10**6)), mean=draw(finite),
                         var=draw(st.floats(min_value=0, max_value=1e6, allow_nan=False)))
    a, b = group(), group()
    assume(a.var > 0 or b.var > 0)  # both zero: the statistic is undefined (InsufficientData)
    return a, b


@PROPERTY
@given(means())
def test_welch_is_never_nan(groups: tuple[MeanStats, MeanStats]) -> None:
    r = welch_from_stats(*groups)
    values = {k: v for k, v in r.to_dict().items() if isinstance(v, float)} if hasattr(r, "to_dict") else {}
    _no_nan(r.statistic, r.p_value, r.ci_low, r.ci_high, *values.values())
    assert 0.0 <= r.p_value <= 1.0


@PROPERTY
@given(st.lists(st.tuples(st.integers(0, 10**6), st.floats(min_value=0.01, max_value=100)), min_size=2, max_size=6))
def test_srm_check_is_never_nan(arms: list[tuple[int, float]]) -> None:
    observed = {f"v{i}": n for i, (n, _) in enumerate(arms)}
    allocation = {f"v{i}": w for i, (_, w) in enumerate(arms)}
    r = srm.check(observed, allocation)
    _no_nan(r.statistic, r.p_value)
    assert 0.0 <= r.p_value <= 1.0


# ------------------------------------------------------------------------------- routing
@PROPERTY
@given(st.integers(1, 50), st.one_of(st.none(), st.integers(1, 50)),
       st.floats(min_value=0, max_value=100, allow_nan=False))
def test_deployment_weights_sum_to_one(champion: int, challenger: int | None, percent: float) -> None:
    weights = Deployment("m", champion, challenger, percent).weights()
    assert math.fsum(weights.values()) / 100.0 == pytest.approx(1.0, abs=1e-12)
    assert all(w > 0 for w in weights.values())


@PROPERTY
@given(st.lists(st.floats(min_value=1e-3, max_value=1e3), min_size=2, max_size=6))
def test_experiment_allocation_sums_to_one(weights: list[float]) -> None:
    definition = ExperimentDefinition.from_dict({
        "experiment_id": "prop", "variants": [{"name": f"v{i}", "weight": w, "model_version": str(i + 1)}
                                              for i, w in enumerate(weights)],
        "primary_metric": {"name": "correct", "kind": "proportion", "baseline": 0.5}, "mde": 0.05})
    allocation = definition.allocation
    assert math.fsum(allocation.values()) == pytest.approx(1.0, abs=1e-12)
    assert all(share > 0 for share in allocation.values())


@PROPERTY
@given(st.sampled_from(bandits.POLICIES), st.integers(2, 5),
       st.lists(st.tuples(st.integers(0, 4), st.floats(min_value=0, max_value=1)), max_size=40),
       st.integers(0, 2**32 - 1))
def test_bandit_probabilities_sum_to_one(policy: str, k: int, rewards: list[tuple[int, float]], seed: int) -> None:
    arms = [f"a{i}" for i in range(k)]
    state = bandits.update_many(bandits.new_state(policy, arms), [(arms[i % k], r) for i, r in rewards])
    probs = bandits.probabilities(state, np.random.default_rng(seed), draws=2_000)
    assert set(probs) == set(arms)
    assert math.fsum(probs.values()) == pytest.approx(1.0, abs=1e-9)
    assert all(0.0 <= p <= 1.0 and not math.isnan(p) for p in probs.values())
    assert bandits.choose(state, np.random.default_rng(seed)) in arms
