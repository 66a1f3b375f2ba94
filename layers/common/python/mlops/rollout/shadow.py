"""Shadow mode analysis: does a version scored on the side behave like production on the very
same requests, and may it go on to the canary?

The inference function scores the deployment's ``shadow`` version next to the version that
answers and logs both in one prediction-log row (`mlops.models.prediction_log`); feedback later
adds the ground truth to that row. Each row is one `ShadowPair`. Because both versions saw the
same request, the comparisons are *paired* (more power than comparing two groups of requests,
and no sample-ratio questions). `analyze_shadow` computes, with differences taken as
``shadow - production``:

* **agreement**: the share of requests on which both predicted the same label, with a Wilson
  score interval (`mlops.experiments.proportions.wilson_interval`, = statsmodels
  ``proportion_confint(method="wilson")``);
* **probability shift**: mean, mean absolute and largest absolute difference of the
  probabilities, and the paired t-test (= ``scipy.stats.ttest_rel(shadow, production)``, its
  ``confidence_interval`` for the mean difference);
* **Wilcoxon signed-rank** on the same differences (= ``scipy.stats.wilcoxon(shadow,
  production)`` with scipy's defaults). Zeros: ``zero_method="wilcox"``, i.e. requests on which
  both versions gave exactly the same probability are dropped before ranking (they carry no
  sign); ``nonzero`` says how many were left. ``method="auto"``: the exact null distribution up
  to 50 pairs without ties or zeros, an exact enumeration of sign flips up to 13 pairs with
  ties or zeros (scipy's permutation test: seconds at 13 pairs, milliseconds at 10), the normal
  approximation (tie-corrected, no continuity correction) otherwise;
* **McNemar on correctness** where feedback exists (= statsmodels
  ``contingency_tables.mcnemar``): ``b`` requests where only production was right, ``c`` where
  only the shadow was. With fewer than `EXACT_BELOW` (25) discordant pairs the exact binomial
  test (``exact=True``: statistic ``min(b, c)``, p = ``min(1, 2 P[Bin(b + c, 1/2) <= min(b, c)])``),
  otherwise the chi-square test with continuity correction (``exact=False, correction=True``:
  ``(|b - c| - 1)^2 / (b + c)`` on 1 degree of freedom) - the usual rule of thumb for when the
  chi-square approximation is adequate. No discordant pair at all is the exact test's p = 1.
* **shadow errors**: rows where the shadow failed (the caller counts them; no probability).

Degenerate input never yields NaN or infinity: a statistic that cannot be computed (fewer than
two pairs, all differences zero, a constant difference, no feedback) is ``None`` and
``unavailable`` says why. `shadow_verdict` turns an analysis and a `ShadowPolicy` into the
canary decision ``(ok, reasons)``. Pure: plain values in, plain values out (numpy and scipy,
which the analysis function gets from ServingLayer and StatsLayer; scipy is imported on first
use, as in `mlops.rollout.gate`, so that importing this module stays cheap).
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from mlops.experiments.proportions import wilson_interval

#: McNemar uses the exact binomial test below this many discordant pairs, chi-square from it on.
EXACT_BELOW = 25
#: scipy.stats.wilcoxon's zero handling used here (its default): zero differences are dropped.
ZERO_METHOD = "wilcox"


class ShadowInputError(ValueError):
    """Input that cannot be analysed; ``problems`` maps each offending field to what is wrong."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.problems.items()))


@dataclass(frozen=True)
class ShadowPair:
    """One request scored by both versions: probabilities and labels, and the ground truth
    once feedback arrived (None before)."""

    production_probability: float
    shadow_probability: float
    production_label: int
    shadow_label: int
    label: int | None = None


@dataclass(frozen=True)
class PairedT:
    """Paired t-test of shadow minus production probabilities, and the interval of the mean."""

    statistic: float
    p_value: float
    df: int
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class Wilcoxon:
    """Wilcoxon signed-rank test (two-sided): ``statistic`` is min(R+, R-) as scipy gives it."""

    statistic: float
    p_value: float
    nonzero: int
    zero_method: str = ZERO_METHOD


