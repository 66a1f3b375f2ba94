"""The analysis result: numbers equal to the references, SRM blocks, decisions, bad input."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from mlops.experiments import analyze
from mlops.experiments.definition import ExperimentDefinition
from mlops.experiments.errors import ExperimentError
from mlops.experiments.sequential import confidence_sequence, information_fraction


def definition(**overrides: Any) -> ExperimentDefinition:
    base: dict[str, Any] = {
        "experiment_id": "exp-1",
        "variants": [{"name": "control", "weight": 1, "model_version": "3"},
                     {"name": "challenger", "weight": 1, "model_version": "4"}],
        "primary_metric": {"name": "pass_rate", "kind": "proportion", "baseline": 0.5},
        "guardrail_metrics": [{"name": "latency_ms", "kind": "mean", "direction": "decrease"}],
        "mde": 0.05, "stop": "2030-01-01T00:00:00Z",
    }
    base.update(overrides)
    return ExperimentDefinition.from_dict(base)


def simulate(n: int, rates: dict[str, float], latency: dict[str, float], seed: int = 0,
             enrolled: dict[str, int] | None = None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    metrics: dict[str, Any] = {"pass_rate": {}, "latency_ms": {}}
    raw: dict[str, np.ndarray] = {}
    for name in rates:
        passed = (rng.random(n) < rates[name]).astype(int)
        lat = rng.gamma(4.0, latency[name] / 4.0, n)
        raw[f"pass_{name}"], raw[f"lat_{name}"] = passed, lat
        metrics["pass_rate"][name] = {"n": n, "successes": int(passed.sum())}
        metrics["latency_ms"][name] = {"n": n, "mean": float(lat.mean()), "var": float(lat.var(ddof=1))}
    return {"assignments": enrolled or {k: n for k in rates}, "metrics": metrics}, raw


def row(result: dict[str, Any], metric: str, variant: str = "challenger") -> dict[str, Any]:
    return next(r for r in result["comparisons"] if r["metric"] == metric and r["variant"] == variant)


def test_numbers_equal_scipy_and_statsmodels_and_correction_is_holm() -> None:
    d = definition(sequential=False)
    data, raw = simulate(20000, {"control": 0.50, "challenger": 0.52}, {"control": 100.0, "challenger": 101.0})
    result = analyze(d, data)
    json.dumps(result, allow_nan=False)  # plain JSON
    m = 2  # two metrics x one treatment
    p_row, l_row = row(result, "pass_rate"), row(result, "latency_ms")
    z, p = proportions_ztest([raw["pass_challenger"].sum(), raw["pass_control"].sum()], [20000, 20000])
    assert p_row["statistic"] == pytest.approx(z, rel=1e-12) and p_row["p_value"] == pytest.approx(p, rel=1e-12)
    low, high = confint_proportions_2indep(raw["pass_challenger"].sum(), 20000, raw["pass_control"].sum(), 20000,
                                           alpha=0.05 / m)
    assert p_row["ci"] == pytest.approx([low, high], rel=1e-12) and p_row["ci_level"] == pytest.approx(1 - 0.05 / m)
    t = stats.ttest_ind(raw["lat_challenger"], raw["lat_control"], equal_var=False)
    assert l_row["statistic"] == pytest.approx(t.statistic, rel=1e-9)
    assert l_row["p_value"] == pytest.approx(t.pvalue, rel=1e-9)
    ci = t.confidence_interval(confidence_level=1 - 0.05 / m)
    assert l_row["ci"] == pytest.approx([ci.low, ci.high], rel=1e-9)
    _, adjusted, _, _ = multipletests([p_row["p_value"], l_row["p_value"]], method="holm")
    assert [p_row["p_value_adjusted"], l_row["p_value_adjusted"]] == pytest.approx(list(adjusted), rel=1e-12)


def test_ship_when_primary_better_and_guardrail_fine() -> None:
    data, _ = simulate(20000, {"control": 0.50, "challenger": 0.53}, {"control": 100.0, "challenger": 100.0}, seed=1)
    result = analyze(definition(), data)
    assert result["decision"]["status"] == "ship" and result["decision"]["winner"] == "challenger"
    r = row(result, "pass_rate")
    assert r["significant"] is True and r["outcome"] == "better"
    frac = information_fraction(20000, 20000, result["plan"]["required"]["control"],
                                result["plan"]["required"]["challenger"])
    cs = confidence_sequence(r["difference"], np_se(data), frac, 0.05 / 2)
    assert r["sequential"]["ci"] == pytest.approx([cs.ci_low, cs.ci_high], rel=1e-12)
    assert r["sequential"]["p_value"] == pytest.approx(cs.p_value, rel=1e-12)


def np_se(data: dict[str, Any]) -> float:
    c, t = data["metrics"]["pass_rate"]["control"], data["metrics"]["pass_rate"]["challenger"]
    pc, pt = c["successes"] / c["n"], t["successes"] / t["n"]
    return float(np.sqrt(pc * (1 - pc) / c["n"] + pt * (1 - pt) / t["n"]))


def test_guardrail_violation_blocks_the_winner() -> None:
    data, _ = simulate(20000, {"control": 0.50, "challenger": 0.53}, {"control": 100.0, "challenger": 110.0}, seed=2)
    result = analyze(definition(), data)
    assert row(result, "latency_ms")["outcome"] == "worse"
    assert result["decision"]["status"] == "keep_control"
    assert result["decision"]["verdicts"] == {"challenger": "guardrail_violation"}


def test_srm_blocks_every_conclusion() -> None:
    data, _ = simulate(20000, {"control": 0.50, "challenger": 0.56}, {"control": 100.0, "challenger": 100.0},
                       enrolled={"control": 20000, "challenger": 19000}, seed=3)
    result = analyze(definition(), data)
    assert result["srm"]["alert"] is True and result["srm"]["p_value"] < 0.001
    assert result["decision"]["status"] == "blocked" and result["decision"]["winner"] is None
    assert all(r["significant"] is None and r["outcome"] == "blocked" for r in result["comparisons"])
    assert row(result, "pass_rate")["p_value"] < 1e-6  # the numbers are still shown, for debugging


def test_fixed_horizon_does_not_conclude_before_the_planned_size() -> None:
    d = definition(sequential=False)
    data, _ = simulate(1500, {"control": 0.50, "challenger": 0.58}, {"control": 100.0, "challenger": 100.0}, seed=4)
    early = analyze(d, data, now=datetime(2025, 1, 1, tzinfo=timezone.utc))
    assert early["progress"]["challenger"] < 1
    assert early["decision"]["status"] == "keep_running"
    assert row(early, "pass_rate")["significant"] is None and row(early, "pass_rate")["p_value"] < 0.001
    late = analyze(d, data, now=datetime(2031, 1, 1, tzinfo=timezone.utc))  # past stop: conclude
    assert late["decision"]["status"] == "ship"


def test_sequential_keeps_running_then_no_difference_at_the_planned_size() -> None:
    d = definition()
    data, _ = simulate(500, {"control": 0.5, "challenger": 0.5}, {"control": 100.0, "challenger": 100.0}, seed=5)
    assert analyze(d, data)["decision"]["status"] == "keep_running"
    n = analyze(d, data)["plan"]["required"]["control"]
    data, _ = simulate(n, {"control": 0.5, "challenger": 0.5}, {"control": 100.0, "challenger": 100.0}, seed=6)
    result = analyze(d, data)
    assert result["progress"]["challenger"] == pytest.approx(1.0)
    assert result["decision"]["status"] == "no_difference"


def test_aa_mode_passes_on_identical_variants_and_fails_on_a_broken_pipeline() -> None:
    d = definition(mode="aa", variants=[{"name": "a1", "weight": 1, "model_version": "3"},
                                        {"name": "a2", "weight": 1, "model_version": "3"}])
    early, _ = simulate(2000, {"a1": 0.5, "a2": 0.5}, {"a1": 100.0, "a2": 100.0}, seed=7)
    result = analyze(d, early)
    assert result["decision"]["status"] == "keep_running"  # no pass without the planned size
    n = result["plan"]["required"]["a1"]
    data, _ = simulate(n, {"a1": 0.5, "a2": 0.5}, {"a1": 100.0, "a2": 100.0}, seed=7)
    assert analyze(d, data)["decision"]["status"] == "aa_pass"
    broken, _ = simulate(4000, {"a1": 0.5, "a2": 0.57}, {"a1": 100.0, "a2": 100.0}, seed=7)
    result = analyze(d, broken)  # a difference between identical variants fails at once
    assert result["decision"]["status"] == "aa_fail"
    assert "pass_rate" in result["decision"]["reasons"][0]


def test_multi_variant_family_and_unequal_allocation() -> None:
    d = definition(variants=[{"name": "control", "weight": 2}, {"name": "b", "weight": 1}, {"name": "c", "weight": 1}],
                   correction="bonferroni")
    rng = np.random.default_rng(8)
    n = {"control": 20000, "b": 10000, "c": 10000}
    rates = {"control": 0.5, "b": 0.5, "c": 0.54}
    data = {"assignments": n, "metrics": {
        "pass_rate": {k: {"n": n[k], "successes": int(rng.binomial(n[k], rates[k]))} for k in n},
        "latency_ms": {k: {"n": n[k], "sum": 100.0 * n[k], "sum_sq": (100.0 ** 2 + 25.0) * n[k]} for k in n}}}
    result = analyze(d, data)
    assert result["srm"]["alert"] is False
    assert len(result["comparisons"]) == 4 and result["plan"]["comparisons"] == 4
    rows = result["comparisons"]
    raw = [r["sequential"]["p_value"] for r in rows]
    assert [r["p_value_adjusted"] for r in rows] == pytest.approx([min(1.0, 4 * p) for p in raw], rel=1e-12)
    assert result["decision"]["status"] == "ship" and result["decision"]["winner"] == "c"


def test_insufficient_data_is_reported_not_raised() -> None:
    d = definition()
    data, _ = simulate(1000, {"control": 0.5, "challenger": 0.5}, {"control": 100.0, "challenger": 100.0})
    data["metrics"]["latency_ms"]["challenger"] = {"n": 1, "mean": 90.0, "var": 0.0}
    result = analyze(d, data)
    r = row(result, "latency_ms")
    assert r["status"] == "insufficient_data" and r["significant"] is None and r["p_value"] is None
    assert "latency_ms" in json.dumps(result, allow_nan=False)


@pytest.mark.parametrize("mutate,field", [
    (lambda d: d.pop("assignments"), "assignments"),
    (lambda d: d["assignments"].pop("challenger"), "assignments.challenger"),
    (lambda d: d["assignments"].update(ghost=3), "assignments.ghost"),
    (lambda d: d["metrics"].update(revenue={}), "metrics.revenue"),
    (lambda d: d["metrics"].pop("latency_ms"), "metrics.latency_ms"),
    (lambda d: d["metrics"]["pass_rate"].pop("control"), "metrics.pass_rate.control"),
    (lambda d: d["metrics"]["pass_rate"].update(ghost={"n": 1, "successes": 0}), "metrics.pass_rate.ghost"),
    (lambda d: d["metrics"]["pass_rate"]["control"].pop("successes"), "metrics.pass_rate.control.successes"),
    (lambda d: d["metrics"]["pass_rate"]["control"].update(successes=10**9), "metrics.pass_rate.control.successes"),
    (lambda d: d.update(extra=1), "data.extra"),
])
def test_bad_data_names_the_field(mutate, field: str) -> None:
    data, _ = simulate(100, {"control": 0.5, "challenger": 0.5}, {"control": 100.0, "challenger": 100.0})
    mutate(data)
    with pytest.raises(ExperimentError) as info:
        analyze(definition(), data)
    assert info.value.field == field
