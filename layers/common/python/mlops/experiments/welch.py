"""Welch's t-test for a difference in means, with its confidence interval and relative lift.

What: ``t = (mean_t - mean_c) / se`` with ``se = sqrt(var_t/n_t + var_c/n_c)`` and the
Welch-Satterthwaite degrees of freedom; the p-value and interval come from Student's t with
those (fractional) degrees of freedom. Equal to ``scipy.stats.ttest_ind(treatment, control,
equal_var=False, alternative=...)`` - statistic, p-value and ``confidence_interval()`` - on the
same data (the tests check 1e-12). Our ``larger``/``smaller`` are scipy's ``greater``/``less``.

Why Welch and not Student: variants can differ in spread as well as mean (a new model can
be more or less consistent), and unequal allocations make the pooled-variance test wrong
exactly then; Welch costs nothing when the variances are equal.

The relative lift ``mean_t / mean_c - 1`` gets a delta-method interval (normal quantile):
``Var(r) = var_t/(n_t mean_c^2) + mean_t^2 var_c/(n_c mean_c^4)``; it is ``None`` when the
control mean is 0.

Dependency note: the t distribution's CDF and quantile come from ``scipy.special.stdtr`` and
``stdtrit`` (the functions ``scipy.stats.t`` uses), imported when a test runs. scipy is not in
the serving layer; the analysis path (``GET /experiments/{id}/analysis``) runs with the
training layer, which has it. Everything else in this package needs numpy at most.

>>> r = welch_from_stats(MeanStats(50, 10.0, 4.0), MeanStats(60, 11.0, 9.0))
>>> round(r.statistic, 6), round(r.df, 3), round(r.p_value, 6)
(2.085144, 103.327, 0.039521)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from numpy.typing import ArrayLike

from mlops.experiments import normal
from mlops.experiments.errors import ExperimentError, InsufficientData, check_probability
from mlops.experiments.summary import MeanStats

ALTERNATIVES = ("two-sided", "larger", "smaller")


def _stdtr():  # type: ignore[no-untyped-def]
    try:
        from scipy.special import stdtr, stdtrit
    except ImportError as err:  # pragma: no cover - scipy is installed wherever tests run
        raise ImportError("Welch's t-test needs scipy.special (attach the training layer to the analysis function)") from err
    return stdtr, stdtrit


@dataclass(frozen=True)
class WelchResult:
    """Welch's t-test of treatment minus control."""

    estimate: float
    se: float
    statistic: float
    df: float
    p_value: float
    ci_low: float
    ci_high: float
    control_mean: float
    treatment_mean: float
    lift: float | None
    lift_ci_low: float | None
    lift_ci_high: float | None
    alpha: float
    alternative: str
    test: str = "welch_t"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def welch_from_stats(control: MeanStats, treatment: MeanStats, *, alpha: float = 0.05,
                     alternative: str = "two-sided") -> WelchResult:
    """Welch's test from per-variant (n, mean, var); see module doc.

    Raises :class:`InsufficientData` with fewer than 2 observations in a group or when both
    variances are 0 (the statistic is undefined).
    """
    alpha = check_probability("alpha", alpha, high=0.5, high_open=False)
    if alternative not in ALTERNATIVES:
        raise ExperimentError("alternative", f"must be one of {ALTERNATIVES}, got {alternative!r}")
    for name, s in (("control", control), ("treatment", treatment)):
        if s.n < 2:
            raise InsufficientData(f"{name}.n", f"Welch's test needs at least 2 observations per group, got {s.n}")
    vc, vt = control.var / control.n, treatment.var / treatment.n
    se2 = vc + vt
    if se2 <= 0:
        raise InsufficientData("var", "both groups have zero variance: the t statistic is undefined")
    se = math.sqrt(se2)
    wc, wt = vc / se2, vt / se2  # Welch-Satterthwaite on the shares: no underflow for tiny variances
    df = 1.0 / (wc * wc / (control.n - 1) + wt * wt / (treatment.n - 1))
    diff = treatment.mean - control.mean
    t = diff / se
    stdtr, stdtrit = _stdtr()
    if alternative == "two-sided":
        p = float(2.0 * stdtr(df, -abs(t)))
        q = float(stdtrit(df, 1.0 - alpha / 2))
        low, high = diff - q * se, diff + q * se
    elif alternative == "larger":
        p = float(stdtr(df, -t))
        low, high = diff - float(stdtrit(df, 1.0 - alpha)) * se, math.inf
    else:
        p = float(stdtr(df, t))
        low, high = -math.inf, diff + float(stdtrit(df, 1.0 - alpha)) * se
    lift, lift_low, lift_high = ratio_lift(control, treatment, alpha, alternative)
    return WelchResult(estimate=diff, se=se, statistic=t, df=df, p_value=min(p, 1.0), ci_low=low, ci_high=high,
                       control_mean=control.mean, treatment_mean=treatment.mean, lift=lift, lift_ci_low=lift_low,
                       lift_ci_high=lift_high, alpha=alpha, alternative=alternative)


def welch_test(control: ArrayLike, treatment: ArrayLike, *, alpha: float = 0.05,
               alternative: str = "two-sided") -> WelchResult:
    """Welch's test from raw per-entity values."""
    return welch_from_stats(MeanStats.from_values(control), MeanStats.from_values(treatment),
                            alpha=alpha, alternative=alternative)


def ratio_lift(control: MeanStats, treatment: MeanStats, alpha: float,
               alternative: str = "two-sided") -> tuple[float | None, float | None, float | None]:
    """Relative lift ``mean_t / mean_c - 1`` and its delta-method interval (None if mean_c == 0)."""
    mc, mt = control.mean, treatment.mean
    if mc == 0 or control.n == 0 or treatment.n == 0:
        return None, None, None
    ratio = mt / mc
    if not math.isfinite(ratio):  # a control mean so close to 0 that the ratio overflows
        return None, None, None
    lift = ratio - 1.0
    se = math.sqrt(treatment.var / treatment.n + ratio * ratio * control.var / control.n) / abs(mc)
    if alternative == "two-sided":
        z = normal.isf(alpha / 2)
        return lift, lift - z * se, lift + z * se
    z = normal.isf(alpha)
    if alternative == "larger":
        return lift, lift - z * se, math.inf
    return lift, -math.inf, lift + z * se