@dataclass(frozen=True)
class McNemar:
    """McNemar's test on correctness: ``production_only`` (b) requests only production got right,
    ``shadow_only`` (c) requests only the shadow got right."""

    production_only: int
    shadow_only: int
    statistic: float
    p_value: float
    method: str  # "exact" (binomial) or "chi2" (continuity-corrected)

    @property
    def discordant(self) -> int:
        return self.production_only + self.shadow_only


@dataclass(frozen=True)
class ShadowAnalysis:
    """Shadow against production on the same requests (differences are shadow - production)."""

    n: int
    confidence: float
    agreements: int
    agreement_rate: float | None
    agreement_ci: tuple[float, float] | None
    production_positive_rate: float | None
    shadow_positive_rate: float | None
    mean_difference: float | None
    mean_abs_difference: float | None
    max_abs_difference: float | None
    paired_t: PairedT | None
    wilcoxon: Wilcoxon | None
    labeled: int
    production_accuracy: float | None
    shadow_accuracy: float | None
    mcnemar: McNemar | None
    shadow_errors: int
    shadow_error_rate: float | None
    unavailable: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (no NaN, no numpy types)."""
        out = asdict(self)
        out["agreement_ci"] = None if self.agreement_ci is None else {"low": self.agreement_ci[0],
                                                                      "high": self.agreement_ci[1]}
        if self.mcnemar is not None:
            out["mcnemar"]["discordant"] = self.mcnemar.discordant
        return out


def _validate(pairs: Sequence[ShadowPair]) -> None:
    problems: dict[str, str] = {}
    for i, p in enumerate(pairs):
        for name in ("production_probability", "shadow_probability"):
            value = getattr(p, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
                problems[f"pairs[{i}].{name}"] = "expected a probability within 0-1"
        for name in ("production_label", "shadow_label", "label"):
            value = getattr(p, name)
            if value is None and name == "label":
                continue
            if isinstance(value, bool) or value not in (0, 1):
                problems[f"pairs[{i}].{name}"] = "expected 0 or 1"
        if len(problems) >= 20:
            break
    if problems:
        raise ShadowInputError(problems)


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


def paired_t(shadow: np.ndarray, production: np.ndarray, confidence: float) -> PairedT | str:
    """The paired t-test, or why it cannot be computed."""
    from scipy import stats  # imported on first use: keeps it out of the function's 10 s init

    diff = shadow - production
    if diff.size < 2:
        return f"needs at least 2 pairs, got {diff.size}"
    if not diff.any():
        return "all differences are zero: both versions gave the same probabilities"
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_rel(shadow, production)
        ci = res.confidence_interval(confidence)
    values = (float(res.statistic), float(res.pvalue), float(ci.low), float(ci.high))
    if not _finite(*values):
        return f"the differences have no variance (all {float(diff[0])!r}): the t statistic is undefined"
    return PairedT(values[0], values[1], int(res.df), values[2], values[3])


def wilcoxon(shadow: np.ndarray, production: np.ndarray) -> Wilcoxon | str:
    """The Wilcoxon signed-rank test, or why it cannot be computed."""
    from scipy import stats

    nonzero = int(np.count_nonzero(shadow - production))
    if shadow.size == 0:
        return "no paired predictions"
    if nonzero == 0:
        return "all differences are zero: both versions gave the same probabilities"
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.wilcoxon(shadow, production, zero_method=ZERO_METHOD)
    statistic, p_value = float(res.statistic), float(res.pvalue)
    if not _finite(statistic, p_value):
        return "the signed-rank statistic is undefined for these differences"
    return Wilcoxon(statistic, p_value, nonzero)


def mcnemar(production_correct: np.ndarray, shadow_correct: np.ndarray) -> McNemar:
    """McNemar's test of equal accuracy on paired correctness (see the module docstring)."""
    from scipy import stats

    b = int(np.sum(production_correct & ~shadow_correct))
    c = int(np.sum(~production_correct & shadow_correct))
    if b + c < EXACT_BELOW:
        statistic = float(min(b, c))
        p_value = min(1.0, 2.0 * float(stats.binom.cdf(min(b, c), b + c, 0.5)))
        return McNemar(b, c, statistic, p_value, "exact")
    statistic = (abs(b - c) - 1.0) ** 2 / (b + c)
    return McNemar(b, c, statistic, float(stats.chi2.sf(statistic, 1)), "chi2")


