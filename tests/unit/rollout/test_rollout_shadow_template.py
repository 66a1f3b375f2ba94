"""ShadowAnalysisFunction in template.yaml: its route behind the API key, the analysis layers
(no training libraries), read-only least privilege, and the index projection it reads.
(Its sample events run in tests/integration/test_shadow_analysis.py.)"""

from __future__ import annotations

from pathlib import Path

from localcloud.intrinsics import load_yaml
from localcloud.template import load_stack

ROOT = Path(__file__).resolve().parents[3]


def test_route_layers_and_read_only_policies() -> None:
    stack = load_stack(ROOT / "template.yaml")
    fn = stack.functions["ShadowAnalysisFunction"]
    routes = {(r.method, r.path): (r.function_id, r.api_key_required) for r in stack.routes
              if r.function_id == "ShadowAnalysisFunction"}
    assert routes == {("GET", "/models/{name}/shadow-analysis"): ("ShadowAnalysisFunction", True)}
    assert [layer.logical_id for layer in fn.layers] == ["CommonLayer", "ServingLayer", "StatsLayer"]
    assert fn.environment["POWERTOOLS_SERVICE_NAME"] == "shadow-analysis" and fn.timeout == 60
    resources = load_yaml((ROOT / "template.yaml").read_text())["Resources"]
    policies = {(name, args["TableName"]["Ref"])
                for policy in resources["ShadowAnalysisFunction"]["Properties"]["Policies"]
                for name, args in policy.items()}
    assert policies == {("DynamoDBReadPolicy", "PredictionsTable"), ("DynamoDBReadPolicy", "RegistryTable")}
    [index] = [i for i in stack.tables["PredictionsTable"].properties["GlobalSecondaryIndexes"]
               if i["IndexName"] == "by_model_version"]
    projected = index["Projection"]
    assert projected["ProjectionType"] == "ALL" or {"shadow", "probability", "predicted_label", "label", "version"} \
        <= set(projected["NonKeyAttributes"])  # what mlops.rollout.shadow_log reads from the index

