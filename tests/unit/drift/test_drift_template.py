"""The drift check's part of template.yaml: its route behind the API key, the hourly schedule,
numpy and matplotlib from layers (no scipy, no scikit-learn), least privilege, and the
retraining state machine it may start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localcloud.intrinsics import load_yaml
from localcloud.template import load_stack

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def stack():
    return load_stack(ROOT / "template.yaml")


def test_route_schedule_and_layers(stack) -> None:
    routes = {(r.method, r.path): (r.function_id, r.api_key_required) for r in stack.routes}
    assert routes[("GET", "/drift/{model}")] == ("DriftCheckFunction", True)
    [hourly] = [s for s in stack.schedules if s.target_id == "DriftCheckFunction"]
    assert (hourly.expression, hourly.target_kind, json.loads(hourly.input)) == (
        "rate(1 hour)", "function", {"model": "yield"})
    fn = stack.functions["DriftCheckFunction"]
    assert [layer.logical_id for layer in fn.layers] == ["CommonLayer", "ServingLayer", "PlotLayer"]
    assert fn.environment["RETRAINING_STATE_MACHINE_ARN"] == stack.state_machines["RetrainingStateMachine"].arn
    assert float(fn.environment["LABEL_DELAY_HOURS"]) > 0 and fn.environment["MPLCONFIGDIR"].startswith("/tmp/")
    assert fn.environment["POWERTOOLS_SERVICE_NAME"] == "drift-check"


def test_least_privilege() -> None:
    resources = load_yaml((ROOT / "template.yaml").read_text())["Resources"]
    policies = set()
    for policy in resources["DriftCheckFunction"]["Properties"]["Policies"]:
        [(name, args)] = policy.items()
        target = next(iter(args.values()))
        policies.add((name, target.get("Ref") or target.get("Fn::GetAtt", [None])[0]))
    assert policies == {
        ("DynamoDBReadPolicy", "RegistryTable"), ("DynamoDBReadPolicy", "PredictionsTable"),
        ("DynamoDBReadPolicy", "DeploymentsTable"), ("DynamoDBWritePolicy", "DeploymentsTable"),
        ("S3ReadPolicy", "ArtifactsBucket"), ("S3WritePolicy", "ArtifactsBucket"),
        ("StepFunctionsExecutionPolicy", "RetrainingStateMachine")}


def test_sample_events_cover_both_triggers() -> None:
    names = sorted(p.name for p in (ROOT / "events").glob("DriftCheckFunction*.json"))
    assert names == ["DriftCheckFunction-invalid.json", "DriftCheckFunction-scheduled.json",
                     "DriftCheckFunction.json"]
    api = json.loads((ROOT / "events/DriftCheckFunction.json").read_text())
    assert (api["httpMethod"], api["resource"], api["pathParameters"]) == ("GET", "/drift/{model}", {"model": "yield"})
    assert json.loads((ROOT / "events/DriftCheckFunction-scheduled.json").read_text()) == {"model": "yield"}
