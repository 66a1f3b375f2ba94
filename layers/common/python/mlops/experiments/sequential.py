"""Always-valid inference: a confidence sequence that may be looked at after every new sample.

The problem: a fixed-horizon test at ``alpha`` is valid once, at the planned sample size.
Checking ``GET /experiments/{id}/analysis`` every day and stopping at the first ``p < alpha``
("peeking") makes a false positive far more likely than ``alpha`` (about 3-5x with 10-20 looks).

The choice: the **two-sided normal-mixture confidence sequence** (the mixture SPRT, mSPRT, of
Robbins 1970, used for A/B tests by Johari et al. 2017 / Optimizely, and in the
confidence-sequence form of Howard, Ramdas, McAuliffe and Sekhon 2021). With ``S`` the
score ``estimate / se^2`` and ``V = 1 / se^2`` the information, the mixture of the likelihood
ratios ``exp(l S - l^2 V / 2)`` over ``l ~ N(0, 1/rho)`` is

    M = sqrt(rho / (V + rho)) * exp(S^2 / (2 (V + rho))),

a nonnegative martingale under "no difference", so by Ville's inequality
``P(M ever >= 1/alpha) <= alpha``: the test "reject when M >= 1/alpha" has type-I error at most
``alpha`` however often, and whenever, one looks - and however one decides to stop. In
z-units the boundary and the interval are

    |z| >= b(V) = sqrt((1 + rho/V) * (log(1 + V/rho) + 2 log(1/alpha))),
    estimate -/+ b(V) * se,

and the always-valid p-value is ``min(1, 1/M)``.

Why this and not alpha spending (Lan-DeMets O'Brien-Fleming): alpha spending needs the
number and timing of looks (or an information clock with a maximum) fixed in advance and
its boundaries need recursive numerical integration; the mixture boundary is one closed
form that holds at every look, including unplanned ones, which is what an API that anyone
can call at any time needs. Its cost is width: at the planned sample size the interval is
about 3.0 standard errors wide instead of 1.96 (alpha 0.05), so the same power needs more
data (:func:`sample_size_factor`, about 1.9x at alpha 0.05 and power 0.8) - in exchange it can
stop early when the effect is larger than planned.

Tuning: ``rho`` sets where the boundary is tightest. ``rho = V_opt / c(alpha)`` with
``c = 2 log(1/alpha) + log(1 + 2 log(1/alpha))`` (Howard et al.'s approximation; within 0.01% of
the numerically optimal width) makes it tightest at the planned information ``V_opt``. The
analysis passes the *information fraction* ``t = V / V_opt`` (entities so far over entities
planned), so ``V / rho = c t``. The planned size is fixed before the data, so the boundary
is too.

Assumptions: the estimate is approximately normal with a well-estimated standard error (the
CLT regime of an A/B test, a few dozen entities per variant and up); the guarantee is exact
for Gaussian data with known variance and asymptotic otherwise (as for the fixed-horizon
tests next to it). The A/A simulation in the tests checks it where it matters: under many
looks the false-positive rate stays at or below ``alpha``.

>>> r = confidence_sequence(estimate=0.3, se=0.1, information_fraction=1.0, alpha=0.05)
>>> round(r.boundary_z, 4), r.significant
(3.0352, False)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from mlops.experiments import normal
from mlops.experiments.errors import ExperimentError, check_number, check_probability


def mixture_constant(alpha: float) -> float:
    """``c(alpha)``: the ratio ``V_opt / rho`` that makes the boundary tightest at ``V_opt``."""
    two_l = 2.0 * math.log(1.0 / alpha)
    return two_l + math.log1p(two_l)


def _v_over_rho(information_fraction: float, alpha: float) -> float:
    return mixture_constant(alpha) * information_fraction


def boundary_z(information_fraction: float, alpha: float = 0.05) -> float:
    """The |z| that must be reached to reject, at information fraction ``t = V / V_opt``."""
    alpha = check_probability("alpha", alpha, high=0.5, high_open=False)
    t = check_number("information_fraction", information_fraction)
    if t <= 0:
        raise ExperimentError("information_fraction", f"must be > 0, got {t!r}")
    x = _v_over_rho(t, alpha)
    return math.sqrt((1.0 + 1.0 / x) * (math.log1p(x) + 2.0 * math.log(1.0 / alpha)))


def always_valid_p(z: float, information_fraction: float, alpha: float = 0.05) -> float:
    """``min(1, 1/M)``: below ``alpha`` exactly when ``|z|`` is past the boundary.

    ``alpha`` here only picks ``rho`` (the tuning); the p-value is valid at every level.
    """
    x = _v_over_rho(information_fraction, alpha)
    log_m = -0.5 * math.log1p(x) + 0.5 * z * z * x / (1.0 + x)
    return 1.0 if log_m <= 0 else math.exp(-log_m)


def sample_size_factor(alpha: float = 0.05, power: float = 0.8) -> float:
    """How many times the fixed-horizon sample a sequential analysis needs for the same power.

    At the planned size (t = 1) the sequential test rejects when ``|z| >= b(1)`` instead of
    ``z_{alpha/2}``; power ``1 - beta`` at that look needs the mean of z at ``b(1) + z_beta``
    instead of ``z_{alpha/2} + z_beta``, and z grows with the square root of n. (Early stops
    only add power, so this is conservative.)
    """
    z_b = normal.ppf(power)
    return ((boundary_z(1.0, alpha) + z_b) / (normal.isf(alpha / 2) + z_b)) ** 2


@dataclass(frozen=True)
class SequentialResult:
    """The confidence sequence at the current look."""

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    boundary_z: float
    information_fraction: float
    alpha: float
    significant: bool
    method: str = "normal_mixture_cs"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def confidence_sequence(estimate: float, se: float, information_fraction: float,
                        alpha: float = 0.05) -> SequentialResult:
    """The always-valid ``1 - alpha`` interval and p-value for ``estimate`` (two-sided)."""
    alpha = check_probability("alpha", alpha, high=0.5, high_open=False)
    estimate = check_number("estimate", estimate)
    se = check_number("se", se)
    if se <= 0:
        raise ExperimentError("se", f"must be > 0, got {se!r}")
    b = boundary_z(information_fraction, alpha)
    z = estimate / se
    p = always_valid_p(z, information_fraction, alpha)
    return SequentialResult(estimate=estimate, se=se, ci_low=estimate - b * se, ci_high=estimate + b * se,
                            p_value=p, boundary_z=b, information_fraction=information_fraction, alpha=alpha,
                            significant=abs(z) >= b)


def information_fraction(n_control: float, n_treatment: float, planned_control: float,
                         planned_treatment: float) -> float:
    """``V / V_opt`` from counts: the effective sample ``1/(1/n_c + 1/n_t)`` over the planned one."""
    if min(n_control, n_treatment) <= 0:
        raise ExperimentError("n", "both groups need observations for an information fraction")
    if min(planned_control, planned_treatment) <= 0:
        raise ExperimentError("planned", "the planned sample sizes must be > 0")
    now = 1.0 / (1.0 / n_control + 1.0 / n_treatment)
    planned = 1.0 / (1.0 / planned_control + 1.0 / planned_treatment)
    return now / planned
