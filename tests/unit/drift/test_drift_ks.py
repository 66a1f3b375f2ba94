"""KS statistic and p-value equal scipy's ks_2samp (method="auto") in both regimes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.stats._stats_pythran import _compute_outer_prob_inside_method

from mlops.drift import kolmogorov, ks

RTOL = 1e-9


def close(a: float, b: float, rtol: float = RTOL) -> bool:
    return a == b or abs(a - b) <= rtol * abs(b) + 1e-300


def scipy_auto(a: np.ndarray, b: np.ndarray):
    return stats.ks_2samp(a, b, method="auto")


@pytest.mark.parametrize("seed", range(6))
def test_exact_regime_equals_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(25):
        n1, n2 = (int(v) for v in rng.integers(1, 400, 2))
        if seed % 2:
            n2 = n1  # equal sizes: the closed form
        shift = rng.choice([0.0, 0.2, 0.6])
        a = rng.normal(size=n1)
        b = rng.normal(shift, 1, size=n2)
        if seed >= 4:  # ties within and across samples
            a, b = np.round(a, 1), np.round(b, 1)
        ours = ks.ks_2samp(a, b)
        ref = scipy_auto(a, b)
        assert ours.method == "exact"
        assert ours.statistic == pytest.approx(float(ref.statistic), rel=0, abs=1e-15)
        assert close(ours.pvalue, float(ref.pvalue)), (n1, n2, ours, ref)


def test_asymptotic_regime_equals_scipy() -> None:
    rng = np.random.default_rng(7)
    for n1, n2, shift in [(10_001, 300, 0.1), (20_000, 15_000, 0.02), (12_000, 50, 0.5),
                          (30_000, 30_000, 0.0), (10_500, 40_000, 0.05), (11_000, 11_000, 0.9)]:
        a = rng.normal(size=n1)
        b = rng.normal(shift, 1, size=n2)
        ours = ks.ks_2samp(a, b)
        ref = scipy_auto(a, b)
        assert ours.method == "asymp"
        assert ours.statistic == pytest.approx(float(ref.statistic), rel=1e-15)
        assert close(ours.pvalue, float(ref.pvalue)), (n1, n2, ours.pvalue, ref.pvalue)


def test_regime_switches_exactly_at_scipy_rule() -> None:
    rng = np.random.default_rng(3)
    a = rng.normal(size=10_000)
    b = rng.normal(0.05, 1, size=600)
    assert ks.ks_2samp(a, b).method == "exact"
    assert ks.ks_2samp(np.append(a, 0.1), b).method == "asymp"
    for x, y in [(a, b), (np.append(a, 0.1), b)]:
        assert close(ks.ks_2samp(x, y).pvalue, float(scipy_auto(x, y).pvalue))


def test_explicit_methods_equal_scipy() -> None:
    rng = np.random.default_rng(11)
    a, b = rng.normal(size=300), rng.normal(0.3, 1, size=200)
    for method in ("exact", "asymp"):
        ours = ks.ks_2samp(a, b, method=method)
        ref = stats.ks_2samp(a, b, method=method)
        assert close(ours.pvalue, float(ref.pvalue)) and ours.method == method


def test_lattice_counts_equal_scipy_compiled_loop_in_both_orders() -> None:
    rng = np.random.default_rng(0)
    for _ in range(150):
        m, n = (int(v) for v in rng.integers(1, 250, 2))
        if m == n:
            continue
        g = math.gcd(m, n)
        lcm = m // g * n
        h = int(rng.integers(1, max(2, lcm // 3)))
        big, small = max(m, n), min(m, n)
        expected = _compute_outer_prob_inside_method(m, n, g, h)
        maxj = min(int(math.ceil(h / (big // g))), small + 1)
        by_column = ks._outer_prob_columns(big, small, big // g, small // g, h, 0, maxj)
        by_diagonal = ks._outer_prob_diagonals(big, small, big // g, small // g, h)
        assert by_column == expected and by_diagonal == expected, (m, n, h)


def test_wide_band_uses_diagonals_and_matches_scipy() -> None:
    m, n = 4000, 3001
    g = math.gcd(m, n)
    h = int(round(0.02 * (m // g) * n))
    assert m * min(2 * h // (m // g) + 2, n + 1) > 60_000  # the vectorised order is taken
    assert ks.outer_prob_inside(m, n, g, h) == _compute_outer_prob_inside_method(m, n, g, h)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=60),
       st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=60))
def test_any_small_samples_equal_scipy(a: list[float], b: list[float]) -> None:
    ours = ks.ks_2samp(a, b)
    ref = scipy_auto(np.array(a), np.array(b))
    assert ours.statistic == pytest.approx(float(ref.statistic), abs=1e-15)
    assert close(ours.pvalue, float(ref.pvalue))


def test_kstwo_sf_every_branch_equals_scipy() -> None:
    rng = np.random.default_rng(1)
    branches = set()
    for n in [1, 2, 3, 7, 30, 100, 140, 141, 500, 5_000, 50_000, 99_999, 100_001]:
        k = 1 if n > 5_000 else 4  # scipy's own smirnov takes ~0.1-0.5 s per call at large n
        xs = list(rng.uniform(0, 1, 3 * k)) + list(rng.uniform(0, 4 / math.sqrt(n), 6 * k))
        xs += [0.4 / n, 0.75 / n, 1.0 / n, (n - 1) / n, 0.5, 1.0, 0.0, 1.2 / math.sqrt(n), 0.5 / n**0.67]
        for x in xs:
            x = float(min(x, 1.0))
            nx2 = n * x * x
            branches.add((n <= 140, round(min(nx2, 400))))
            assert close(kolmogorov.kstwo_sf(x, n), float(stats.kstwo.sf(x, n))), (n, x)
    assert len(branches) > 25


def test_smirnov_equals_scipy_special() -> None:
    rng = np.random.default_rng(2)
    for n in [2, 5, 10, 16, 36, 81, 141, 600, 4_000, 50_000, 1_000_001]:
        k = 1 if n > 5_000 else 3
        for x in list(rng.uniform(0, 1, 3 * k)) + list(rng.uniform(0, 10 / math.sqrt(n), 5 * k)) + [0.5 / n, 1.0 / n]:
            x = float(min(x, 1.0))
            assert close(kolmogorov.smirnov_sf(n, x), float(scipy.special.smirnov(n, x))), (n, x)


def test_p_value_validation() -> None:
    with pytest.raises(ValueError):
        ks.ks_pvalue(0.1, 0, 10)
    with pytest.raises(ValueError):
        ks.ks_2samp([], [1.0])
    assert ks.ks_pvalue(0.0, 10, 20).pvalue == 1.0
