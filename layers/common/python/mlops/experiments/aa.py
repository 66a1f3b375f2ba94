"""A/A testing: validate the experimentation pipeline by comparing something with itself.

If every variant serves the same model, every difference the analysis reports is noise, so
over many A/A comparisons the p-values must be uniform and about ``alpha`` of them
significant. A pipeline that fails this - a biased hash, a logging path that drops one
variant's feedback, a test with the wrong variance - would mislead every real experiment.
Three tools:

* :func:`aa_definition` - a live A/A experiment: every variant serves one model version
  (``mode: "aa"``; the analysis then answers ``aa_pass`` / ``aa_fail``, SRM included);
* :func:`replay` - offline: re-split logged entities with many salts through the real
  :class:`~mlops.experiments.assignment.Assigner`, run the real test each time, and check that
  the false-positive rate is near ``alpha`` and the p-values are uniform (Kolmogorov-Smirnov);
* :func:`peeking_simulation` - the sequential guarantee: simulated A/A data looked at many
  times; the naive "stop at the first p < alpha" rate is far above ``alpha``, the confidence
  sequence's stays at or below it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from mlops.experiments.assignment import Assigner
from mlops.experiments.definition import ExperimentDefinition
from mlops.experiments.errors import ExperimentError, InsufficientData, check_choice, check_probability
from mlops.experiments.proportions import two_proportion_ztest
from mlops.experiments.sequential import confidence_sequence
from mlops.experiments.summary import MeanStats, ProportionStats
from mlops.experiments.welch import welch_from_stats


def aa_definition(experiment_id: str, model_version: str, primary_metric: Mapping[str, Any], *,
                  variants: Sequence[str] = ("a1", "a2"), weights: Sequence[float] | None = None,
                  **fields: Any) -> ExperimentDefinition:
    """An A/A experiment: ``variants`` all serving ``model_version`` (validated like any other).

    ``fields`` are any other definition fields (``mde``, ``alpha``, ``guardrail_metrics``, ...);
    ``mde`` defaults to 0.05 (relative), only used for the plan.
    """
    weights = list(weights) if weights is not None else [1.0] * len(variants)
    if len(weights) != len(variants):
        raise ExperimentError("weights", f"needs one weight per variant ({len(variants)}), got {len(weights)}")
    body = {"experiment_id": experiment_id, "mode": "aa", "primary_metric": dict(primary_metric),
            "variants": [{"name": v, "weight": w, "model_version": model_version} for v, w in zip(variants, weights)],
            "mde": 0.05, **fields}
    return ExperimentDefinition.from_dict(body)


def ks_uniform(p_values: ArrayLike) -> tuple[float, float]:
    """Kolmogorov-Smirnov distance of ``p_values`` from Uniform(0, 1) and its asymptotic p-value
    (the Kolmogorov series ``2 sum (-1)^(k-1) exp(-2 k^2 n D^2)``; equal to
    ``scipy.stats.kstest(p, "uniform", method="asymp")``)."""
    x = np.sort(np.asarray(p_values, dtype=float))
    n = x.size
    if n == 0:
        raise ExperimentError("p_values", "needs at least one p-value")
    i = np.arange(1, n + 1)
    d = float(max(np.max(i / n - x), np.max(x - (i - 1) / n)))
    return d, kolmogorov_sf(d * math.sqrt(n))


def kolmogorov_sf(t: float) -> float:
    """P(K > t) for the Kolmogorov distribution (the limit of sqrt(n) D_n)."""
    if t <= 0:
        return 1.0
    if t < 0.5:  # the alternating series converges slowly here; use the theta-function dual form
        s = sum(math.exp(-((2 * k - 1) ** 2) * math.pi ** 2 / (8 * t * t)) for k in range(1, 50))
        return max(0.0, min(1.0, 1.0 - math.sqrt(2 * math.pi) / t * s))
    total, k = 0.0, 1
    while True:
        term = math.exp(-2.0 * k * k * t * t)
        total += term if k % 2 else -term
        if term < 1e-18 or k > 100:
            break
        k += 1
    return max(0.0, min(1.0, 2.0 * total))


@dataclass(frozen=True)
class ReplayResult:
    """Outcome of an A/A replay."""

    splits: int
    alpha: float
    false_positive_rate: float
    ks_statistic: float
    ks_p_value: float
    p_values: list[float] = field(repr=False)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def replay(entity_ids: Sequence[str], values: ArrayLike, *, kind: str = "mean", splits: int = 100,
           alpha: float = 0.05, allocation: Mapping[str, float] | None = None,
           salt_prefix: str = "aa-replay") -> ReplayResult:
    """Re-split logged ``(entity, value)`` pairs ``splits`` times and test each split.

    Each split uses the salt ``f"{salt_prefix}-{i}"`` and the real assigner with ``allocation``
    (default 50/50 between ``a1`` and ``a2``; the first variant is the control); ``kind`` is
    ``mean`` (Welch) or ``proportion`` (z-test on 0/1 values).
    """
    check_choice("kind", kind, ("mean", "proportion"))
    alpha = check_probability("alpha", alpha, high=0.5, high_open=False)
    if isinstance(splits, bool) or not isinstance(splits, int) or splits < 1:
        raise ExperimentError("splits", f"must be a whole number >= 1, got {splits!r}")
    y = np.asarray(values, dtype=float)
    if y.ndim != 1 or y.size != len(entity_ids):
        raise ExperimentError("values", "needs one value per entity id")
    allocation = dict(allocation or {"a1": 0.5, "a2": 0.5})
    if len(allocation) != 2:
        raise ExperimentError("allocation", "an A/A replay compares exactly two variants")
    first = next(iter(allocation))
    ids = [str(e) for e in entity_ids]
    p_values: list[float] = []
    for i in range(splits):
        assigner = Assigner(f"{salt_prefix}-{i}", allocation)
        in_first = np.array([assigner.assign(e) == first for e in ids])
        a, b = y[in_first], y[~in_first]
        try:
            if kind == "mean":
                p = welch_from_stats(MeanStats.from_values(a), MeanStats.from_values(b), alpha=alpha).p_value
            else:
                p = two_proportion_ztest(ProportionStats.from_values(a.astype(int)),
                                         ProportionStats.from_values(b.astype(int)), alpha=alpha).p_value
        except InsufficientData:
            continue
        p_values.append(p)
    if not p_values:
        raise InsufficientData("values", "no split had enough data to test")
    fpr = sum(p < alpha for p in p_values) / len(p_values)
    d, ks_p = ks_uniform(p_values)
    return ReplayResult(splits=len(p_values), alpha=alpha, false_positive_rate=fpr, ks_statistic=d,
                        ks_p_value=ks_p, p_values=p_values)


@dataclass(frozen=True)
class PeekingResult:
    """False-positive rates of an A/A simulation with repeated looks."""

    reps: int
    looks: int
    n_per_look: int
    alpha: float
    naive_any_look: float
    naive_last_look: float
    sequential_any_look: float

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def peeking_simulation(*, reps: int = 500, looks: int = 20, n_per_look: int = 100, alpha: float = 0.05,
                       kind: str = "mean", rate: float = 0.2, seed: int = 0) -> PeekingResult:
    """A/A data (both groups from one distribution) examined after every ``n_per_look`` entities
    per group, ``looks`` times, ``reps`` times.

    ``naive_any_look``: share of runs where the fixed-horizon test had p < alpha at some look
    (what stopping at the first significant peek gives); ``naive_last_look``: share significant
    at the final look only (the honest fixed-horizon rate, about alpha);
    ``sequential_any_look``: share where the confidence sequence (tuned to the final size)
    excluded 0 at some look. Data: standard normal (``kind="mean"``, Welch's test) or Bernoulli
    with ``rate`` (``kind="proportion"``, z-test), both through the production functions.
    """
    check_choice("kind", kind, ("mean", "proportion"))
    alpha = check_probability("alpha", alpha, high=0.5, high_open=False)
    for name, value in (("reps", reps), ("looks", looks), ("n_per_look", n_per_look)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ExperimentError(name, f"must be a whole number >= 1, got {value!r}")
    rng = np.random.default_rng(seed)
    total = looks * n_per_look
    naive_any = naive_last = seq_any = 0
    for _ in range(reps):
        if kind == "mean":
            data = rng.standard_normal((2, total))
        else:
            data = (rng.random((2, total)) < rate).astype(float)
        csum = np.cumsum(data, axis=1)
        csq = np.cumsum(data * data, axis=1)
        hit_naive = hit_seq = False
        last_p = 1.0
        for look in range(1, looks + 1):
            n = look * n_per_look
            try:
                if kind == "mean":
                    c = MeanStats.from_sums(n, float(csum[0, n - 1]), float(csq[0, n - 1]))
                    t = MeanStats.from_sums(n, float(csum[1, n - 1]), float(csq[1, n - 1]))
                    r = welch_from_stats(c, t, alpha=alpha)
                    estimate, se, p = r.estimate, r.se, r.p_value
                else:
                    c2 = ProportionStats(n, int(csum[0, n - 1]))
                    t2 = ProportionStats(n, int(csum[1, n - 1]))
                    z = two_proportion_ztest(c2, t2, alpha=alpha)
                    estimate, se, p = z.estimate, z.se_unpooled, z.p_value
            except InsufficientData:
                continue
            last_p = p
            hit_naive |= p < alpha
            if se > 0:
                hit_seq |= confidence_sequence(estimate, se, look / looks, alpha).significant
        naive_any += hit_naive
        naive_last += last_p < alpha
        seq_any += hit_seq
    return PeekingResult(reps=reps, looks=looks, n_per_look=n_per_look, alpha=alpha,
                         naive_any_look=naive_any / reps, naive_last_look=naive_last / reps,
                         sequential_any_look=seq_any / reps)
