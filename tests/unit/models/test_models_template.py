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
        if name == "Statement":  # an inline policy: see test_inline_statements_name_their_actions
            continue
        target = next(iter(args.values()))
        if isinstance(target, dict):
            target = target["Ref"] if "Ref" in target else ".".join(target["Fn::GetAtt"])
        out.add((name, target))
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
        ("POST", "/explain"): "ExplainFunction",
    }
    assert {k: routes[k] for k in expected} == {k: (v, True) for k, v in expected.items()}


def test_serving_and_training_layers(stack) -> None:
    layers = {fid: [layer.logical_id for layer in stack.functions[fid].layers]
              for fid in ("InferenceFunction", "TrainFunction", "FeedbackFunction", "ModelsFunction")}
    assert layers == {"InferenceFunction": ["CommonLayer", "ServingLayer"],
                      "TrainFunction": ["CommonLayer", "TrainingLayer"],
                      "FeedbackFunction": ["CommonLayer", "ServingLayer"],  # numpy for the bandit updates
                      "ModelsFunction": ["CommonLayer"]}
    assert [layer.logical_id for layer in stack.functions["ExplainFunction"].layers] == ["CommonLayer", "ServingLayer"]
    assert stack.functions["TrainFunction"].environment["PARITY_RUNTIME"] == "reference"
    lines = (ROOT / "layers/serving/requirements.txt").read_text().splitlines()
    packages = {line.split("==")[0].strip() for line in lines if line.strip() and not line.startswith("#")}
    assert "onnxruntime" in packages and not packages & {"scikit-learn", "scipy", "skl2onnx", "onnx"}


def test_least_privilege(resources) -> None:
    assert policies(resources, "InferenceFunction") == {
        ("DynamoDBReadPolicy", "RegistryTable"), ("DynamoDBReadPolicy", "DeploymentsTable"),
        ("DynamoDBReadPolicy", "FeaturesTable"), ("DynamoDBWritePolicy", "PredictionsTable"),
        ("S3ReadPolicy", "ArtifactsBucket"),
        ("DynamoDBReadPolicy", "AuditTable"), ("DynamoDBWritePolicy", "AuditTable"),  # sampled predictions audited
        ("DynamoDBReadPolicy", "ExperimentsTable"), ("DynamoDBWritePolicy", "ExperimentsTable"),  # exposures
        ("DynamoDBCrudPolicy", "IdempotencyTable")}  # Idempotency-Key records
    # inference cannot write the registry or the deployments
    assert policies(resources, "ModelsFunction") == {("DynamoDBReadPolicy", "RegistryTable")}
    assert policies(resources, "ExplainFunction") == {("DynamoDBReadPolicy", "RegistryTable"),
                                                      ("S3ReadPolicy", "ArtifactsBucket")}  # read-only
    assert policies(resources, "FeedbackFunction") == {("DynamoDBReadPolicy", "PredictionsTable"),
                                                       ("DynamoDBWritePolicy", "PredictionsTable"),
                                                       ("DynamoDBReadPolicy", "ExperimentsTable"),
                                                       ("DynamoDBWritePolicy", "ExperimentsTable"),  # outcomes, rewards
                                                       ("DynamoDBCrudPolicy", "IdempotencyTable")}
    assert policies(resources, "ModelAdminFunction") == {("DynamoDBCrudPolicy", "RegistryTable"),
                                                         ("DynamoDBWritePolicy", "DeploymentsTable"),
                                                         ("DynamoDBReadPolicy", "AuditTable"),
                                                         ("DynamoDBWritePolicy", "AuditTable"),
                                                         ("DynamoDBCrudPolicy", "IdempotencyTable")}
    assert policies(resources, "TrainFunction") == {("DynamoDBCrudPolicy", "RegistryTable"),
                                                    ("DynamoDBWritePolicy", "DeploymentsTable"),  # challenger alias
                                                    ("S3ReadPolicy", "ArtifactsBucket"),  # artifacts + staging
                                                    ("S3WritePolicy", "ArtifactsBucket"),  # (never deleted)
                                                    ("S3ReadPolicy", "DataBucket"),  # the offline store
                                                    ("DynamoDBReadPolicy", "AuditTable"),
                                                    ("DynamoDBWritePolicy", "AuditTable")}
    assert policies(resources, "RolloutFunction") == {
        ("DynamoDBCrudPolicy", "RegistryTable"), ("DynamoDBCrudPolicy", "DeploymentsTable"),
        ("DynamoDBReadPolicy", "PredictionsTable"),
        ("DynamoDBReadPolicy", "AuditTable"), ("DynamoDBWritePolicy", "AuditTable"),  # append-only
        ("DynamoDBCrudPolicy", "IdempotencyTable")}
    assert policies(resources, "CanaryRolloutStateMachine") == {("LambdaInvokePolicy", "RolloutFunction"),
                                                                ("LambdaInvokePolicy", "ShadowAnalysisFunction")}
    assert policies(resources, "RetrainingStateMachine") == {
        ("LambdaInvokePolicy", "RolloutFunction"), ("LambdaInvokePolicy", "TrainFunction"),
        ("StepFunctionsExecutionPolicy", "CanaryRolloutStateMachine.Name")}


