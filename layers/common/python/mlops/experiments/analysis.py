"""The analysis of an experiment: what ``GET /experiments/{id}/analysis`` returns.

Input: the validated :class:`~mlops.experiments.definition.ExperimentDefinition` and the
per-variant totals the store keeps::

    {"assignments": {"control": 10012, "challenger": 9988},          # enrolled entities (SRM)
     "metrics": {"pass_rate": {"control": {"n": 9500, "successes": 8560}, ...},
                 "latency_ms": {"control": {"n": 9500, "sum": ..., "sum_sq": ...}, ...}}}

(proportions: ``n`` and ``successes`` or ``sum``; means: ``n``, ``mean``, ``var`` or ``n``,
``sum``, ``sum_sq``.)

Steps, in order:

1. **SRM** (:mod:`~.srm`) on the enrolled counts. An alert blocks every conclusion: the
   numbers are still shown (they help find the bug) but ``significant`` is ``null`` and the
   decision is ``blocked``. A bandit experiment (``adaptive=True``) skips it: its split follows
   the rewards, not the weights, so a mismatch is the point (``srm.applicable`` is false).
2. **Plan** (:func:`~.power.plan`): planned entities per variant, so progress is known and
   the sequential boundary is tuned to the planned size.
3. **One comparison per treatment and metric**: Welch's t-test for means (:mod:`~.welch`),
   the two-proportion z-test for proportions (:mod:`~.proportions`), each with the difference,
   its interval and the relative lift; plus, for a sequential experiment, the always-valid
   confidence sequence (:mod:`~.sequential`) on the same estimate and standard error.
4. **Correction** (:mod:`~.correction`) across all comparisons (metrics x treatments) with the
   definition's method; the p-values corrected are the sequential ones for a sequential
   experiment, the fixed-horizon ones otherwise. Intervals are at level ``1 - alpha/m`` (``m``
   comparisons; Bonferroni-simultaneous) so that an interval excluding 0 agrees with the
   corrected decision; with ``correction: none`` at ``1 - alpha``.
5. **Decision**: ``blocked`` (SRM), ``aa_fail`` (A/A mode: a difference between identical
   variants) / ``aa_pass`` (none, at the planned size - earlier a pass would mean little),
   ``keep_running``
   (fixed-horizon experiment before its planned size, or nothing significant yet), ``ship``
   (a treatment significantly better on the primary metric and not significantly worse on
   any guardrail; the best such one wins), ``keep_control`` (every treatment is worse or
   breaks a guardrail) or ``no_difference`` (planned size reached or stop time passed, nothing
   significant). A fixed-horizon experiment reports ``significant: null`` before its planned
   size: looking early is exactly the peeking that inflates false positives.

The result is plain JSON (no NaN or infinity: those become ``null``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from mlops.experiments import correction, srm
from mlops.experiments.definition import ExperimentDefinition, Metric
from mlops.experiments.errors import ExperimentError, InsufficientData
from mlops.experiments.power import plan as make_plan
from mlops.experiments.proportions import two_proportion_ztest
from mlops.experiments.sequential import confidence_sequence, information_fraction
from mlops.experiments.summary import MeanStats, ProportionStats
from mlops.experiments.welch import welch_from_stats


def _stats(metric: Metric, raw: Any, field: str) -> MeanStats | ProportionStats:
    if not isinstance(raw, Mapping):
        raise ExperimentError(field, f"must be an object of totals, got {type(raw).__name__}")
    if metric.kind == "proportion":
        return ProportionStats.from_dict(raw, field)
    return MeanStats.from_dict(raw, field)


def _compare(metric: Metric, control: MeanStats | ProportionStats, treatment: MeanStats | ProportionStats,
             ci_alpha: float) -> dict[str, Any]:
    """The fixed-horizon comparison as a dict (plus the se the sequential interval needs)."""
    if metric.kind == "proportion":
        assert isinstance(control, ProportionStats) and isinstance(treatment, ProportionStats)
        r = two_proportion_ztest(control, treatment, alpha=ci_alpha)
        return {"test": r.test, "control_value": r.control_rate, "treatment_value": r.treatment_rate,
                "difference": r.estimate, "ci": [r.ci_low, r.ci_high], "lift": r.lift,
                "lift_ci": [r.lift_ci_low, r.lift_ci_high], "statistic": r.statistic, "p_value": r.p_value,
                "_se": r.se_unpooled}
    assert isinstance(control, MeanStats) and isinstance(treatment, MeanStats)
    w = welch_from_stats(control, treatment, alpha=ci_alpha)
    return {"test": w.test, "control_value": w.control_mean, "treatment_value": w.treatment_mean,
            "difference": w.estimate, "ci": [w.ci_low, w.ci_high], "lift": w.lift,
            "lift_ci": [w.lift_ci_low, w.lift_ci_high], "statistic": w.statistic, "df": w.df, "p_value": w.p_value,
            "_se": w.se}


def analyze(definition: ExperimentDefinition, data: Mapping[str, Any], *, now: datetime | None = None,
            daily_entities: float | None = None, adaptive: bool = False) -> dict[str, Any]:
    """The analysis of ``definition`` on ``data`` (see module doc); ``now`` decides whether the
    stop time has passed; ``daily_entities`` adds a duration estimate to the plan; ``adaptive``
    (a bandit allocated the traffic) leaves the SRM check out."""
    if not isinstance(data, Mapping):
        raise ExperimentError("data", f"must be an object, got {type(data).__name__}")
    for key in data:
        if key not in ("assignments", "metrics"):
            raise ExperimentError(f"data.{key}", "unknown field; known fields: assignments, metrics")
    assignments = data.get("assignments")
    if not isinstance(assignments, Mapping):
        raise ExperimentError("assignments", "is required: enrolled entities per variant")
    names = [v.name for v in definition.variants]
    for name in assignments:
        if name not in names:
            raise ExperimentError(f"assignments.{name}", f"unknown variant; variants are {names}")
    for name in names:
        if name not in assignments:
            raise ExperimentError(f"assignments.{name}", "is required (0 if nobody was enrolled)")
    srm_result = srm.check(assignments, definition.allocation)
    blocked = srm_result.alert and not adaptive
    srm_report: dict[str, Any] = {**srm_result.to_dict(), "applicable": not adaptive}
    if adaptive:
        srm_report.update(alert=False, reason="a bandit allocates adaptively: the split follows the rewards, "
                                              "not the weights, so it is not checked against them")

    metrics_raw = data.get("metrics")
    if not isinstance(metrics_raw, Mapping):
        raise ExperimentError("metrics", "is required: totals per metric and variant")
    known = {m.name for m in definition.metrics}
    for name in metrics_raw:
        if name not in known:
            raise ExperimentError(f"metrics.{name}", f"unknown metric; metrics are {sorted(known)}")

    the_plan = make_plan(definition, daily_entities)
    family = len(definition.metrics) * len(definition.treatments)
    ci_alpha = definition.alpha / family if definition.correction != "none" else definition.alpha
    control = definition.control

    comparisons: list[dict[str, Any]] = []
    progress: dict[str, float] = {}
    for role, metric in [("primary", definition.primary_metric)] + [("guardrail", m) for m in definition.guardrail_metrics]:
        per_variant = metrics_raw.get(metric.name)
        if not isinstance(per_variant, Mapping):
            raise ExperimentError(f"metrics.{metric.name}", "is required: totals per variant")
        for name in per_variant:
            if name not in names:
                raise ExperimentError(f"metrics.{metric.name}.{name}", f"unknown variant; variants are {names}")
        stats = {}
        for name in names:
            if name not in per_variant:
                raise ExperimentError(f"metrics.{metric.name}.{name}", "is required (n 0 if no data)")
            stats[name] = _stats(metric, per_variant[name], f"metrics.{metric.name}.{name}")
        for treatment in definition.treatments:
            row: dict[str, Any] = {"metric": metric.name, "role": role, "kind": metric.kind,
                                   "direction": metric.direction, "variant": treatment, "control": control,
                                   "n_control": stats[control].n, "n_variant": stats[treatment].n,
                                   "ci_level": 1.0 - ci_alpha}
            fraction = None
            if stats[control].n > 0 and stats[treatment].n > 0:
                fraction = information_fraction(stats[control].n, stats[treatment].n,
                                                the_plan.required[control], the_plan.required[treatment])
            row["information_fraction"] = fraction
            if role == "primary":
                progress[treatment] = fraction or 0.0
            try:
                row.update(_compare(metric, stats[control], stats[treatment], ci_alpha))
                row["status"] = "ok"
            except InsufficientData as err:
                row.update({"status": "insufficient_data", "reason": str(err), "p_value": math.nan})
            se = row.pop("_se", None)
            if definition.sequential and row["status"] == "ok" and se and se > 0 and fraction:
                cs = confidence_sequence(row["difference"], se, fraction, ci_alpha)
                row["sequential"] = {"method": cs.method, "ci": [cs.ci_low, cs.ci_high], "p_value": cs.p_value,
                                     "boundary_z": cs.boundary_z}
            elif definition.sequential:
                row["sequential"] = None
            comparisons.append(row)

    # Correction across the family, on the p-values the decision uses.
    def decision_p(row: dict[str, Any]) -> float:
        if definition.sequential:
            return row["sequential"]["p_value"] if row.get("sequential") else math.nan
        return row["p_value"]

    adjusted = correction.adjust([decision_p(r) for r in comparisons], definition.correction)
    stopped = _stopped(definition, now)
    reached = bool(progress) and min(progress.values()) >= 1.0
    conclusive = not blocked and (definition.sequential or reached or stopped)
    for row, p_adj in zip(comparisons, adjusted):
        row["p_value_adjusted"] = p_adj
        if not conclusive or math.isnan(p_adj):
            row["significant"] = None
            row["outcome"] = "blocked" if blocked else ("insufficient_data" if math.isnan(p_adj) else "pending")
            continue
        significant = p_adj <= definition.alpha
        row["significant"] = significant
        better = (row["difference"] > 0) == (row["direction"] == "increase")
        row["outcome"] = ("better" if better else "worse") if significant else "inconclusive"

    decision = _decide(definition, comparisons, blocked, srm_result, conclusive, reached, stopped)
    result = {
        "experiment_id": definition.experiment_id,
        "mode": definition.mode,
        "control": control,
        "alpha": definition.alpha,
        "correction": definition.correction,
        "sequential": definition.sequential,
        "srm": srm_report,
        "plan": the_plan.to_dict(),
        "progress": progress,
        "comparisons": comparisons,
        "decision": decision,
    }
    return _clean(result)


def _stopped(definition: ExperimentDefinition, now: datetime | None) -> bool:
    if definition.stop is None:
        return False
    moment = now or datetime.now(timezone.utc)
    if moment.tzinfo is None:
        raise ExperimentError("now", "needs a time zone")
    return moment >= datetime.fromisoformat(definition.stop)


def _decide(definition: ExperimentDefinition, rows: list[dict[str, Any]], blocked: bool, srm_result: srm.SrmResult,
            conclusive: bool, reached: bool, stopped: bool) -> dict[str, Any]:
    if blocked:
        return {"status": "blocked", "winner": None,
                "reasons": [f"sample ratio mismatch: chi-square p = {srm_result.p_value:.3g} < {srm_result.threshold:g}; "
                            "no conclusion until the assignment or logging bug is fixed"]}
    if definition.mode == "aa":
        flagged = [r for r in rows if r.get("significant")]
        if conclusive and flagged:
            return {"status": "aa_fail", "winner": None,
                    "reasons": [f"{r['metric']}: {r['variant']} differs from {r['control']} "
                                f"(adjusted p = {r['p_value_adjusted']:.3g}) although both serve the same model"
                                for r in flagged]}
        if conclusive and (reached or stopped):
            return {"status": "aa_pass", "winner": None,
                    "reasons": ["no metric differs between identical variants at the planned sample size "
                                "and the split matches the allocation"]}
        return {"status": "keep_running", "winner": None,
                "reasons": ["A/A check: nothing differs so far; a pass needs the planned sample size"]}
    if not conclusive:
        return {"status": "keep_running", "winner": None,
                "reasons": ["fixed-horizon analysis: wait for the planned sample size "
                            "(or use a sequential experiment to stop early)"]}
    verdicts: dict[str, str] = {}
    reasons: list[str] = []
    for treatment in definition.treatments:
        mine = [r for r in rows if r["variant"] == treatment]
        primary = next(r for r in mine if r["role"] == "primary")
        harmed = [r for r in mine if r["role"] == "guardrail" and r.get("outcome") == "worse"]
        if harmed:
            verdicts[treatment] = "guardrail_violation"
            reasons += [f"{treatment}: guardrail {r['metric']} significantly worse" for r in harmed]
        elif primary.get("outcome") == "better":
            verdicts[treatment] = "better"
            reasons.append(f"{treatment}: {primary['metric']} significantly better")
        elif primary.get("outcome") == "worse":
            verdicts[treatment] = "worse"
            reasons.append(f"{treatment}: {primary['metric']} significantly worse")
        else:
            verdicts[treatment] = "inconclusive"
    winners = [t for t, v in verdicts.items() if v == "better"]
    if winners:
        def gain(t: str) -> float:
            row = next(r for r in rows if r["variant"] == t and r["role"] == "primary")
            return row["difference"] if row["direction"] == "increase" else -row["difference"]
        best = max(winners, key=gain)
        return {"status": "ship", "winner": best, "verdicts": verdicts, "reasons": reasons}
    if verdicts and all(v in ("worse", "guardrail_violation") for v in verdicts.values()):
        return {"status": "keep_control", "winner": definition.control, "verdicts": verdicts, "reasons": reasons}
    if reached or stopped:
        return {"status": "no_difference", "winner": None, "verdicts": verdicts,
                "reasons": reasons + ["planned sample size reached" if reached else "stop time passed"]}
    return {"status": "keep_running", "winner": None, "verdicts": verdicts,
            "reasons": reasons + ["nothing conclusive yet; the sequential analysis may be checked at any time"]}


def _clean(value: Any) -> Any:
    """JSON-safe copy: NaN and infinities become None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value
