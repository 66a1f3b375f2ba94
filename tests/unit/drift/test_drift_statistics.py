"""PSI, KL, Jensen-Shannon, Wasserstein, chi-square, the one-sort merge and the corrections
equal their scipy / statsmodels counterparts on the same data."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon
from statsmodels.stats.multitest import multipletests

from mlops.drift import chisquare as chi
from mlops.drift import correction, divergence, psi, twosample, wasserstein
from mlops.drift.numeric import numeric_drift_many, numeric_drift_raw

RTOL = 1e-9


def histograms(rng: np.random.Generator, k: int, zeros: bool) -> tuple[np.ndarray, np.ndarray]:
    p = rng.integers(0, 50, k).astype(float)
    q = rng.integers(0, 50, k).astype(float)
    if not zeros:
        p += 1
        q += 1
    p[0] += 1  # never all zero
    q[-1] += 1
    return p, q


@pytest.mark.parametrize("zeros", [False, True])
def test_kl_equals_scipy_entropy(zeros: bool) -> None:
    rng = np.random.default_rng(1)
    for k in (2, 5, 10, 40):
        p, q = histograms(rng, k, zeros)
        expected = float(stats.entropy(p, q))
        got = divergence.kl_divergence(p, q)
        assert got == expected or got == pytest.approx(expected, rel=RTOL)


@pytest.mark.parametrize("zeros", [False, True])
def test_jensen_shannon_equals_scipy(zeros: bool) -> None:
    rng = np.random.default_rng(2)
    for k in (2, 5, 10, 40):
        p, q = histograms(rng, k, zeros)
        assert divergence.jensen_shannon(p, q) == pytest.approx(float(jensenshannon(p, q)), rel=RTOL, abs=1e-15)


def test_divergences_vectorise_over_features() -> None:
    rng = np.random.default_rng(3)
    P = rng.integers(1, 30, (7, 9)).astype(float)
    Q = rng.integers(1, 30, (7, 9)).astype(float)
    np.testing.assert_allclose(divergence.kl_divergence(P, Q), [stats.entropy(p, q) for p, q in zip(P, Q)], rtol=RTOL)
    np.testing.assert_allclose(divergence.jensen_shannon(P, Q), [jensenshannon(p, q) for p, q in zip(P, Q)], rtol=RTOL)
    np.testing.assert_allclose(psi.psi(P, Q), [psi.psi(p, q) for p, q in zip(P, Q)], rtol=RTOL)


def test_psi_definition_and_epsilon() -> None:
    ref, cur = np.array([30, 30, 40, 0]), np.array([10, 50, 40, 0])
    p, q = np.array([0.3, 0.3, 0.4, 1e-4]), np.array([0.1, 0.5, 0.4, 1e-4])
    assert psi.psi(ref, cur) == pytest.approx(float(np.sum((q - p) * np.log(q / p))), rel=1e-15)
    emptied = psi.psi([10, 90], [0, 100])  # a 10% bin that empties: (1e-4 - 0.1) ln(1e-4 / 0.1) + ...
    assert emptied == pytest.approx((1e-4 - 0.1) * np.log(1e-4 / 0.1) + (1.0 - 0.9) * np.log(1.0 / 0.9), rel=1e-12)
    assert psi.psi([5, 5], [5, 5]) == 0.0


def test_quantile_edges_are_numpy_quantiles_deduplicated() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=1001)
    np.testing.assert_array_equal(psi.quantile_edges(x, 10), np.quantile(x, np.arange(1, 10) / 10))
    discrete = np.repeat([1.0, 2.0, 3.0], [700, 200, 100])
    expected = np.unique(np.quantile(discrete, np.arange(1, 10) / 10))
    assert psi.quantile_edges(discrete, 10).tolist() == expected.tolist() and len(expected) < 9


@pytest.mark.parametrize("seed", range(3))
def test_wasserstein_equals_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(20):
        n, m = (int(v) for v in rng.integers(1, 3000, 2))
        a = rng.standard_t(3, n) * rng.uniform(0.1, 100)
        b = rng.standard_t(3, m) * rng.uniform(0.1, 100) + rng.normal()
        if seed == 2:
            a, b = np.round(a), np.round(b)  # ties: the exact path
        assert wasserstein.wasserstein(a, b) == pytest.approx(float(stats.wasserstein_distance(a, b)), rel=RTOL)


def test_normalised_wasserstein() -> None:
    assert wasserstein.normalised_wasserstein(0.5, 2.0) == 0.25
    assert wasserstein.normalised_wasserstein(0.0, 0.0) == 0.0
    assert wasserstein.normalised_wasserstein(1.0, 0.0) == float("inf")


finite = st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=True, width=64)
sample = st.one_of(
    st.lists(finite, min_size=1, max_size=80),
    st.lists(st.sampled_from([-2.0, -0.0, 0.0, -5e-324, 1e-310, 5e-324, 1.0, 1.0000000000000002, 3.5]),
             min_size=1, max_size=80),
    st.lists(st.integers(-3, 3).map(float), min_size=1, max_size=80),
)


@settings(max_examples=100, deadline=None)
@given(sample, sample)
def test_merge_gives_scipy_statistic_distance_and_counts(a: list[float], b: list[float]) -> None:
    x, y = np.array(a), np.array(b)
    edges = np.unique(np.concatenate([x[:3], y[:2], [0.0, -1e300, 1e300]]))
    t = twosample.two_sample(x, y, edges)
    ref = stats.ks_2samp(x, y, method="asymp")
    assert t.ks_statistic == pytest.approx(float(ref.statistic), abs=1e-15)
    with np.errstate(all="ignore"):
        w = float(stats.wasserstein_distance(x, y))
    if np.isfinite(w):
        assert t.wasserstein == pytest.approx(w, rel=1e-9, abs=1e-300)
    assert t.cur_below.tolist() == np.searchsorted(np.sort(y), edges, side="left").tolist()
    assert t.ref_below.tolist() == np.searchsorted(np.sort(x), edges, side="left").tolist()


def test_merge_fast_path_and_edge_recount() -> None:
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=5000), rng.normal(0.1, 1, size=4000)
    edge = np.nextafter(x[17], np.inf)  # an edge one ulp above a value: recounted on the raw data
    edges = np.array([-1.0, edge, 0.5])
    t = twosample.two_sample(x, y, np.sort(edges))
    assert t.ref_below.tolist() == [int((x < e).sum()) for e in np.sort(edges)]
    assert t.cur_below.tolist() == [int((y < e).sum()) for e in np.sort(edges)]
    assert t.ks_statistic == pytest.approx(float(stats.ks_2samp(x, y).statistic), abs=1e-15)


@pytest.mark.parametrize("k", [2, 3, 6, 30, 400])
def test_chisquare_equals_scipy(k: int) -> None:
    rng = np.random.default_rng(k)
    for _ in range(10):
        obs = rng.integers(0, 200, k).astype(float)
        shares = rng.dirichlet(np.ones(k))
        exp = shares * obs.sum()
        ours = chi.chisquare(obs, exp)
        ref = stats.chisquare(obs, exp)
        assert ours.statistic == pytest.approx(float(ref.statistic), rel=1e-12)
        assert ours.pvalue == pytest.approx(float(ref.pvalue), rel=RTOL, abs=1e-300)


def test_chi2_sf_grid_equals_scipy() -> None:
    for dof in [1, 2, 3, 5, 10, 50, 199, 1000, 5000]:
        for x in np.concatenate([np.linspace(0, 3 * dof + 50, 23), [dof - 0.5, dof, dof + 0.5, 1e-3]]):
            assert chi.chi2_sf(float(x), dof) == pytest.approx(float(stats.chi2.sf(x, dof)), rel=RTOL, abs=1e-300)


def test_expected_counts_scale_reference_frequencies() -> None:
    cats, obs, exp = chi.expected_from_reference({"a": 60, "b": 40}, {"b": 20, "a": 20, "c": 10})
    assert cats == ["a", "b", "c"] and obs.tolist() == [20, 20, 10]
    assert exp.tolist() == [30.0, 20.0, 0.0]  # 50 current values split 60:40
    r = chi.chisquare(obs, exp)
    assert r.statistic == float("inf") and r.pvalue == 0.0  # an unseen category is drift


@pytest.mark.parametrize("method", ["bonferroni", "holm"])
def test_corrections_equal_statsmodels(method: str) -> None:
    rng = np.random.default_rng(5)
    for m in (1, 2, 7, 100, 590):
        p = np.concatenate([rng.uniform(0, 0.01, m // 5), rng.uniform(0, 1, m - m // 5)])
        p[rng.integers(0, m, m // 10)] = p[0]  # ties
        rng.shuffle(p)
        for alpha in (0.01, 0.05, 0.2):
            reject, adjusted = correction.correct(p, alpha, method)
            ref_reject, ref_adjusted, _, _ = multipletests(p, alpha=alpha, method=method)
            assert reject.tolist() == ref_reject.tolist()
            np.testing.assert_allclose(adjusted, ref_adjusted, rtol=1e-15)


def test_correction_name_is_checked() -> None:
    with pytest.raises(ValueError):
        correction.correct([0.1], 0.05, "sidak")


def test_numeric_drift_many_equals_scipy_per_column() -> None:
    rng = np.random.default_rng(9)
    refs = [rng.normal(size=n) for n in (50, 800, 12_000)]
    curs = [rng.normal(0.2, 1.3, size=n) for n in (70, 800, 11_000)]
    curs[1][::7] = np.nan  # NaN is dropped
    results = numeric_drift_many(refs, curs, n_bins=10, n_jobs=2)
    for r, c, d in zip(refs, curs, results):
        c = c[~np.isnan(c)]
        ks = stats.ks_2samp(r, c)
        assert d.ks_pvalue == pytest.approx(float(ks.pvalue), rel=RTOL, abs=1e-300)
        assert d.wasserstein == pytest.approx(float(stats.wasserstein_distance(r, c)), rel=RTOL)
        assert d.wasserstein_norm == pytest.approx(d.wasserstein / float(np.std(r)), rel=1e-15)
        edges = np.quantile(r, np.arange(1, 10) / 10)
        rc = np.histogram(r, np.concatenate([[-np.inf], edges, [np.inf]]))[0]
        cc = np.histogram(c, np.concatenate([[-np.inf], edges, [np.inf]]))[0]
        assert d.reference_counts.tolist() == rc.tolist() and d.current_counts.tolist() == cc.tolist()
        pr, pc = psi.shares(rc), psi.shares(cc)
        assert d.psi == pytest.approx(float(np.sum((pc - pr) * np.log(pc / pr))), rel=1e-12)
        assert d.kl == pytest.approx(float(stats.entropy(pr, pc)), rel=RTOL)
        assert d.jensenshannon == pytest.approx(float(jensenshannon(rc, cc)), rel=RTOL)
    assert numeric_drift_raw(refs[0], curs[0]).ks_pvalue == results[0].ks_pvalue


def test_wasserstein_far_from_zero_stays_exact() -> None:
    """200 values at 1e6 spread over 1e-5 (about 86,000 ulps, so no two share a truncated
    bit pattern): one ulp of the values is visible in W1 (~2e-6), so the merge must not keep
    its one-ulp shortcut here."""
    for seed in range(5):
        rng = np.random.default_rng(seed)
        a = 1e6 + rng.uniform(0, 1e-5, 100)
        b = 1e6 + 2e-6 + rng.uniform(0, 1e-5, 100)
        assert wasserstein.wasserstein(a, b) == pytest.approx(float(stats.wasserstein_distance(a, b)), rel=1e-12)
