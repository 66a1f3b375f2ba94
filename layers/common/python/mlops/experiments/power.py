"""Sample size, power and duration for two-sample comparisons (normal approximations).

Conventions: sample 1 is the **control** and ``ratio = n_treatment / n_control``; ``delta`` is
the treatment minus control difference to detect; ``alternative`` is ``two-sided`` or a
one-sided ``larger`` / ``smaller`` (the sign of ``delta`` must match). Sample sizes come back as
exact real numbers plus the whole number of entities to collect (their ceilings).

Each method equals a statsmodels solver on the same inputs (the tests check it):

* means, ``method="formula"`` - the issue's formula, one tail of the test:
  ``n_control = (z_{a/2} + z_b)^2 (s_c^2 + s_t^2 / ratio) / delta^2``, i.e.
  ``(z_{a/2} + z_b)^2 (s1^2 + s2^2) / delta^2`` at ratio 1. Equals
  ``statsmodels.stats.power.normal_sample_size_one_tail(delta, power, alpha / 2,
  std_null=std_alternative=sqrt(s_c^2 + s_t^2 / ratio))`` to rounding (1e-12).
* means, ``method="exact"`` - the root of the two-tailed power equation (the far tail counted).
  Equals ``NormalIndPower().solve_power(effect_size=delta / s_p, nobs1=None, alpha, power,
  ratio)`` with ``s_p = sqrt((s_c^2 + s_t^2 / ratio) * ratio / (1 + ratio))``. We solve to
  1e-12 relative; statsmodels stops its ``brentq`` at ``xtol=1e-5`` (absolute, in entities),
  so the tests compare to 1e-5 and, more strictly, check that statsmodels' own ``power`` at
  our n equals the target power to 1e-12. (``TTestIndPower`` is not matched: its noncentral t
  needs scipy; for n above a few hundred it differs from this by under one entity.)
* proportions, ``method="pooled"`` (default) - pooled variance under the null, unpooled under
  the alternative, one tail. Equals ``samplesize_proportions_2indep_onetail(diff=p_t - p_c,
  prop2=p_c, power, ratio=1 / ratio, alpha)`` (statsmodels' sample 1 is the treatment there,
  so its nobs1 is our n_treatment).
* proportions, ``method="arcsine"`` - Cohen's h on the arcsine scale, two tails exactly.
  Equals ``NormalIndPower().solve_power(effect_size=proportion_effectsize(p_t, p_c),
  nobs1=None, alpha, power, ratio)`` (same tolerance note as ``exact``).

:func:`duration` turns sample sizes and daily traffic into days, and :func:`plan` does both for
an experiment definition (with the extra sample a sequential analysis needs,
:func:`mlops.experiments.sequential.sample_size_factor`).

>>> s = sample_size_means(delta=0.5, sd_control=2.0, alpha=0.05, power=0.8)
>>> round(s.n_control, 6), s.n_control_ceil
(251.164151, 252)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from mlops.experiments import normal
from mlops.experiments.errors import ExperimentError, check_number, check_probability

if TYPE_CHECKING:  # pragma: no cover
    from mlops.experiments.definition import ExperimentDefinition

ALTERNATIVES = ("two-sided", "larger", "smaller")


@dataclass(frozen=True)
class SampleSize:
    """Entities needed per group for one control-vs-treatment comparison."""

    n_control: float
    n_treatment: float
    n_control_ceil: int
    n_treatment_ceil: int
    alpha: float
    power: float
    ratio: float
    method: str
    alternative: str

    @property
    def total(self) -> int:
        """Entities across both groups (whole numbers)."""
        return self.n_control_ceil + self.n_treatment_ceil

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "total": self.total}


def _check(alpha: float, power: float, ratio: float, alternative: str) -> tuple[float, float, float]:
    alpha = check_probability("alpha", alpha, high=0.5, high_open=False)
    power = check_probability("power", power)
    if power <= alpha:
        raise ExperimentError("power", f"must be greater than alpha ({alpha!r}), got {power!r}")
    ratio = check_number("ratio", ratio)
    if ratio <= 0:
        raise ExperimentError("ratio", f"n_treatment / n_control must be > 0 (no zero-traffic group), got {ratio!r}")
    if alternative not in ALTERNATIVES:
        raise ExperimentError("alternative", f"must be one of {ALTERNATIVES}, got {alternative!r}")
    return alpha, power, ratio


def _check_sign(delta: float, alternative: str, field: str) -> None:
    if delta == 0:
        raise ExperimentError(field, "the effect to detect must be non-zero")
    if (alternative == "larger" and delta < 0) or (alternative == "smaller" and delta > 0):
        raise ExperimentError(field, f"sign of {delta!r} contradicts alternative {alternative!r}")


def _crit(alpha: float, alternative: str) -> float:
    return normal.isf(alpha / 2 if alternative == "two-sided" else alpha)


def _two_tail_x(z_a: float, power: float) -> float:
    """The standardized shift x >= 0 with sf(z_a - x) + cdf(-z_a - x) = power (two tails).

    The function is increasing in x; x0 = z_a + z_b overshoots (its near tail alone has the
    power), so the root is in [x0 - 1, x0]: bisection on a bracket, then Newton to rounding.
    """
    def g(x: float) -> float:
        return normal.sf(z_a - x) + normal.cdf(-z_a - x) - power

    lo, hi = 0.0, z_a + normal.ppf(power)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if g(mid) > 0:
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


def _result(n_control: float, ratio: float, alpha: float, power: float, method: str, alternative: str) -> SampleSize:
    n_treatment = n_control * ratio
    return SampleSize(n_control=n_control, n_treatment=n_treatment,
                      n_control_ceil=_ceil(n_control), n_treatment_ceil=_ceil(n_treatment),
                      alpha=alpha, power=power, ratio=ratio, method=method, alternative=alternative)


def _ceil(x: float) -> int:
    """Ceiling that ignores rounding noise (251.00000000000003 -> 251)."""
    return max(1, math.ceil(x - 1e-9 * max(1.0, x)))


def sample_size_means(delta: float, sd_control: float, sd_treatment: float | None = None, *,
                      alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0,
                      alternative: str = "two-sided", method: str = "formula") -> SampleSize:
    """Entities per group to detect a difference ``delta`` in means (see module doc for methods).

    ``sd_treatment`` defaults to ``sd_control``.
    """
    alpha, power, ratio = _check(alpha, power, ratio, alternative)
    delta = check_number("delta", delta)
    _check_sign(delta, alternative, "delta")
    sd_c = check_number("sd_control", sd_control)
    sd_t = sd_c if sd_treatment is None else check_number("sd_treatment", sd_treatment)
    if sd_c <= 0:
        raise ExperimentError("sd_control", f"must be > 0, got {sd_c!r}")
    if sd_t <= 0:
        raise ExperimentError("sd_treatment", f"must be > 0, got {sd_t!r}")
    var_factor = sd_c ** 2 + sd_t ** 2 / ratio  # Var(mean_t - mean_c) * n_control
    z_a = _crit(alpha, alternative)
    if method == "formula" or (method == "exact" and alternative != "two-sided"):
        x = z_a + normal.ppf(power)
    elif method == "exact":
        x = _two_tail_x(z_a, power)
    else:
        raise ExperimentError("method", f"must be 'formula' or 'exact', got {method!r}")
    return _result(x * x * var_factor / (delta * delta), ratio, alpha, power, method, alternative)


def sample_size_proportions(p_control: float, p_treatment: float, *, alpha: float = 0.05, power: float = 0.8,
                            ratio: float = 1.0, alternative: str = "two-sided",
                            method: str = "pooled") -> SampleSize:
    """Entities per group to tell rate ``p_treatment`` from ``p_control`` (see module doc)."""
    alpha, power, ratio = _check(alpha, power, ratio, alternative)
    p_c = check_probability("p_control", p_control)
    p_t = check_probability("p_treatment", p_treatment)
    delta = p_t - p_c
    _check_sign(delta, alternative, "p_treatment")
    z_a = _crit(alpha, alternative)
    if method == "pooled":
        z_b = normal.ppf(power)
        p_bar = (ratio * p_t + p_c) / (ratio + 1)
        std_null = math.sqrt(p_bar * (1 - p_bar) * (1 + ratio))
        std_alt = math.sqrt(p_t * (1 - p_t) + p_c * (1 - p_c) * ratio)
        n_treatment = (max(z_a * std_null + z_b * std_alt, 0.0) / delta) ** 2
        return _result(n_treatment / ratio, ratio, alpha, power, method, alternative)
    if method == "arcsine":
        h = 2 * math.asin(math.sqrt(p_t)) - 2 * math.asin(math.sqrt(p_c))
        x = _two_tail_x(z_a, power) if alternative == "two-sided" else z_a + normal.ppf(power)
        return _result(x * x * (1 + 1 / ratio) / (h * h), ratio, alpha, power, method, alternative)
    raise ExperimentError("method", f"must be 'pooled' or 'arcsine', got {method!r}")


def power_means(delta: float, sd_control: float, sd_treatment: float | None, n_control: float, *,
                alpha: float = 0.05, ratio: float = 1.0, alternative: str = "two-sided") -> float:
    """Power of the two-sample z-test for means at ``n_control`` (both tails when two-sided).

    Equals ``NormalIndPower().power(delta / s_p, n_control, alpha, ratio, alternative)``.
    """
    alpha = check_probability("alpha", alpha, high=0.5, high_open=False)
    sd_t = sd_control if sd_treatment is None else sd_treatment
    se = math.sqrt((sd_control ** 2 + sd_t ** 2 / ratio) / n_control)
    return _power_z(delta / se, alpha, alternative)


def power_proportions(p_control: float, p_treatment: float, n_control: float, *, alpha: float = 0.05,
                      ratio: float = 1.0, alternative: str = "two-sided") -> float:
    """Power of the pooled two-proportion z-test at ``n_control``.

    Equals ``power_proportions_2indep(p_t - p_c, p_c, n_control * ratio, ratio=1 / ratio, alpha)``.
    """
    alpha = check_probability("alpha", alpha, high=0.5, high_open=False)
    n_t = n_control * ratio
    p_bar = (ratio * p_treatment + p_control) / (ratio + 1)
    std_null = math.sqrt(p_bar * (1 - p_bar) * (1 + ratio))
    std_alt = math.sqrt(p_treatment * (1 - p_treatment) + p_control * (1 - p_control) * ratio)
    shift = (p_treatment - p_control) * math.sqrt(n_t) / std_alt
    scale = std_null / std_alt
    a = alpha / 2 if alternative == "two-sided" else alpha
    out = 0.0
    if alternative in ("two-sided", "larger"):
        out += normal.sf(normal.isf(a) * scale - shift)
    if alternative in ("two-sided", "smaller"):
        out += normal.cdf(normal.ppf(a) * scale - shift)
    return out


def _power_z(shift: float, alpha: float, alternative: str) -> float:
    a = alpha / 2 if alternative == "two-sided" else alpha
    out = 0.0
    if alternative in ("two-sided", "larger"):
        out += normal.sf(normal.isf(a) - shift)
    if alternative in ("two-sided", "smaller"):
        out += normal.cdf(normal.ppf(a) - shift)
    return out


@dataclass(frozen=True)
class Duration:
    """How long collecting a sample takes at a given traffic."""

    days: float
    days_ceil: int
    limiting_variant: str
    entities_needed: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def duration(required: Mapping[str, float], allocation: Mapping[str, float], daily_entities: float,
             traffic: float = 1.0) -> Duration:
    """Days until every variant has its required entities.

    ``required`` maps variant -> entities needed; ``allocation`` variant -> share of enrolled
    traffic; ``daily_entities`` is new eligible entities per day, of which ``traffic`` are
    enrolled. The slowest variant decides (``limiting_variant``).
    """
    daily = check_number("daily_entities", daily_entities)
    if daily <= 0:
        raise ExperimentError("daily_entities", f"must be > 0, got {daily!r}")
    traffic = check_probability("traffic", traffic, high_open=False)
    days, limiting = 0.0, ""
    for name, n in required.items():
        share = allocation.get(name, 0.0)
        if share <= 0:
            raise ExperimentError(f"allocation.{name}", f"variant {name!r} must get traffic (weight > 0), got {share!r}")
        d = n / (daily * traffic * share)
        if d > days:
            days, limiting = d, name
    needed = int(math.ceil(days * daily * traffic - 1e-9))
    return Duration(days=days, days_ceil=max(1, math.ceil(days - 1e-9)), limiting_variant=limiting,
                    entities_needed=needed)


@dataclass(frozen=True)
class Plan:
    """The sample-size plan of an experiment definition (entities per variant).

    ``required`` is what the analysis plans for: ``fixed`` (one look at the end) or, for a
    sequential experiment, ``fixed`` times :func:`~mlops.experiments.sequential.sample_size_factor`.
    ``alpha_per_comparison`` is ``alpha`` divided by the number of comparisons in the
    correction family (metrics x treatments; Bonferroni, so conservative for Holm).
    """

    metric: str
    kind: str
    delta: float
    alpha_per_comparison: float
    comparisons: int
    power: float
    method: str
    sequential: bool
    sequential_factor: float
    fixed: dict[str, int]
    required: dict[str, int]
    per_comparison: dict[str, dict[str, object]]
    duration: Duration | None

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["duration"] = self.duration.to_dict() if self.duration else None
        return out


def plan(definition: "ExperimentDefinition", daily_entities: float | None = None) -> Plan:
    """Entities per variant for ``definition``'s primary metric at its MDE, alpha and power,
    and (with ``daily_entities``) how many days that takes."""
    from mlops.experiments.sequential import sample_size_factor

    metric = definition.primary_metric
    delta = definition.absolute_mde()
    signed = delta if metric.direction == "increase" else -delta
    family = len(definition.metrics) * len(definition.treatments) if definition.correction != "none" else 1
    alpha_c = definition.alpha / family
    allocation = definition.allocation
    control = definition.control
    fixed: dict[str, float] = {control: 0.0}
    per: dict[str, dict[str, object]] = {}
    method = "pooled" if metric.kind == "proportion" else "formula"
    for name in definition.treatments:
        ratio = allocation[name] / allocation[control]
        if metric.kind == "proportion":
            assert metric.baseline is not None
            s = sample_size_proportions(metric.baseline, metric.baseline + signed, alpha=alpha_c,
                                        power=definition.power, ratio=ratio, method=method)
        else:
            assert metric.std is not None
            s = sample_size_means(signed, metric.std, metric.std, alpha=alpha_c, power=definition.power,
                                  ratio=ratio, method=method)
        per[name] = s.to_dict()
        fixed[control] = max(fixed[control], s.n_control)
        fixed[name] = s.n_treatment
    factor = sample_size_factor(alpha_c, definition.power) if definition.sequential else 1.0
    fixed_ceil = {k: _ceil(v) for k, v in fixed.items()}
    required = {k: _ceil(v * factor) for k, v in fixed.items()}
    span = None
    if daily_entities is not None:
        span = duration(required, allocation, daily_entities, definition.traffic)
    return Plan(metric=metric.name, kind=metric.kind, delta=signed, alpha_per_comparison=alpha_c, comparisons=family,
                power=definition.power, method=method, sequential=definition.sequential, sequential_factor=factor,
                fixed=fixed_ceil, required=required, per_comparison=per, duration=span)
