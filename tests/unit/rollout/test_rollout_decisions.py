"""The pure decisions of continuous training: retraining triggers, the retraining gate, the
data checks, the run plans and fault injection."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops.rollout import faults, plan
from mlops.rollout.data_validation import DataPolicy, DataValidationError, check_features, check_labels
from mlops.rollout.retraining_gate import RetrainingGatePolicy, decide as gate
from mlops.rollout.triggers import RetrainingPolicy, RetrainingSignals, decide

NOW = datetime(2026, 11, 26, 12, tzinfo=timezone.utc)
POLICY = RetrainingPolicy()


# ------------------------------------------------------------------------------ triggers
@pytest.mark.parametrize(("signals", "reasons"), [
    (RetrainingSignals(), ()),
    (RetrainingSignals(scheduled=True), ("schedule",)),
    (RetrainingSignals(manual=True), ("manual",)),
    (RetrainingSignals(psi={"vdd": 0.21}), ("drift",)),
    (RetrainingSignals(psi={"vdd": 0.2}), ()),  # "more than 0.2"
    (RetrainingSignals(detector_alarms=["DDM"]), ("drift",)),
    (RetrainingSignals(accuracy=0.87, baseline_accuracy=0.92, labelled=500), ("accuracy",)),  # 5.4% drop
    (RetrainingSignals(accuracy=0.875, baseline_accuracy=0.92, labelled=500), ()),  # 4.9% drop
    (RetrainingSignals(accuracy=0.5, baseline_accuracy=0.92, labelled=99), ()),  # too few labels
    (RetrainingSignals(last_trained_at=NOW - timedelta(days=7, seconds=1)), ("stale",)),
    (RetrainingSignals(last_trained_at=NOW - timedelta(days=7)), ()),
    (RetrainingSignals(scheduled=True, psi={"a": 1.0}, last_trained_at=NOW - timedelta(days=30)),
     ("schedule", "drift", "stale")),
])
def test_each_trigger(signals: RetrainingSignals, reasons: tuple[str, ...]) -> None:
    decision = decide(signals, POLICY, NOW)
    assert decision.reasons == reasons and decision.retrain == bool(reasons)


def test_key_features_limit_the_drift_trigger() -> None:
    policy = RetrainingPolicy(key_features=("leakage_na",))
    assert not decide(RetrainingSignals(psi={"vdd": 0.9, "leakage_na": 0.1}), policy, NOW).retrain
    d = decide(RetrainingSignals(psi={"vdd": 0.9, "leakage_na": 0.3}), policy, NOW)
    assert d.reasons == ("drift",) and d.details["drift"]["features"] == ["leakage_na"]


def test_policy_from_dict_names_bad_fields() -> None:
    assert RetrainingPolicy.from_dict({"max_age_days": 3}).max_age == timedelta(days=3)
    with pytest.raises(ValueError, match="nope: unknown"):
        RetrainingPolicy.from_dict({"nope": 1})
    with pytest.raises(ValueError, match="accuracy_drop"):
        RetrainingPolicy(accuracy_drop=0)


# ------------------------------------------------------------------------------ retraining gate
def side(auc: float, slices: dict | None = None) -> dict:
    return {"metrics": {"roc_auc": auc}, "slices": slices or {}}


def candidate(auc: float, slices: dict | None = None, parity: float = 1e-7, fairness: dict | None = None) -> dict:
    return {**side(auc, slices), "parity": {"max_abs_diff": parity, "tolerance": 1e-5}, "fairness": fairness}


def test_retraining_gate_checks() -> None:
    policy = RetrainingGatePolicy()
    assert gate(candidate(0.85), side(0.855), policy)["passed"]  # within the 0.01 tolerance
    assert gate(candidate(0.84), side(0.855), policy)["reasons"] == ["auc"]
    assert gate(candidate(0.9, parity=1e-3), None, policy)["reasons"] == ["parity"]  # first version: no AUC check
    worse = {"tester_id": [{"value": "T1", "n": 50, "roc_auc": 0.70}, {"value": "T2", "n": 10, "roc_auc": 0.1}]}
    theirs = {"tester_id": [{"value": "T1", "n": 50, "roc_auc": 0.80}, {"value": "T2", "n": 10, "roc_auc": 0.9}]}
    result = gate(candidate(0.9, worse), side(0.85, theirs), policy)
    assert result["reasons"] == ["slices"]  # T1 is 0.10 worse; T2 has too few rows to judge
    [slices] = [c for c in result["checks"] if c["name"] == "slices"]
    assert slices["values"]["worse"] == [{"slice": "tester_id=T1", "metric": "roc_auc", "candidate": 0.7,
                                          "champion": 0.8}]
    unfair = gate(candidate(0.9, fairness={"x": 1}), None, policy, lambda s: (False, ["fab_site: ratio 0.6"]))
    assert unfair["reasons"] == ["fairness"] and unfair["checks"][-1]["detail"] == "fab_site: ratio 0.6"
    assert gate(candidate(0.9, fairness={"x": 1}), None, RetrainingGatePolicy(require_fairness=False),
                lambda s: (False, ["no"]))["passed"]
    assert gate(candidate(0.86), side(0.85), RetrainingGatePolicy(auc_tolerance=-0.02))["reasons"] == ["auc"]


# ------------------------------------------------------------------------------ data validation
def test_label_checks_name_the_problem() -> None:
    policy = DataPolicy(min_rows=4, min_minority_share=0.2)
    ok = check_labels({"label": [0, 1, 0, 0, 1], "device_id": list("abcde")}, ["device_id"], policy)
    assert (ok.rows, ok.positives, ok.label_balance) == (5, 2, 0.4)
    ids = list("abcde")
    cases = [
        ({"label": [0, 1, 0], "device_id": ids[:3]}, "row count: 3 label rows in the window, need at least 4"),
        ({"label": [0, 1, None, 0], "device_id": ids[:4]}, "labels: 1 of 4 label rows have no label"),
        ({"label": [0, 1, 2, 0], "device_id": ids[:4]}, "labels: expected 0 or 1, found 2"),
        ({"label": [0, 0, 0, 0, 0], "device_id": ids}, r"label balance: 0 positives in 5 rows \(0.00%\)"),
        ({"label": [0, 1, 0, 1], "device_id": ["a", None, "c", "d"]}, "nulls: 1 of 4 label rows have no 'device_id'"),
        ({"label": [0, 1, 0, 1]}, "schema: the label rows have no 'device_id' column"),
    ]
    for columns, message in cases:
        with pytest.raises(DataValidationError, match=message):
            check_labels(columns, ["device_id"], policy)


def test_feature_null_shares() -> None:
    shares = check_features({"a": np.array([1.0, np.nan, 3.0, 4.0]), "b": np.ones(4)}, DataPolicy())
    assert shares == {"a": 0.25, "b": 0.0}
    with pytest.raises(DataValidationError, match="feature 'a' is missing for 75.0%"):
        check_features({"a": np.array([1.0, np.nan, np.nan, np.nan])}, DataPolicy())


# ------------------------------------------------------------------------------ plans
def canary(event: dict, challenger: int | None = 2, champion: int | None = 1) -> dict:
    return plan.canary_run(event, execution_id="arn:x", run_id="x", challenger=challenger, champion=champion, now=NOW)


def test_canary_plan_defaults_and_strategies() -> None:
    run = canary({"model": "yield"})
    assert run["stages"] == [1.0, 10.0, 50.0, 100.0] and run["bake_seconds"] == 600 and run["challenger"] == 2
    assert canary({"model": "yield", "strategy": "blue_green"})["stages"] == [100.0]
    assert canary({"model": "yield", "challenger": 5})["challenger"] == 5
    assert run["shadow"] is None
    shadow = canary({"model": "yield", "shadow": {"hours": 2, "policy": {"min_pairs": 50}}})["shadow"]
    assert shadow == {"start": "2026-11-26T10:00:00.000000Z", "end": "2026-11-26T12:00:00.000000Z",
                      "policy": {"min_pairs": 50}}


@pytest.mark.parametrize(("event", "problem"), [
    ({"model": "yield", "stages": [10, 5, 100]}, "stages: percents must increase"),
    ({"model": "yield", "stages": [10, 50]}, "stages: percents must increase and end at 100"),
    ({"model": "yield", "stages": [0, 100]}, "stages: expected a non-empty list"),
    ({"model": "yield", "bake_seconds": -1}, "bake_seconds"),
    ({"model": "yield", "strategy": "big_bang"}, "strategy"),
    ({"model": "yield", "policy": {"alpha": 2}}, "policy.alpha"),
    ({"model": "yield", "extra": 1}, "extra: unknown field"),
    ({"model": "yield", "challenger": 1}, "challenger: version 1 is already the champion"),
    ({"model": 3}, "model"),
    ({"model": "yield", "shadow": {"hours": 0}}, "shadow.hours"),
    ({"model": "yield", "shadow": {"min_pairs": 3}}, "shadow.min_pairs: unknown"),
])
def test_canary_plan_refuses(event: dict, problem: str) -> None:
    with pytest.raises(plan.RunInputError, match=problem):
        canary(event)


def test_canary_needs_a_champion_and_a_challenger() -> None:
    with pytest.raises(plan.RunInputError, match="no champion"):
        canary({"model": "yield"}, champion=None)
    with pytest.raises(plan.RunInputError, match="challenger: not given"):
        canary({"model": "yield"}, challenger=None)


def test_retraining_plan() -> None:
    specs = {"yield": {"views": ["v"], "features": ["f"], "label_view": "labels", "config": {}}}
    run = plan.retraining_run({"model": "yield", "reason": {"reasons": ["drift"]}}, execution_id="e", run_id="r",
                              now=NOW, specs=specs)
    assert run["end"] == "2026-11-26T12:00:00.000000Z" and run["start"] == "2026-08-28T12:00:00.000000Z"
    assert run["reasons"] == ["drift"] and run["spec"]["label_view"] == "labels"
    for event, problem in [({"model": "other"}, "spec: model 'other' has no declared training spec"),
                           ({"model": "yield", "window": {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}},
                            "window: start must be before end"),
                           ({"model": "yield", "spec": {"views": []}}, "spec.views: required"),
                           ({"model": "yield", "gate": {"bogus": 1}}, "gate.bogus: unknown")]:
        with pytest.raises(plan.RunInputError, match=problem):
            plan.retraining_run(event, execution_id="e", run_id="r", now=NOW, specs=specs)


# ------------------------------------------------------------------------------ faults
def test_faults_are_off_unless_enabled() -> None:
    assert not faults.enabled({}) and not faults.enabled({"FAULT_INJECTION": "disabled"})
    assert faults.enabled({"FAULT_INJECTION": "enabled"})


def test_faults_round_trip_and_hit_a_stable_share() -> None:
    stored = faults.faults_json({3: faults.Fault(error_rate=0.25, delay_ms=5), 4: faults.Fault()})
    assert faults.parse_faults(stored) == {3: faults.Fault(error_rate=0.25, delay_ms=5)}
    f = faults.Fault(error_rate=0.25, log_drop_rate=0.5)
    hits = [f.fails(f"r{i}") for i in range(20000)]
    assert abs(np.mean(hits) - 0.25) < 0.015 and hits == [f.fails(f"r{i}") for i in range(20000)]
    assert abs(np.mean([f.drops_log(f"r{i}") for i in range(20000)]) - 0.5) < 0.015
    with pytest.raises(ValueError, match="faults.x"):
        faults.parse_faults('{"x": {}}')


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.sampled_from(["error_rate", "delay_ms", "log_drop_rate"]),
                       st.one_of(st.floats(allow_nan=True), st.integers(), st.text(), st.booleans())))
def test_fault_fields_are_checked(values: dict) -> None:
    try:
        fault = faults.Fault.from_dict(values)
    except ValueError as exc:
        assert str(exc).split(":")[0] in values
    else:
        assert 0 <= fault.error_rate <= 1 and 0 <= fault.log_drop_rate <= 1 and 0 <= fault.delay_ms <= 10000
