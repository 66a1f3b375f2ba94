"""The monitoring part of template.yaml: the alerts topic, the monitor function (route, hourly
schedule, layers, least privilege), the CloudWatch dashboard over the serving metrics, the
plot layer's pins, and a monitor function that imports only what its layers ship."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from localcloud.intrinsics import load_yaml
from localcloud.runtime import function_environment
from localcloud.template import load_stack

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def stack():
    return load_stack(ROOT / "template.yaml")


@pytest.fixture(scope="module")
def resources() -> dict:
    return load_yaml((ROOT / "template.yaml").read_text())["Resources"]


def test_topic_route_schedule_and_layers(stack) -> None:
    assert stack.topics["AlertsTopic"] == "mlops-AlertsTopic"
    fn = stack.functions["MonitorFunction"]
    assert fn.environment["ALERTS_TOPIC_ARN"] == "arn:aws:sns:us-east-1:123456789012:mlops-AlertsTopic"
    assert fn.environment["ALERTS_EVENT_BUS"] == "default" and fn.environment["POWERTOOLS_SERVICE_NAME"] == "monitor"
    assert [layer.logical_id for layer in fn.layers] == ["CommonLayer", "ServingLayer", "PlotLayer"]
    routes = {(r.method, r.path): (r.function_id, r.api_key_required) for r in stack.routes}
    assert routes[("GET", "/monitoring/{model}")] == ("MonitorFunction", True)
    [hourly] = [s for s in stack.schedules if s.target_id == "MonitorFunction"]
    assert (hourly.expression, hourly.target_kind, hourly.enabled) == ("rate(1 hour)", "function", True)
    assert stack.inert["MonitoringDashboard"] == "AWS::CloudWatch::Dashboard"


def test_least_privilege(resources) -> None:
    policies = resources["MonitorFunction"]["Properties"]["Policies"]
    assert policies == [
        {"DynamoDBReadPolicy": {"TableName": {"Ref": "RegistryTable"}}},
        {"DynamoDBReadPolicy": {"TableName": {"Ref": "PredictionsTable"}}},
        {"S3ReadPolicy": {"BucketName": {"Ref": "ArtifactsBucket"}}},
        {"S3WritePolicy": {"BucketName": {"Ref": "ArtifactsBucket"}}},
        {"SNSPublishMessagePolicy": {"TopicName": {"Fn::GetAtt": ["AlertsTopic", "TopicName"]}}},
        {"EventBridgePutEventsPolicy": {"EventBusName": "default"}},
    ]


def test_dashboard_shows_the_serving_metrics_per_version(resources) -> None:
    body = resources["MonitoringDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert set(re.findall(r"\$\{([^}]+)\}", body)) == {"AWS::StackName", "AWS::Region"}
    dashboard = json.loads(body.replace("${AWS::StackName}", "mlops").replace("${AWS::Region}", "us-east-1"))
    expressions = [m[0]["expression"] for w in dashboard["widgets"] if w["type"] == "metric"
                   for m in w["properties"]["metrics"]]
    found = {(re.search(r'MetricName="(\w+)"', e).group(1), re.search(r"', '(\w+)', 300\)", e).group(1))
             for e in expressions}
    assert found == {("Latency", "p50"), ("Latency", "p95"), ("Latency", "p99"), ("Predictions", "Sum"),
                     ("Errors", "Sum"), ("PredictedPositiveRate", "Average")}
    # The namespace and dimensions the inference function's EMF documents carry.
    namespace = load_yaml((ROOT / "template.yaml").read_text())["Globals"]["Function"]["Environment"]["Variables"]
    assert namespace["POWERTOOLS_METRICS_NAMESPACE"] == "MLOps"
    assert all(e.startswith("SEARCH('{MLOps,model,service,version} ") for e in expressions)
    emitted = (ROOT / "layers/common/python/mlops/models/serving_metrics.py").read_text()
    assert all(f'name="{name}"' in emitted for name, _ in found)


def test_plot_layer_pins_match_the_dev_requirements() -> None:
    def pins(path: Path) -> dict[str, str]:
        lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
        return dict(line.split("==") for line in lines if "==" in line)

    layer, dev = pins(ROOT / "layers/plot/requirements.txt"), pins(ROOT / "requirements/dev.txt")
    assert "numpy" not in layer and layer["matplotlib"] == dev["matplotlib"]
    assert {k: v for k, v in layer.items() if k in dev} == {k: dev[k] for k in layer if k in dev}


PROBE = r"""
import importlib.abc, json, sys
blocked = set(json.loads(sys.argv[1]))

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r} (not in this function's layers)")
        return None

sys.meta_path.insert(0, Block())
sys.path[:0] = sys.argv[2:]
import app
from mlops.monitoring import report
report.render_plots({"versions": [{"version": 1, "buckets": [{"start": "2027-01-01T00:00:00Z", "qps": 1.0}]}]})
print(json.dumps(sorted(m for m in ("matplotlib", "numpy", "onnxruntime", "scipy", "sklearn") if m in sys.modules)))
"""


def test_the_monitor_function_imports_only_its_layers(stack) -> None:
    fn = stack.functions["MonitorFunction"]
    env = function_environment(fn, stack.region, "http://127.0.0.1:9")
    env["MPLCONFIGDIR"] = str(Path("/tmp") / "mlops-test-matplotlib")
    blocked = ["scipy", "sklearn", "onnxruntime", "pandas", "skl2onnx", "onnx", "joblib", "river"]
    paths = [str(fn.code_dir), *(str(layer.python_path) for layer in fn.layers)]
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(blocked), *paths], capture_output=True,
                         text=True, env=env, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == ["matplotlib", "numpy"]