def analyze_shadow(pairs: Sequence[ShadowPair], *, shadow_errors: int = 0,
                   confidence: float = 0.95) -> ShadowAnalysis:
    """Compare shadow with production on paired requests; ``shadow_errors`` is the number of
    requests in the same window on which the shadow failed (not in ``pairs``).

    Raises ShadowInputError for a probability outside 0-1 or a label other than 0/1.
    """
    if not 0.0 < confidence < 1.0:
        raise ShadowInputError({"confidence": "expected a number strictly between 0 and 1"})
    if isinstance(shadow_errors, bool) or not isinstance(shadow_errors, int) or shadow_errors < 0:
        raise ShadowInputError({"shadow_errors": "expected a non-negative integer"})
    _validate(pairs)
    n = len(pairs)
    prod_p = np.array([p.production_probability for p in pairs], dtype=float)
    shadow_p = np.array([p.shadow_probability for p in pairs], dtype=float)
    prod_l = np.array([p.production_label for p in pairs], dtype=int)
    shadow_l = np.array([p.shadow_label for p in pairs], dtype=int)
    unavailable: dict[str, str] = {}

    agreements = int(np.sum(prod_l == shadow_l))
    if n:
        low, high = wilson_interval(agreements, n, 1.0 - confidence)
        diff = shadow_p - prod_p
        rates = (agreements / n, (low, high), float(prod_l.mean()), float(shadow_l.mean()),
                 float(diff.mean()), float(np.abs(diff).mean()), float(np.abs(diff).max()))
    else:
        rates = (None,) * 7
        unavailable["agreement_rate"] = "no paired predictions"

    t = paired_t(shadow_p, prod_p, confidence)
    if isinstance(t, str):
        unavailable["paired_t"], t = t, None
    w = wilcoxon(shadow_p, prod_p)
    if isinstance(w, str):
        unavailable["wilcoxon"], w = w, None

    truth = [(i, p.label) for i, p in enumerate(pairs) if p.label is not None]
    if truth:
        index = np.array([i for i, _ in truth])
        y = np.array([label for _, label in truth], dtype=int)
        prod_ok, shadow_ok = prod_l[index] == y, shadow_l[index] == y
        accuracy = (float(prod_ok.mean()), float(shadow_ok.mean()))
        m: McNemar | None = mcnemar(prod_ok, shadow_ok)
    else:
        accuracy = (None, None)
        m = None
        unavailable["mcnemar"] = "no feedback labels for these requests"

    total = n + shadow_errors
    return ShadowAnalysis(
        n=n, confidence=confidence, agreements=agreements, agreement_rate=rates[0], agreement_ci=rates[1],
        production_positive_rate=rates[2], shadow_positive_rate=rates[3], mean_difference=rates[4],
        mean_abs_difference=rates[5], max_abs_difference=rates[6], paired_t=t, wilcoxon=w,
        labeled=len(truth), production_accuracy=accuracy[0], shadow_accuracy=accuracy[1], mcnemar=m,
        shadow_errors=shadow_errors, shadow_error_rate=shadow_errors / total if total else None,
        unavailable=unavailable,
    )


# ---------------------------------------------------------------------------------- verdict