def test_the_drift_index_carries_the_inputs(stack) -> None:
    [index] = [i for i in stack.tables["PredictionsTable"].properties["GlobalSecondaryIndexes"]
               if i["IndexName"] == "by_model_version"]
    assert index["Projection"]["ProjectionType"] == "INCLUDE"
    assert {"inputs", "probability", "predicted_label", "label"} <= set(index["Projection"]["NonKeyAttributes"])


def test_inline_statements_name_their_actions(resources) -> None:
    """The one inline policy (startExecution.sync:2 following its child) names each action."""
    [statement] = [p["Statement"] for p in resources["RetrainingStateMachine"]["Properties"]["Policies"]
                   if "Statement" in p]
    actions = [a for s in statement for a in s["Action"]]
    assert actions == ["states:DescribeExecution", "states:StopExecution", "events:PutTargets", "events:PutRule",
                       "events:DescribeRule"]
    assert not any("*" in a for a in actions)


def test_the_state_machines_run_their_steps_in_the_rollout_and_train_functions(stack) -> None:
    canary = stack.state_machines["CanaryRolloutStateMachine"].definition["States"]
    rollout = stack.functions["RolloutFunction"].arn
    steps = {name: state["Parameters"]["Payload"]["action"] for name, state in canary.items()
             if state["Type"] == "Task" and name != "ShadowAnalysis"}
    assert steps == {"Plan": "plan_canary", "Acquire": "acquire", "ShadowVerdict": "shadow_verdict", "Start": "start",
                     "SetStage": "set_stage", "Evaluate": "evaluate", "Promote": "promote", "Rollback": "rollback",
                     "Abort": "abort", "Release": "release"}
    assert all(s["Parameters"]["FunctionName"] == rollout for n, s in canary.items()
               if s["Type"] == "Task" and n != "ShadowAnalysis")
    assert canary["ShadowAnalysis"]["Parameters"]["FunctionName"] == stack.functions["ShadowAnalysisFunction"].arn
    assert canary["Bake"] == {"Type": "Wait", "SecondsPath": "$.run.bake_seconds", "Next": "Evaluate"}
    retraining = stack.state_machines["RetrainingStateMachine"].definition["States"]
    train = stack.functions["TrainFunction"].arn
    assert [retraining[s]["Parameters"]["Payload"]["action"] for s in
            ("ValidateData", "BuildTrainingSet", "Train", "Register")] == ["validate", "build", "train", "register"]
    assert {retraining[s]["Parameters"]["FunctionName"] for s in
            ("ValidateData", "BuildTrainingSet", "Train", "Register")} == {train}
    assert retraining["CanaryRollout"]["Resource"] == "arn:aws:states:::states:startExecution.sync:2"
