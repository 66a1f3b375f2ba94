"""The models' part of template.yaml: routes behind the API key, layers (no training libraries
in serving), least-privilege policies, and the canary rollout wired to the admin function."""

from __future__ import annotations

from pathlib import Path

import pytest

from localcloud.intrinsics import load_yaml
from localcloud.template import load_stack

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def stack():
    return load_stack(ROOT / "template.yaml")


@pytest.fixture(scope="module")
def resources() -> dict:
    return load_yaml((ROOT / "template.yaml").read_text())["Resources"]


def policies(resources: dict, function: str) -> set[tuple[str, str]]:
    """(policy template, table or bucket logical id) pairs of a function."""
    out = set()
    for policy in resources[function]["Properties"]["Policies"]:
        [(name, args)] = policy.items()
        target = next(iter(args.values()))
        out.add((name, target["Ref"] if isinstance(target, dict) else target))
    return out


def test_model_routes_need_the_api_key(stack) -> None:
    routes = {(r.method, r.path): (r.function_id, r.api_key_required) for r in stack.routes}
    expected = {
        ("POST", "/predict"): "InferenceFunction", ("POST", "/predict/batch"): "InferenceFunction",
        ("POST", "/feedback"): "FeedbackFunction", ("GET", "/models"): "ModelsFunction",
        ("GET", "/models/{name}/versions/{version}"): "ModelsFunction",
        ("GET", "/models/{name}/aliases/{alias}"): "ModelsFunction",
        ("POST", "/models/{name}/aliases/{alias}"): "ModelAdminFunction",
        ("DELETE", "/models/{name}/aliases/{alias}"): "ModelAdminFunction",
        ("POST", "/models/{name}/versions/{version}/approval"): "ModelAdminFunction",
    }
    assert {k: routes[k] for k in expected} == {k: (v, True) for k, v in expected.items()}


def test_serving_and_training_layers(stack) -> None:
    layers = {fid: [layer.logical_id for layer in stack.functions[fid].layers]
              for fid in ("InferenceFunction", "TrainFunction", "FeedbackFunction", "ModelsFunction")}
    assert layers == {"InferenceFunction": ["CommonLayer", "ServingLayer"],
                      "TrainFunction": ["CommonLayer", "TrainingLayer"],
                      "FeedbackFunction": ["CommonLayer"], "ModelsFunction": ["CommonLayer"]}
    assert stack.functions["TrainFunction"].environment["PARITY_RUNTIME"] == "reference"
    lines = (ROOT / "layers/serving/requirements.txt").read_text().splitlines()
    packages = {line.split("==")[0].strip() for line in lines if line.strip() and not line.startswith("#")}
    assert "onnxruntime" in packages and not packages & {"scikit-learn", "scipy", "skl2onnx", "onnx"}


def test_least_privilege(resources) -> None:
    assert policies(resources, "InferenceFunction") == {
        ("DynamoDBReadPolicy", "RegistryTable"), ("DynamoDBReadPolicy", "DeploymentsTable"),
        ("DynamoDBReadPolicy", "FeaturesTable"), ("DynamoDBWritePolicy", "PredictionsTable"),
        ("S3ReadPolicy", "ArtifactsBucket")}  # inference cannot write the registry or the deployments
    assert policies(resources, "ModelsFunction") == {("DynamoDBReadPolicy", "RegistryTable")}
    assert policies(resources, "FeedbackFunction") == {("DynamoDBReadPolicy", "PredictionsTable"),
                                                       ("DynamoDBWritePolicy", "PredictionsTable")}
    assert policies(resources, "ModelAdminFunction") == {("DynamoDBCrudPolicy", "RegistryTable"),
                                                         ("DynamoDBWritePolicy", "DeploymentsTable")}
    assert policies(resources, "TrainFunction") == {("DynamoDBCrudPolicy", "RegistryTable"),
                                                    ("S3WritePolicy", "ArtifactsBucket"),
                                                    ("S3ReadPolicy", "DataBucket")}  # the offline store
    assert ("LambdaInvokePolicy", "ModelAdminFunction") in policies(resources, "CanaryRolloutStateMachine")


def test_the_drift_index_carries_the_inputs(stack) -> None:
    [index] = [i for i in stack.tables["PredictionsTable"].properties["GlobalSecondaryIndexes"]
               if i["IndexName"] == "by_model_version"]
    assert index["Projection"]["ProjectionType"] == "INCLUDE"
    assert {"inputs", "probability", "predicted_label", "label"} <= set(index["Projection"]["NonKeyAttributes"])


def test_the_canary_promotes_through_the_admin_function(stack) -> None:
    states = stack.state_machines["CanaryRolloutStateMachine"].definition["States"]
    admin = stack.functions["ModelAdminFunction"].arn
    assert states["StartRollout"]["Parameters"]["FunctionName"] == admin
    assert states["Promote"]["Parameters"]["FunctionName"] == admin
    assert states["Promote"]["Parameters"]["Payload"]["alias"] == "champion"
    set_weights = states["Stages"]["ItemProcessor"]["States"]["SetWeights"]["Parameters"]
    assert set_weights["UpdateExpression"] == "SET challenger_percent = :p, updated_at = :t"