@dataclass(frozen=True)
class ShadowPolicy:
    """When a shadow may go on to the canary. As in the canary gate (`mlops.rollout.gate`), a
    rule fails only on evidence: a one-sided test at ``alpha`` that the shadow is worse.

    * ``min_pairs``: at least this many paired predictions;
    * ``min_agreement``: fails when the agreement rate is significantly below it: the one-sided
      upper ``1 - alpha`` Wilson bound (the upper end of the two-sided ``1 - 2 alpha``
      interval) is below ``min_agreement``;
    * ``max_mean_shift``: fails when the mean probability difference is larger than this in
      magnitude *and* the paired t-test rejects a zero mean at ``alpha`` (two-sided: a shift
      either way changes what users get). When the t-test is unavailable (one pair, a constant
      difference) the mean difference alone is compared; all differences zero never fails;
    * McNemar: fails when the shadow is the less accurate one (``b > c``) and the two-sided
      p-value is below ``2 alpha`` (the one-sided test at ``alpha``, for the exact binomial
      and the chi-square form alike); ``min_labeled`` feedback labels are required (0: judge
      accuracy only when some exist);
    * ``max_error_rate``: fails when the shadow's error rate is significantly above it (the
      one-sided lower ``1 - alpha`` Wilson bound is above it).

    ``alpha`` is within (0, 0.5); rates within 0-1.
    """

    min_pairs: int = 100
    min_agreement: float = 0.95
    max_mean_shift: float = 0.05
    alpha: float = 0.05
    min_labeled: int = 0
    max_error_rate: float = 0.01

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, *, prefix: str = "policy.") -> "ShadowPolicy":
        """A policy from JSON (missing keys take the defaults); ShadowInputError names each
        bad field (``policy.alpha``...)."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ShadowInputError({prefix.rstrip("."): "expected an object"})
        known = {f.name: f for f in fields(cls)}
        problems: dict[str, str] = {}
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                problems[f"{prefix}{key}"] = "unknown field"
                continue
            integer = known[key].type in (int, "int")
            low = 1 if key == "min_pairs" else 0
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                problems[f"{prefix}{key}"] = f"expected an integer >= {low}" if integer else "expected a number"
                continue
            if integer:
                if value != int(value) or value < low:
                    problems[f"{prefix}{key}"] = f"expected an integer >= {low}"
                    continue
                value = int(value)
            elif key == "alpha" and not 0.0 < value < 0.5:
                problems[f"{prefix}{key}"] = "expected a number strictly between 0 and 0.5"
                continue
            elif not 0.0 <= value <= 1.0:
                problems[f"{prefix}{key}"] = "expected a number within 0-1"
                continue
            values[key] = value if integer else float(value)
        if problems:
            raise ShadowInputError(problems)
        return cls(**values)


def shadow_verdict(analysis: ShadowAnalysis, policy: ShadowPolicy) -> tuple[bool, list[str]]:
    """``(ok, reasons)``: ok when no rule of the policy fails; reasons say which failed and why
    (empty when ok)."""
    reasons: list[str] = []
    a = analysis
    if a.n < policy.min_pairs:
        reasons.append(f"only {a.n} paired predictions; the policy needs at least {policy.min_pairs}")
    one_sided = 2 * policy.alpha  # the one-sided 1 - alpha bound is an end of this two-sided interval
    if a.n:
        high = wilson_interval(a.agreements, a.n, one_sided)[1]
        if high < policy.min_agreement:
            reasons.append(f"label agreement {a.agreement_rate:.4f} is significantly below {policy.min_agreement} "
                           f"(upper {1 - policy.alpha:.0%} Wilson bound {high:.4f})")
    if a.mean_difference is not None and abs(a.mean_difference) > policy.max_mean_shift:
        if a.paired_t is None:
            reasons.append(f"mean probability shift {a.mean_difference:+.4f} exceeds +/-{policy.max_mean_shift} "
                           f"({a.unavailable.get('paired_t', 'no t-test')})")
        elif a.paired_t.p_value < policy.alpha:
            reasons.append(f"mean probability shift {a.mean_difference:+.4f} exceeds +/-{policy.max_mean_shift} "
                           f"and is significant (paired t-test p={a.paired_t.p_value:.3g})")
    if a.labeled < policy.min_labeled:
        reasons.append(f"only {a.labeled} predictions with feedback; the policy needs at least {policy.min_labeled}")
    m = a.mcnemar
    if m is not None and m.production_only > m.shadow_only and m.p_value < one_sided:
        reasons.append(f"shadow is significantly less accurate ({a.shadow_accuracy:.4f} vs {a.production_accuracy:.4f}; "
                       f"McNemar {m.method} two-sided p={m.p_value:.3g}, b={m.production_only}, c={m.shadow_only})")
    if a.shadow_errors:
        total = a.n + a.shadow_errors
        low = wilson_interval(a.shadow_errors, total, one_sided)[0]
        if low > policy.max_error_rate:
            reasons.append(f"shadow error rate {a.shadow_errors}/{total} is significantly above "
                           f"{policy.max_error_rate} (lower {1 - policy.alpha:.0%} Wilson bound {low:.4f})")
    return not reasons, reasons
