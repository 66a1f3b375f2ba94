"""The always-valid confidence sequence: its algebra, its tuning, and peeking under A/A."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize

from mlops.experiments.aa import peeking_simulation
from mlops.experiments.errors import ExperimentError
from mlops.experiments.sequential import (
    always_valid_p,
    boundary_z,
    confidence_sequence,
    information_fraction,
    mixture_constant,
    sample_size_factor,
)
from mlops.experiments import normal


def test_boundary_is_the_mixture_martingale_crossing_1_over_alpha() -> None:
    """M = sqrt(rho/(V+rho)) exp(S^2 / (2 (V + rho))) equals 1/alpha exactly on the boundary."""
    for alpha in (0.1, 0.05, 0.01):
        for t in (0.01, 0.3, 1.0, 4.0):
            v = 1.0 / 0.04  # se = 0.2
            rho = v / (mixture_constant(alpha) * t)
            b = boundary_z(t, alpha)
            s = b * math.sqrt(v)  # score S = z sqrt(V)
            m = math.sqrt(rho / (v + rho)) * math.exp(s * s / (2 * (v + rho)))
            assert m == pytest.approx(1 / alpha, rel=1e-12)
            assert always_valid_p(b, t, alpha) == pytest.approx(alpha, rel=1e-12)
            assert always_valid_p(b * 1.01, t, alpha) < alpha < always_valid_p(b * 0.99, t, alpha)


def test_tuning_makes_the_boundary_nearly_tightest_at_the_planned_size() -> None:
    for alpha in (0.1, 0.05, 0.01):
        two_l = 2 * math.log(1 / alpha)

        def width(log_ratio: float) -> float:  # boundary in z units at V = 1 with rho = exp(log_ratio)
            rho = math.exp(log_ratio)
            return math.sqrt((1 + rho) * (two_l + math.log(1 + 1 / rho)))

        best = optimize.minimize_scalar(width, bounds=(-10, 5), method="bounded").fun
        assert boundary_z(1.0, alpha) == pytest.approx(width(-math.log(mixture_constant(alpha))))
        assert boundary_z(1.0, alpha) <= best * 1.0001


def test_boundary_is_wider_than_fixed_horizon_and_grows_slowly() -> None:
    z = normal.isf(0.025)
    assert boundary_z(1.0, 0.05) == pytest.approx(3.0352, abs=1e-4)
    assert all(boundary_z(t) > z for t in (0.01, 0.1, 1, 10, 100, 1e4))
    assert boundary_z(100.0) < boundary_z(1e4) < 2 * boundary_z(1.0)  # log-log growth, not sqrt
    assert boundary_z(0.01) > boundary_z(1.0)  # very early looks need overwhelming evidence


def test_interval_and_p_value_agree() -> None:
    for est in (-0.5, -0.25, 0.0, 0.1, 0.35, 0.8):
        r = confidence_sequence(est, 0.1, 0.7, 0.05)
        assert r.significant == (r.ci_low > 0 or r.ci_high < 0) == (r.p_value <= 0.05)
        assert r.ci_high - r.ci_low == pytest.approx(2 * boundary_z(0.7) * 0.1)


def test_sample_size_factor() -> None:
    expected = ((boundary_z(1.0, 0.05) + normal.ppf(0.8)) / (normal.isf(0.025) + normal.ppf(0.8))) ** 2
    assert sample_size_factor(0.05, 0.8) == pytest.approx(expected, rel=1e-14)
    assert 1.5 < sample_size_factor(0.05, 0.8) < 2.5


def test_information_fraction() -> None:
    assert information_fraction(500, 500, 1000, 1000) == pytest.approx(0.5)
    assert information_fraction(300, 100, 300, 100) == pytest.approx(1.0)
    with pytest.raises(ExperimentError):
        information_fraction(0, 10, 10, 10)


@pytest.mark.parametrize("kind,seed", [("mean", 3), ("proportion", 4)])
def test_peeking_inflates_naive_false_positives_but_not_the_sequential_ones(kind: str, seed: int) -> None:
    """A/A, 20 looks: stopping at the first p < 0.05 is wrong several times as often as 5%;
    the confidence sequence stays at or below alpha (seeded; about 0.5 s)."""
    r = peeking_simulation(reps=400, looks=20, n_per_look=50, alpha=0.05, kind=kind, seed=seed)
    assert r.sequential_any_look <= r.alpha
    assert r.naive_any_look >= 3 * r.alpha
    # the last look alone is the honest fixed-horizon test: about alpha (binomial slack for 400 runs)
    assert abs(r.naive_last_look - r.alpha) <= 3 * math.sqrt(r.alpha * (1 - r.alpha) / r.reps)


def test_sequential_still_detects_a_real_effect() -> None:
    """Power check: with a true shift, the sequence stops (excludes 0) in most runs by the planned size."""
    rng = np.random.default_rng(8)
    hits = 0
    for _ in range(200):
        c, t = rng.normal(0, 1, 2000), rng.normal(0.15, 1, 2000)
        for n in range(100, 2001, 100):
            se = math.sqrt(c[:n].var(ddof=1) / n + t[:n].var(ddof=1) / n)
            if confidence_sequence(t[:n].mean() - c[:n].mean(), se, n / 2000).significant:
                hits += 1
                break
    assert hits / 200 >= 0.6


@pytest.mark.parametrize("kwargs,field", [
    ({"estimate": 0.1, "se": 0.0, "information_fraction": 1.0}, "se"),
    ({"estimate": 0.1, "se": 0.1, "information_fraction": 0.0}, "information_fraction"),
    ({"estimate": 0.1, "se": 0.1, "information_fraction": 1.0, "alpha": 0.0}, "alpha"),
    ({"estimate": float("nan"), "se": 0.1, "information_fraction": 1.0}, "estimate"),
])
def test_bad_input_names_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ExperimentError) as info:
        confidence_sequence(**kwargs)
    assert info.value.field == field
