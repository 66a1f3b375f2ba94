"""The canary gate: roll back, wait for more data, go to the next stage, or promote.

At each stage the rollout compares the challenger (rows routed to it during the stage) with the
champion (rows it answered from ``baseline_seconds`` before the rollout began until now: a
steadier baseline, and the only one at the 100% stage or with blue/green, where the champion
takes no traffic during the rollout; at most the latest ``baseline_rows`` (5000) of them
beyond the current stage's window, which is always read whole, so an evaluation costs the
same late in a long rollout as early on). Decisions rest on statistical tests, not raw point estimates; a check fails
only when the effect is larger than its threshold AND the test finds it significant at
``alpha`` (one-sided, challenger worse):

========================  ===================================================================
``sample_ratio``          chi-square goodness of fit of the stage's routed counts to the
                          stage's split (`mlops.experiments.srm`); fails at p < ``srm_alpha``
                          (0.001). Skipped at 0% and 100%. A mismatch means the comparison
                          itself cannot be trusted (lost rows, misrouting), so it rolls back.
``error_rate``            challenger error rate > ``max_error_rate`` (1%) and the two-proportion
                          z-test (`mlops.experiments.proportions`) says it is above the champion's
``latency``               challenger p95 > champion p95 x (1 + ``max_latency_increase``) (50%)
                          and the Mann-Whitney U test (scipy) says its latencies are larger;
                          compared with champion rows of the same stage window only (latency
                          moves with load and time, so an earlier baseline would confound it):
                          see `mlops.rollout.canary` for the 100% stage and blue/green
``accuracy``              on labelled rows: challenger accuracy < champion accuracy x
                          (1 - ``max_accuracy_drop``) (5%) and the two-proportion z-test says
                          it is below; skipped until both have ``min_labelled`` labels
========================  ===================================================================

Both windows end ``settle_seconds`` (10: the inference function's timeout) before the
evaluation, so rows still being written count for neither variant rather than for one; the
stage's window starts ``switch_seconds`` (15) after its weights changed, since warm inference
functions keep routing by the old weights for up to their deployment cache (5 s) plus a request.

``alpha`` (0.05) is the family-wise false-rollback rate of the whole rollout: each test runs at
``alpha / (3 x stages)`` (Bonferroni over the three tested checks of every stage; each stage is
tested once, when it has its samples), so a healthy challenger walks four stages and is rolled
back by chance at most 5% of the time. The sample-ratio check keeps its own ``srm_alpha``.

Before any of this, each variant needs ``min_samples`` rows in its window, and with
``require_labels`` also ``min_labelled`` labelled rows (so a rollout whose accuracy matters
waits for feedback instead of passing the accuracy check unjudged); short of that the answer
is ``extend`` (bake again), and after
``max_extensions`` bakes without enough data it is ``rollback`` (``insufficient_data``): a
rollout never promotes what it could not measure. All checks pass: ``continue`` to the next
stage, or ``promote`` after the last. Pure: plain values in, a `GateResult` out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from mlops.experiments import srm
from mlops.experiments.errors import ExperimentError
from mlops.experiments.proportions import two_proportion_ztest
from mlops.experiments.summary import ProportionStats
from mlops.monitoring.version_stats import VersionStats

DECISIONS = ("rollback", "extend", "continue", "promote")
TESTED = ("error_rate", "latency", "accuracy")


@dataclass(frozen=True)
class GatePolicy:
    """Thresholds of the canary gate (see the module docstring); all configurable."""

    max_error_rate: float = 0.01
    max_latency_increase: float = 0.5
    max_accuracy_drop: float = 0.05
    alpha: float = 0.05
    srm_alpha: float = 0.001
    min_samples: int = 30
    min_labelled: int = 30
    max_extensions: int = 20
    require_labels: bool = False
    baseline_seconds: int = 3600
    baseline_rows: int = 5000
    settle_seconds: float = 10.0
    switch_seconds: float = 15.0

    def __post_init__(self) -> None:
        for name in ("max_error_rate", "max_accuracy_drop", "alpha", "srm_alpha"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
                raise ValueError(f"{name}: must be a number in (0, 1)")
        if not (isinstance(self.max_latency_increase, (int, float)) and self.max_latency_increase > 0):
            raise ValueError("max_latency_increase: must be a positive number")
        for name in ("min_samples", "min_labelled", "max_extensions", "baseline_rows"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: must be a positive integer")
        if not isinstance(self.require_labels, bool):
            raise ValueError("require_labels: must be true or false")
        if isinstance(self.baseline_seconds, bool) or not isinstance(self.baseline_seconds, int) \
                or self.baseline_seconds < 0:
            raise ValueError("baseline_seconds: must be a whole number of seconds >= 0")
        for name in ("settle_seconds", "switch_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 900:
                raise ValueError(f"{name}: must be a number of seconds within 0-900")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> "GatePolicy":
        """From JSON; ValueError names an unknown or bad field."""
        values = dict(values or {})
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown gate policy field")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


@dataclass(frozen=True)
class Check:
    """One check of the gate: did it pass, on what numbers."""

    name: str
    passed: bool
    observed: float | None = None
    limit: float | None = None
    p_value: float | None = None
    statistic: float | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


@dataclass(frozen=True)
class GateResult:
    """The decision (one of `DECISIONS`), the failed checks' names, and every check."""

    decision: str
    reasons: tuple[str, ...]
    checks: tuple[Check, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (what the state machine branches on and the audit records)."""
        return {"decision": self.decision, "reasons": list(self.reasons),
                "checks": [c.to_dict() for c in self.checks]}


def _sample_ratio(stage: Mapping[str, int], percent: float, policy: GatePolicy) -> Check:
    if not 0 < percent < 100:
        return Check("sample_ratio", True, note=f"skipped at {percent:g}%")
    result = srm.check(dict(stage), {"champion": 100 - percent, "challenger": percent}, policy.srm_alpha)
    observed = stage["challenger"] / max(1, stage["champion"] + stage["challenger"])
    return Check("sample_ratio", not result.alert, observed=observed, limit=percent / 100,
                 p_value=result.p_value, statistic=result.statistic)


def _proportion_check(name: str, control: ProportionStats, treatment: ProportionStats, alternative: str,
                      observed: float, limit: float, alpha: float) -> Check:
    """The two-proportion z-test behind the error and accuracy checks (reached only when the
    effect is past its limit): fails when the test finds the challenger worse at ``alpha``."""
    try:
        test = two_proportion_ztest(control, treatment, alpha=min(alpha, 0.5), alternative=alternative)
    except ExperimentError as exc:  # e.g. no variance at all: every row of both failed
        return Check(name, False, observed=observed, limit=limit, note=str(exc))
    return Check(name, test.p_value >= alpha, observed=observed, limit=limit, p_value=test.p_value,
                 statistic=test.statistic)


def _errors(champion: VersionStats, challenger: VersionStats, policy: GatePolicy, alpha: float) -> Check:
    rate = challenger.errors / challenger.n
    if rate <= policy.max_error_rate:
        return Check("error_rate", True, observed=rate, limit=policy.max_error_rate)
    return _proportion_check("error_rate", ProportionStats(champion.n, champion.errors),
                             ProportionStats(challenger.n, challenger.errors), "larger", rate,
                             policy.max_error_rate, alpha)


def _latency(champion_ms: Sequence[float], challenger_ms: Sequence[float], policy: GatePolicy, alpha: float,
             basis: str) -> Check:
    if not champion_ms or not challenger_ms:
        return Check("latency", True, note=basis or "no latencies to compare")
    import numpy as np

    champion_p95, challenger_p95 = (float(np.percentile(np.asarray(ms, dtype=float), 95))
                                    for ms in (champion_ms, challenger_ms))
    limit = champion_p95 * (1 + policy.max_latency_increase)
    if challenger_p95 <= limit:
        return Check("latency", True, observed=challenger_p95, limit=limit, note=basis)
    from scipy.stats import mannwhitneyu  # analysis path only (StatsLayer)

    test = mannwhitneyu(challenger_ms, champion_ms, alternative="greater")
    p = float(test.pvalue)
    return Check("latency", not p < alpha, observed=challenger_p95, limit=limit, p_value=p,
                 statistic=float(test.statistic), note=basis)


def _accuracy(champion: VersionStats, challenger: VersionStats, policy: GatePolicy, alpha: float) -> Check:
    if champion.labelled < policy.min_labelled or challenger.labelled < policy.min_labelled:
        return Check("accuracy", True, note=f"fewer than {policy.min_labelled} labels on a variant: not judged")
    assert champion.accuracy is not None and challenger.accuracy is not None
    limit = champion.accuracy * (1 - policy.max_accuracy_drop)
    if challenger.accuracy >= limit:
        return Check("accuracy", True, observed=challenger.accuracy, limit=limit)
    return _proportion_check("accuracy", ProportionStats(champion.labelled, champion.correct),
                             ProportionStats(challenger.labelled, challenger.correct), "smaller",
                             challenger.accuracy, limit, alpha)


def short_of_samples(stats: VersionStats, policy: GatePolicy) -> bool:
    """Whether a variant lacks the rows (``min_samples``) or, with ``require_labels``, the
    labels (``min_labelled``) the gate needs before it tests anything."""
    return stats.n < policy.min_samples or (policy.require_labels and stats.labelled < policy.min_labelled)


def evaluate_stage(*, champion: VersionStats | None, challenger: VersionStats,
                   stage_counts: Mapping[str, int | None],
                   percent: float, last_stage: bool, extensions: int, policy: GatePolicy,
                   champion_latencies: Sequence[float] = (), challenger_latencies: Sequence[float] = (),
                   stages: int = 1, latency_basis: str = "") -> GateResult:
    """Decide one stage of a rollout of ``stages`` stages. ``stage_counts`` are the rows routed
    to ``champion`` and ``challenger`` during this stage; ``percent`` is the challenger's share
    in it; ``extensions`` how many extra bakes this stage has had already. The latency check
    compares ``challenger_latencies`` with ``champion_latencies`` (p95 of each), which the caller
    picks from the same period (latency moves with load and time); ``latency_basis`` says which
    rows they are, and is the check's note. ``champion`` may be None (not read) only while the
    challenger is short of samples (`short_of_samples`): the answer is then to wait."""
    if not 0 <= percent <= 100 or not math.isfinite(percent):
        raise ValueError("percent: must be within 0-100")
    short = [name for name, stats in (("challenger", challenger), ("champion", champion))
             if stats is not None and short_of_samples(stats, policy)]
    if champion is None and "challenger" not in short:
        raise ValueError("champion: needed once the challenger has its samples")
    if short:
        if extensions >= policy.max_extensions:
            return GateResult("rollback", ("insufficient_data",), (Check(
                "samples", False, note=f"{', '.join(short)} below {policy.min_samples} rows"
                                       + (f" or {policy.min_labelled} labels" if policy.require_labels else "")
                                       + f" after {extensions} extra bakes"),))
        return GateResult("extend", (), (Check("samples", True, note=f"waiting for {', '.join(short)}"),))
    alpha = policy.alpha / (len(TESTED) * max(1, stages))  # Bonferroni over the whole rollout
    checks = [_sample_ratio(stage_counts, percent, policy),
              _errors(champion, challenger, policy, alpha),
              _latency(champion_latencies, challenger_latencies, policy, alpha, latency_basis),
              _accuracy(champion, challenger, policy, alpha)]
    failed = tuple(c.name for c in checks if not c.passed)
    if failed:
        return GateResult("rollback", failed, tuple(checks))
    return GateResult("promote" if last_stage else "continue", (), tuple(checks))
