"""The experiments' part of template.yaml: the admin routes behind the API key, the layers
(numpy from ServingLayer, scipy from StatsLayer; scipy nowhere near inference), least
privilege, the router's cache setting, and the function importing only what its layers ship."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from localcloud.intrinsics import load_yaml
from localcloud.runtime import function_environment
from localcloud.template import load_stack

ROOT = Path(__file__).resolve().parents[3]
ROUTES = {("POST", "/experiments"), ("GET", "/experiments"), ("GET", "/experiments/{experiment_id}"),
          ("GET", "/experiments/{experiment_id}/analysis"), ("POST", "/experiments/{experiment_id}/stop")}


@pytest.fixture(scope="module")
def stack():
    return load_stack(ROOT / "template.yaml")


@pytest.fixture(scope="module")
def resources() -> dict:
    return load_yaml((ROOT / "template.yaml").read_text())["Resources"]


def policies(resources: dict, function: str) -> set[tuple[str, str]]:
    out = set()
    for policy in resources[function]["Properties"]["Policies"]:
        [(name, args)] = policy.items()
        target = next(iter(args.values()))
        out.add((name, target["Ref"] if isinstance(target, dict) else target))
    return out


def test_routes_layers_and_policies(stack, resources) -> None:
    routes = {(r.method, r.path): (r.function_id, r.api_key_required) for r in stack.routes}
    assert {k: routes.get(k) for k in ROUTES} == {k: ("ExperimentsFunction", True) for k in ROUTES}
    fn = stack.functions["ExperimentsFunction"]
    assert [layer.logical_id for layer in fn.layers] == ["CommonLayer", "ServingLayer", "StatsLayer"]
    assert fn.environment["POWERTOOLS_SERVICE_NAME"] == "experiments"
    assert fn.environment["EXPERIMENTS_TABLE"] == stack.tables["ExperimentsTable"].name
    assert policies(resources, "ExperimentsFunction") == {("DynamoDBCrudPolicy", "ExperimentsTable"),
                                                          ("DynamoDBReadPolicy", "RegistryTable"),
                                                          ("DynamoDBCrudPolicy", "IdempotencyTable")}
    stats_reqs = {r.split("==")[0] for r in stack.layers["StatsLayer"].requirements}
    assert stats_reqs == {"scipy"}
    assert "StatsLayer" not in [layer.logical_id for layer in stack.functions["InferenceFunction"].layers]
    assert float(stack.functions["InferenceFunction"].environment["EXPERIMENT_CACHE_SECONDS"]) <= 5
    assert (ROOT / "functions/experiments/requirements.txt").is_file()
    assert sorted(p.name for p in (ROOT / "events").glob("ExperimentsFunction*.json"))


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
from mlops.experiments.welch import welch_from_stats
from mlops.experiments.summary import MeanStats
r = welch_from_stats(MeanStats(50, 10.0, 4.0), MeanStats(60, 11.0, 9.0))
print(json.dumps({"p": r.p_value, "heavy": sorted(m for m in ("sklearn", "onnxruntime") if m in sys.modules)}))
"""


def test_the_function_runs_the_analysis_with_its_layers_only(stack) -> None:
    """numpy and scipy come from its layers; scikit-learn, pandas and onnx are blocked as Lambda would."""
    fn = stack.functions["ExperimentsFunction"]
    env = function_environment(fn, stack.region, "http://127.0.0.1:9")
    blocked = ["sklearn", "skl2onnx", "onnx", "joblib", "pandas", "statsmodels"]
    paths = [str(fn.code_dir), *(str(layer.python_path) for layer in fn.layers)]
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(blocked), *paths], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"p": pytest.approx(0.039521, abs=1e-6), "heavy": []}
