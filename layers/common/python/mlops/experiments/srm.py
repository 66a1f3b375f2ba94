"""Sample-ratio mismatch (SRM): are the variants' entity counts what the allocation promised?

A split that is off - 50.8% / 49.2% on 100k entities when 50/50 was configured - means
something between assignment and logging drops or duplicates entities in one variant
(a crash in one model version, a redirect, a bot filter that reacts to the treatment). Every
comparison is then biased in an unknown direction, so while the check fails the analysis
reports no conclusion at all.

What: Pearson's chi-square goodness of fit of the observed counts to ``N * allocation``, with
``k - 1`` degrees of freedom; an alert when ``p < 0.001`` (the threshold Microsoft's ExP,
GrowthBook and Statsig use: strict, because the check runs on every look of every experiment).
Equal to ``scipy.stats.chisquare(observed, f_exp)`` (the tests check 1e-12).

The chi-square tail uses the closed form for whole degrees of freedom (``Q(1, x) = erfc(sqrt(x/2))``,
``Q(2, x) = exp(-x/2)``, ``Q(v + 2, x) = Q(v, x) + (x/2)^(v/2) exp(-x/2) / Gamma(v/2 + 1)``): a sum
of positive terms, exact to rounding, no scipy.

>>> check({"control": 5000, "treatment": 5000}, {"control": 0.5, "treatment": 0.5}).alert
False
>>> check({"control": 5200, "treatment": 4800}, {"control": 0.5, "treatment": 0.5}).alert
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from mlops.experiments.errors import ExperimentError, check_number

THRESHOLD = 0.001


def chi2_sf(x: float, df: int) -> float:
    """P(X > x) for X ~ chi-square with whole ``df`` >= 1 degrees of freedom."""
    if df < 1 or int(df) != df:
        raise ValueError(f"df must be a whole number >= 1, got {df!r}")
    if x <= 0:
        return 1.0
    half = x / 2.0
    if df % 2:
        total, nu = math.erfc(math.sqrt(half)), 1
    else:
        total, nu = math.exp(-half), 2
    log_half = math.log(half)
    while nu < df:
        total += math.exp((nu / 2.0) * log_half - half - math.lgamma(nu / 2.0 + 1.0))
        nu += 2
    return min(total, 1.0)


@dataclass(frozen=True)
class SrmResult:
    """The check's outcome; ``alert`` blocks conclusions."""

    statistic: float
    df: int
    p_value: float
    threshold: float
    alert: bool
    total: int
    observed: dict[str, int]
    expected: dict[str, float]
    observed_share: dict[str, float]
    min_expected: float

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def check(observed: Mapping[str, int], allocation: Mapping[str, float], threshold: float = THRESHOLD) -> SrmResult:
    """Chi-square test of ``observed`` entity counts per variant against ``allocation`` shares.

    Every variant in ``allocation`` must appear in ``observed`` (a count of 0 is allowed and
    is itself a strong mismatch); weights are normalised. With no entities at all there is
    nothing to check: ``p_value`` 1, no alert. ``min_expected`` below 5 means the chi-square
    approximation is rough; the alert still follows the p-value.
    """
    if set(observed) != set(allocation):
        missing = sorted(set(allocation) - set(observed))
        extra = sorted(set(observed) - set(allocation))
        field = "observed." + (missing[0] if missing else extra[0])
        raise ExperimentError(field, f"observed variants must match the allocation: missing {missing}, unknown {extra}")
    if len(allocation) < 2:
        raise ExperimentError("allocation", "needs at least two variants")
    threshold = check_number("threshold", threshold)
    counts: dict[str, int] = {}
    for name, value in observed.items():
        number = check_number(f"observed.{name}", value)
        if number < 0 or number != int(number):
            raise ExperimentError(f"observed.{name}", f"must be a whole number >= 0, got {value!r}")
        counts[name] = int(number)
    weights: dict[str, float] = {}
    for name, w in allocation.items():
        if check_number(f"allocation.{name}", w) <= 0:
            raise ExperimentError(f"allocation.{name}", f"variant {name!r} must get traffic (weight > 0), got {w!r}")
        weights[name] = float(w)
    wsum = math.fsum(weights.values())
    total = sum(counts.values())
    names = list(allocation)
    if total == 0:
        zero = {n: 0.0 for n in names}
        return SrmResult(0.0, len(names) - 1, 1.0, threshold, False, 0, counts, zero, zero, 0.0)
    expected = {n: total * weights[n] / wsum for n in names}
    stat = math.fsum((counts[n] - expected[n]) ** 2 / expected[n] for n in names)
    p = chi2_sf(stat, len(names) - 1)
    return SrmResult(statistic=stat, df=len(names) - 1, p_value=p, threshold=threshold, alert=p < threshold,
                     total=total, observed=counts, expected=expected,
                     observed_share={n: counts[n] / total for n in names}, min_expected=min(expected.values()))
