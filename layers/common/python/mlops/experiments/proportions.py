"""The two-proportion z-test, with intervals for the difference and for the relative lift.

Each number equals statsmodels on the same counts (the tests check 1e-12):

* ``statistic``, ``p_value`` - ``proportions_ztest([x_t, x_c], [n_t, n_c], alternative=...)``:
  the pooled-variance z-test, ``z = (p_t - p_c) / sqrt(p (1 - p) (1/n_t + 1/n_c))``;
* ``ci_low``, ``ci_high`` for ``p_t - p_c`` - ``confint_proportions_2indep(x_t, n_t, x_c, n_c,
  compare="diff", method=ci_method, alpha=...)`` with ``ci_method`` ``newcomb`` (the default,
  as in statsmodels: Wilson-based, good coverage for small or extreme rates), ``wald`` or
  ``agresti-caffo``;
* ``lift`` = ``p_t / p_c - 1`` and its interval - ``confint_proportions_2indep(...,
  compare="ratio", method=lift_method) - 1`` with ``lift_method`` ``log-adjusted`` (default, as
  statsmodels: the Katz log interval with 0.5 added to counts, finite with zero successes) or
  ``log``.

For a one-sided alternative the p-value is one-sided and the interval is the matching
one-sided ``1 - alpha`` bound (the two-sided ``1 - 2 alpha`` interval's bound, the other end
open). Pure math (``math.erfc`` and ``statistics.NormalDist``): no scipy needed.

>>> r = two_proportion_ztest(ProportionStats(1000, 100), ProportionStats(1000, 130))
>>> round(r.statistic, 6), round(r.p_value, 6)
(2.102741, 0.035488)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from mlops.experiments import normal
from mlops.experiments.errors import ExperimentError, InsufficientData, check_probability
from mlops.experiments.summary import ProportionStats

ALTERNATIVES = ("two-sided", "larger", "smaller")
CI_METHODS = ("newcomb", "wald", "agresti-caffo")
LIFT_METHODS = ("log-adjusted", "log")


@dataclass(frozen=True)
class ProportionsResult:
    """Two-proportion z-test of treatment minus control."""

    estimate: float
    statistic: float
    p_value: float
    ci_low: float
    ci_high: float
    se_unpooled: float
    control_rate: float
    treatment_rate: float
    lift: float | None
    lift_ci_low: float | None
    lift_ci_high: float | None
    alpha: float
    alternative: str
    ci_method: str
    lift_method: str
    test: str = "two_proportion_z"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def wilson_interval(successes: int, n: int, alpha: float) -> tuple[float, float]:
    """Wilson score interval for one proportion (= statsmodels ``proportion_confint(method="wilson")``)."""
    q = successes / n
    crit = normal.isf(alpha / 2)
    crit2 = crit * crit
    denom = 1 + crit2 / n
    center = (q + crit2 / (2 * n)) / denom
    dist = crit * math.sqrt(q * (1.0 - q) / n + crit2 / (4.0 * n * n)) / denom
    return min(max(center - dist, 0.0), 1.0), min(max(center + dist, 0.0), 1.0)


def diff_interval(control: ProportionStats, treatment: ProportionStats, alpha: float,
                  method: str = "newcomb") -> tuple[float, float]:
    """Two-sided ``1 - alpha`` interval for ``p_t - p_c``."""
    x1, n1, x2, n2 = treatment.successes, treatment.n, control.successes, control.n
    if method in ("wald", "agresti-caffo"):
        add = 1 if method == "agresti-caffo" else 0
        p1 = (x1 + add) / (n1 + 2 * add)
        p2 = (x2 + add) / (n2 + 2 * add)
        half = normal.isf(alpha / 2) * math.sqrt(p1 * (1 - p1) / (n1 + 2 * add) + p2 * (1 - p2) / (n2 + 2 * add))
        return p1 - p2 - half, p1 - p2 + half
    if method == "newcomb":
        p1, p2 = x1 / n1, x2 / n2
        low1, upp1 = wilson_interval(x1, n1, alpha)
        low2, upp2 = wilson_interval(x2, n2, alpha)
        d_low = math.sqrt((p1 - low1) ** 2 + (upp2 - p2) ** 2)
        d_upp = math.sqrt((p2 - low2) ** 2 + (upp1 - p1) ** 2)
        return p1 - p2 - d_low, p1 - p2 + d_upp
    raise ExperimentError("ci_method", f"must be one of {CI_METHODS}, got {method!r}")


def ratio_interval(control: ProportionStats, treatment: ProportionStats, alpha: float,
                   method: str = "log-adjusted") -> tuple[float, float]:
    """Two-sided ``1 - alpha`` interval for ``p_t / p_c`` (Katz log method)."""
    if method not in LIFT_METHODS:
        raise ExperimentError("lift_method", f"must be one of {LIFT_METHODS}, got {method!r}")
    add = 0.5 if method == "log-adjusted" else 0.0
    x1, n1 = treatment.successes + add, treatment.n + add
    x2, n2 = control.successes + add, control.n + add
    if x1 == 0 or x2 == 0:
        return (0.0 if x1 == 0 else math.nan), math.inf
    ratio = (x1 / n1) / (x2 / n2)
    half = normal.isf(alpha / 2) * math.sqrt(1 / x1 - 1 / n1 + 1 / x2 - 1 / n2)
    return math.exp(math.log(ratio) - half), math.exp(math.log(ratio) + half)


def two_proportion_ztest(control: ProportionStats, treatment: ProportionStats, *, alpha: float = 0.05,
                         alternative: str = "two-sided", ci_method: str = "newcomb",
                         lift_method: str = "log-adjusted") -> ProportionsResult:
    """The pooled two-proportion z-test of treatment vs control (see module doc).

    Raises :class:`InsufficientData` when a group is empty or the pooled rate is 0 or 1.
    """
    alpha = check_probability("alpha", alpha, high=0.5, high_open=False)
    if alternative not in ALTERNATIVES:
        raise ExperimentError("alternative", f"must be one of {ALTERNATIVES}, got {alternative!r}")
    if ci_method not in CI_METHODS:
        raise ExperimentError("ci_method", f"must be one of {CI_METHODS}, got {ci_method!r}")
    if lift_method not in LIFT_METHODS:
        raise ExperimentError("lift_method", f"must be one of {LIFT_METHODS}, got {lift_method!r}")
    for name, s in (("control", control), ("treatment", treatment)):
        if s.n == 0:
            raise InsufficientData(f"{name}.n", "the z-test needs at least one observation per group")
    n1, n2 = treatment.n, control.n
    p1, p2 = treatment.successes / n1, control.successes / n2
    pooled = (treatment.successes + control.successes) / (n1 + n2)
    var = pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2)
    if var <= 0:
        raise InsufficientData("successes", f"the pooled rate is {pooled!r}: every outcome is the same, z is undefined")
    diff = p1 - p2
    z = diff / math.sqrt(var)
    p = normal.p_value(z, alternative)
    level = alpha if alternative == "two-sided" else 2 * alpha
    low, high = diff_interval(control, treatment, level, ci_method)
    lift: float | None = None
    lift_low: float | None = None
    lift_high: float | None = None
    if p2 > 0:
        lift = p1 / p2 - 1.0
        r_low, r_high = ratio_interval(control, treatment, level, lift_method)
        lift_low, lift_high = r_low - 1.0, r_high - 1.0
    if alternative == "larger":
        high, lift_high = math.inf, (math.inf if lift is not None else None)
    elif alternative == "smaller":
        low, lift_low = -math.inf, (-math.inf if lift is not None else None)
    se_unpooled = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    return ProportionsResult(estimate=diff, statistic=z, p_value=p, ci_low=low, ci_high=high,
                             se_unpooled=se_unpooled, control_rate=p2, treatment_rate=p1, lift=lift,
                             lift_ci_low=lift_low, lift_ci_high=lift_high, alpha=alpha, alternative=alternative,
                             ci_method=ci_method, lift_method=lift_method)
