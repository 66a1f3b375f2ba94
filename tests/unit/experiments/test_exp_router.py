"""The pure parts around a running experiment: which variant a request gets (sticky hash or
bandit), the outcomes recorded from feedback, the bandit reward, the model/bandit fields of a
definition, and the report's traffic estimate."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import log_loss

from mlops.experiments import bandits, outcomes, report
from mlops.experiments.assignment import Assigner
from mlops.experiments.definition import ExperimentDefinition
from mlops.experiments.errors import ExperimentError
from mlops.experiments.router import Assignment, LiveExperiment, count_exposures
from mlops.experiments.store import ExperimentRecord

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def body(**extra: Any) -> dict[str, Any]:
    return {"experiment_id": "exp-1", "model": "yield", "mde": 0.05,
            "variants": [{"name": "control", "weight": 3, "model_version": "1"},
                         {"name": "treatment", "weight": 1, "model_version": "2"}],
            "primary_metric": {"name": "correct", "kind": "proportion", "baseline": 0.8}, **extra}


def fields(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ExperimentError) as info:
        ExperimentDefinition.from_dict(data)
    return [e["field"] for e in info.value.errors]


# ---------------------------------------------------------------------- routing
def test_fixed_split_is_the_sticky_hash_assignment() -> None:
    d = ExperimentDefinition.from_dict(body(traffic=0.5))
    live = LiveExperiment(d)
    assigner = Assigner.for_definition(d)
    picks = {f"dev-{i}": live.pick(f"dev-{i}") for i in range(2000)}
    for key, picked in picks.items():
        expected = assigner.assign(key)
        assert (picked.variant if picked else None) == expected
        if picked:
            assert picked.version == {"control": 1, "treatment": 2}[picked.variant]
            assert live.pick(key) == picked  # sticky
    enrolled = [p for p in picks.values() if p is not None]
    # about half enrolled, split 3:1 (binomial tests, far from the edge)
    assert stats.binomtest(len(enrolled), 2000, 0.5).pvalue > 1e-4
    assert stats.binomtest(sum(p.variant == "control" for p in enrolled), len(enrolled), 0.75).pvalue > 1e-4


def test_bandit_picks_per_request_and_respects_the_floor() -> None:
    d = ExperimentDefinition.from_dict(body(bandit={"policy": "thompson_beta", "params": {"floor": 0.1}}))
    state = bandits.new_state("thompson_beta", ["control", "treatment"], floor=0.1)
    state = bandits.update_many(state, [("treatment", 1.0)] * 200 + [("control", 0.0)] * 200)
    live = LiveExperiment(d, state, rng=np.random.default_rng(0))
    picks = [live.pick("same-entity").variant for _ in range(4000)]
    share = picks.count("control") / len(picks)
    assert stats.binomtest(picks.count("control"), len(picks), 0.1).pvalue > 1e-4  # exactly the floor
    assert 0.07 < share < 0.13
    # without state yet, the bandit experiment routes by its fixed weights
    assert LiveExperiment(d, None).pick("k") == LiveExperiment(ExperimentDefinition.from_dict(body())).pick("k")


def test_bandit_enrolment_follows_traffic() -> None:
    d = ExperimentDefinition.from_dict(body(traffic=0.2, bandit={"policy": "ucb1", "params": {}}))
    live = LiveExperiment(d, d.bandit.new_state(["control", "treatment"]), rng=np.random.default_rng(1))
    enrolled = [k for k in (f"e{i}" for i in range(3000)) if live.pick(k) is not None]
    assert stats.binomtest(len(enrolled), 3000, 0.2).pvalue > 1e-4
    assert all(live.pick(k) is not None for k in enrolled[:50])  # enrolment is sticky


def test_live_window() -> None:
    d = ExperimentDefinition.from_dict(body(start="2026-03-02T10:00:00Z", stop="2026-03-03T10:00:00Z"))
    live = LiveExperiment(d)
    assert [live.is_live(T0 + timedelta(hours=h)) for h in (0, 1, 24, 25)] == [False, True, True, False]


def test_count_exposures() -> None:
    a, b = Assignment("e", "control", 1), Assignment("e", "treatment", 2)
    assert count_exposures([a, None, b, a]) == {("e", "control"): 2, ("e", "treatment"): 1}
    assert count_exposures([None]) == {}


# ---------------------------------------------------------------------- outcomes
def test_outcomes_match_their_references() -> None:
    rng = np.random.default_rng(5)
    p = rng.random(200)
    p[:3] = [0.0, 1.0, 1e-300]
    y = (rng.random(200) < 0.5).astype(int)
    pred = (p >= 0.5).astype(int)
    rows = [outcomes.values(outcomes.OUTCOMES, probability=pi, predicted_label=qi, label=yi)
            for pi, qi, yi in zip(p, pred, y)]
    assert np.mean([r["correct"] for r in rows]) == np.mean(pred == y)
    assert [r["label"] for r in rows] == list(map(float, y))
    np.testing.assert_allclose([r["brier"] for r in rows], (p - y) ** 2, rtol=1e-15, atol=0)
    clipped = np.clip(p, 1e-15, 1 - 1e-15)
    assert np.mean([r["log_loss"] for r in rows]) == pytest.approx(log_loss(y, clipped, labels=[0, 1]), rel=1e-12)
    assert outcomes.reward(0.2, "mean", "decrease") == -0.2
    assert outcomes.reward(0.0, "proportion", "decrease") == 1.0
    assert outcomes.reward(1.0, "proportion", "increase") == 1.0
    assert outcomes.problem("correct", "proportion") is None
    assert "mean metric" in outcomes.problem("brier", "proportion")


# ---------------------------------------------------------------------- definition fields
def test_model_and_bandit_fields_round_trip() -> None:
    d = ExperimentDefinition.from_dict(body(bandit={"policy": "epsilon_greedy", "params": {"epsilon": 0.2}}))
    assert d.model == "yield" and d.bandit.policy == "epsilon_greedy"
    assert d.to_dict()["bandit"] == {"policy": "epsilon_greedy", "params": {"epsilon": 0.2}}
    assert ExperimentDefinition.from_dict(d.to_dict()) == d
    assert d.bandit.new_state(["control", "treatment"])["params"]["epsilon"] == 0.2


@pytest.mark.parametrize("change, expected", [
    ({"bandit": {"policy": "softmax"}}, ["bandit.policy"]),
    ({"bandit": {"policy": "ucb1", "params": {"floor": 0.7}}}, ["bandit.params.floor"]),
    ({"bandit": {"policy": "ucb1", "params": {"tau": 1}}}, ["bandit.params.tau"]),
    ({"bandit": {"policy": "ucb1", "extra": 1}}, ["bandit.extra"]),
    ({"bandit": "thompson"}, ["bandit"]),
    ({"primary_metric": {"name": "brier", "kind": "mean", "baseline": 0.1, "std": 0.1, "direction": "decrease"},
      "bandit": {"policy": "thompson_beta"}}, ["bandit.policy"]),
    ({"primary_metric": {"name": "accuracy", "baseline": 0.8}}, ["primary_metric.name"]),
    ({"guardrail_metrics": [{"name": "brier", "kind": "proportion"}]}, ["guardrail_metrics[0].kind"]),
    ({"model": "Yield Model"}, ["model"]),
    ({"variants": [{"name": "a", "weight": 1, "model_version": "v1"}, {"name": "b", "weight": 1}]},
     ["variants[0].model_version", "variants[1].model_version"]),
    ({"mode": "aa", "bandit": {"policy": "ucb1"},
      "variants": [{"name": "a", "weight": 1, "model_version": "1"}, {"name": "b", "weight": 1, "model_version": "1"}]},
     ["bandit"]),
])
def test_bad_model_or_bandit_fields_are_named(change: dict, expected: list[str]) -> None:
    assert fields(body(**change)) == expected


def test_a_definition_without_a_model_keeps_free_metric_names() -> None:
    d = ExperimentDefinition.from_dict({**body(), "model": None, "primary_metric": {"name": "pass_rate", "baseline": 0.9}})
    assert d.model is None and d.primary_metric.name == "pass_rate"


# ---------------------------------------------------------------------- report
def record(**extra: Any) -> ExperimentRecord:
    return ExperimentRecord(ExperimentDefinition.from_dict(body(**extra)), "running", "2026-03-02T09:00:00.000000Z")


def test_daily_traffic_from_exposures() -> None:
    rec = record(traffic=0.5)
    assert report.daily_entities(rec, 0, T0 + timedelta(days=1)) is None
    assert report.daily_entities(rec, 1000, T0 + timedelta(days=2)) == pytest.approx(1000 / 2 / 0.5)
    assert report.daily_entities(rec, 10, T0 + timedelta(minutes=5)) == pytest.approx(10 * 24 / 0.5)  # >= 1 hour
    started_later = record(start="2026-03-03T09:00:00Z", stop="2026-03-05T09:00:00Z")
    assert report.daily_entities(started_later, 400, T0 + timedelta(days=10)) == pytest.approx(200)


def test_describe_plans_with_the_observed_traffic() -> None:
    rec = record()
    totals = {"assignments": {"control": 3000, "treatment": 1000},
              "metrics": {"correct": {v: {"n": 0, "sum": 0.0, "sum_sq": 0.0} for v in ("control", "treatment")}}}
    out = report.describe(rec, totals, None, T0 + timedelta(days=4))
    assert out["traffic"]["daily_entities"] == pytest.approx(1000) and out["traffic"]["source"] == "observed"
    days = out["plan"]["duration"]["days"]
    required = out["plan"]["required"]
    assert days == pytest.approx(max(required["control"] / 750, required["treatment"] / 250))
    assert out["traffic"]["progress"]["treatment"] == pytest.approx(1000 / required["treatment"])
    override = report.describe(rec, totals, None, T0 + timedelta(days=4), daily_override=2000)
    assert override["plan"]["duration"]["days"] == pytest.approx(days / 2) and override["traffic"]["source"] == "query"
    assert out["experiment"]["state"] == "running" and out["bandit"] is None
    assert math.isfinite(days)
