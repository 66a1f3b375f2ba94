"""The scipy-free distribution functions against scipy.stats."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mlops.experiments import normal
from mlops.experiments.aa import kolmogorov_sf
from mlops.experiments.srm import chi2_sf

XS = np.concatenate([np.linspace(-38, 38, 761), [-8.5, -1e-9, 0.0, 1e-9, 8.5]])
PS = np.concatenate([np.logspace(-300, -1, 300), np.linspace(0.01, 0.99, 99), 1 - np.logspace(-15, -1, 50)])


def test_cdf_and_sf_match_scipy() -> None:
    for x in XS:
        rel = 1e-13 if abs(x) < 20 else 1e-12  # deep in the tail both are erfc to ~1e-13
        assert normal.cdf(x) == pytest.approx(stats.norm.cdf(x), rel=rel, abs=1e-300), x
        assert normal.sf(x) == pytest.approx(stats.norm.sf(x), rel=rel, abs=1e-300), x
        assert normal.two_sided_p(x) == pytest.approx(2 * stats.norm.sf(abs(x)), rel=rel, abs=1e-300), x


def test_quantiles_match_scipy() -> None:
    ours = np.array([normal.ppf(p) for p in PS])
    np.testing.assert_allclose(ours, stats.norm.ppf(PS), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose([normal.isf(p) for p in PS], stats.norm.isf(PS), rtol=1e-13, atol=1e-14)


def test_p_value_alternatives() -> None:
    assert normal.p_value(1.3, "larger") == pytest.approx(stats.norm.sf(1.3), rel=1e-14)
    assert normal.p_value(1.3, "smaller") == pytest.approx(stats.norm.cdf(1.3), rel=1e-14)
    with pytest.raises(ValueError, match="alternative"):
        normal.p_value(1.0, "greater")
    with pytest.raises(ValueError, match="0 < p < 1"):
        normal.ppf(1.0)


@pytest.mark.parametrize("df", [1, 2, 3, 4, 5, 7, 10, 19, 40])
def test_chi2_sf_matches_scipy(df: int) -> None:
    xs = np.concatenate([np.linspace(1e-6, 3 * df + 60, 400), [0.0, 500.0, 1200.0]])
    ours = np.array([chi2_sf(x, df) for x in xs])
    np.testing.assert_allclose(ours, stats.chi2.sf(xs, df), rtol=1e-11, atol=1e-300)


def test_kolmogorov_sf_matches_scipy() -> None:
    ts = np.linspace(0.05, 3.0, 300)
    np.testing.assert_allclose([kolmogorov_sf(t) for t in ts], stats.kstwobign.sf(ts), rtol=1e-11, atol=1e-15)
