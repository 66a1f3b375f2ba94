"""Each models function imports only what its layers ship: the inference function numpy and
onnxruntime (never scikit-learn, scipy, skl2onnx, onnx or joblib, so nothing of a scikit-learn
model can be unpickled there), the registry and feedback functions neither of them. The venv
holds every package, so a function reaching for one its layers lack would pass locally and fail
in Lambda; here such imports are blocked as Lambda would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from localcloud.runtime import function_environment
from localcloud.template import load_stack

ROOT = Path(__file__).resolve().parents[3]
IMPORT_NAMES = {"numpy": {"numpy"}, "onnxruntime": {"onnxruntime"}, "scipy": {"scipy"},
                "scikit-learn": {"sklearn", "joblib"},  # pip installs joblib with scikit-learn
                "skl2onnx": {"skl2onnx"}, "onnx": {"onnx"}, "ml-dtypes": {"ml_dtypes"}}
GUARDED = {"numpy", "onnxruntime", "scipy", "sklearn", "skl2onnx", "onnx", "ml_dtypes", "joblib", "pandas"}

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
heavy = sorted(m for m in ("sklearn", "scipy", "skl2onnx", "onnx", "joblib") if m in sys.modules)
print(json.dumps({"onnxruntime": "onnxruntime" in sys.modules, "heavy": heavy}))
"""

FUNCTIONS = ["InferenceFunction", "ModelsFunction", "ModelAdminFunction", "FeedbackFunction", "TrainFunction",
             "ExplainFunction", "RetrainFunction", "RolloutFunction", "AuditFunction"]


@pytest.fixture(scope="module")
def stack():
    return load_stack(ROOT / "template.yaml")


@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_a_function_imports_only_what_its_layers_ship(stack, function_id: str) -> None:
    fn = stack.functions[function_id]
    shipped = {name for layer in fn.layers for r in layer.requirements
               for name in IMPORT_NAMES.get(r.split("==")[0].strip(), ())}
    blocked = sorted(GUARDED - shipped)
    env = function_environment(fn, stack.region, "http://127.0.0.1:9")
    paths = [str(fn.code_dir), *(str(layer.python_path) for layer in fn.layers)]
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(blocked), *paths], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if function_id in ("InferenceFunction", "ExplainFunction"):  # explain reads ONNX with protobuf, not onnx
        assert result == {"onnxruntime": True, "heavy": []}
