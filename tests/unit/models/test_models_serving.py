"""The serving model: sha256 before load, signature order, missing-value policies, field errors,
and an import path free of scikit-learn, scipy, skl2onnx and unpickling."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from models_synthetic import FEATURES, make_yield_data, trained

from mlops.models import serving_model as sm
from mlops.models.signature import InputSignature

ROOT = Path(__file__).resolve().parents[3]


def _rows(n: int = 50) -> tuple[list[dict[str, float]], np.ndarray]:
    d = make_yield_data(n=n, seed=3)
    x = np.column_stack([d["features"][f] for f in FEATURES])
    return [dict(zip(FEATURES, map(float, r))) for r in x], x


@pytest.fixture(scope="module")
def model() -> sm.ServingModel:
    m = trained()
    return sm.ServingModel.load(m.onnx, m.sha256, signature=m.signature.to_dict())


def test_predictions_match_the_sklearn_pipeline(model: sm.ServingModel) -> None:
    rows, x = _rows()
    expected = trained().pipeline.predict_proba(x)[:, 1]
    ones = np.array([model.predict_one(r).probability for r in rows])
    batch = model.predict_batch(rows)
    np.testing.assert_allclose(ones, expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(batch.probabilities, ones, atol=1e-7, rtol=0)
    np.testing.assert_allclose(model.predict_matrix(x), ones, atol=1e-7, rtol=0)
    assert batch.imputed == tuple(tuple(f for f in FEATURES if math.isnan(r[f])) for r in rows)


def test_key_order_of_the_input_does_not_matter(model: sm.ServingModel) -> None:
    rows, _ = _rows(5)
    for row in rows:
        reordered = dict(reversed(list(row.items())))
        assert model.predict_one(reordered).probability == model.predict_one(row).probability


def test_impute_policy_passes_missing_values_to_the_imputer(model: sm.ServingModel) -> None:
    rows, x = _rows(5)
    row = dict(rows[0])
    del row["p00"]
    row["p03"] = None
    row["p07"] = float("nan")
    x0 = x[:1].copy()
    x0[0, [0, 3, 7]] = np.nan
    out = model.predict_one(row)
    assert out.imputed == ("p00", "p03", "p07")
    assert out.probability == pytest.approx(trained().pipeline.predict_proba(x0)[0, 1], abs=1e-5)
    # The imputed value matters: it is not the same as a zero.
    zeroed = {**rows[0], "p00": 0.0, "p03": 0.0, "p07": 0.0}
    assert model.predict_one(zeroed).probability != pytest.approx(out.probability, abs=1e-6)


def test_refuse_policy_names_every_missing_feature() -> None:
    m = trained()
    strict = sm.ServingModel.load(m.onnx, m.sha256, missing_policy="refuse")
    rows, _ = _rows(3)
    complete = next(r for r in rows if not any(math.isnan(v) for v in r.values()))
    assert strict.predict_one(complete).imputed == ()
    row = {k: v for k, v in complete.items() if k not in ("p02", "p15")}
    row["p09"] = None
    with pytest.raises(sm.MissingFeaturesError, match="p02: missing; p09: missing; p15: missing") as info:
        strict.predict_one(row)
    assert info.value.missing == ("p02", "p09", "p15")
    with pytest.raises(sm.MissingFeaturesError) as batch_info:
        strict.predict_batch([complete, row])
    assert batch_info.value.missing == ("rows[1].p02", "rows[1].p09", "rows[1].p15")


def test_bad_values_get_field_level_errors(model: sm.ServingModel) -> None:
    rows, _ = _rows(2)
    bad = {**rows[0], "p01": "3.2", "p04": True, "p05": float("inf"), "p06": np.float64(-np.inf), "bogus": 1.0}
    with pytest.raises(sm.FeatureValidationError) as info:
        model.predict_one(bad)
    assert not isinstance(info.value, sm.MissingFeaturesError)
    assert info.value.errors == {
        "p01": "expected a number, got str",
        "p04": "expected a number, got bool",
        "p05": "must be finite",
        "p06": "must be finite",
        "bogus": "unexpected feature",
    }
    extra = {**rows[0], "lot_id": "L17"}
    assert model.predict_one(extra, allow_extra=True).probability == model.predict_one(rows[0]).probability
    with pytest.raises(sm.FeatureValidationError) as batch_info:
        model.predict_batch([rows[0], {**rows[1], "p10": [1.0]}])
    assert batch_info.value.errors == {"rows[1].p10": "expected a number, got list"}
    ints = {**rows[1], "p10": 1, "p11": np.int32(2), "p12": np.float32(0.5)}
    assert 0.0 <= model.predict_one(ints).probability <= 1.0
    with pytest.raises(sm.FeatureValidationError, match="expected shape"):
        model.predict_matrix(np.zeros((2, 3)))
    assert model.predict_batch([]).probabilities.shape == (0,)


def test_sha256_mismatch_loads_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    m = trained()
    created = []
    real = sm.ort.InferenceSession
    monkeypatch.setattr(sm.ort, "InferenceSession", lambda *a, **k: created.append(1) or real(*a, **k))
    corrupted = m.onnx[:-1] + bytes([m.onnx[-1] ^ 1])
    with pytest.raises(sm.ArtifactIntegrityError, match=f"expected {m.sha256}") as info:
        sm.ServingModel.load(corrupted, m.sha256)
    assert info.value.actual != m.sha256
    with pytest.raises(sm.ArtifactIntegrityError):
        sm.ServingModel.load(m.onnx, "0" * 64)
    assert created == []
    assert sm.ServingModel.load(m.onnx, m.sha256.upper()).sha256 == m.sha256
    assert created == [1]


def test_signature_must_match_the_artifact() -> None:
    m = trained()
    swapped = InputSignature(features=(FEATURES[1], FEATURES[0], *FEATURES[2:]))
    with pytest.raises(sm.SignatureMismatchError, match="differs from the artifact"):
        sm.ServingModel.load(m.onnx, m.sha256, signature=swapped)
    assert sm.ServingModel.load(m.onnx, m.sha256).signature == m.signature
    with pytest.raises(ValueError, match="missing_policy"):
        sm.ServingModel.load(m.onnx, m.sha256, missing_policy="zero")  # type: ignore[arg-type]


SUBPROCESS = r"""
import json, pickle, sys, time
def _no_unpickling(*args, **kwargs):
    raise AssertionError("something tried to unpickle")
pickle.loads = pickle.load = _no_unpickling
t0 = time.perf_counter()
from mlops.models.serving_model import ServingModel
data = open(sys.argv[1], "rb").read()
model = ServingModel.load(data, sys.argv[2])
p = model.predict_one(json.loads(sys.argv[3])).probability
print(json.dumps({"p": p, "loaded": sorted(m for m in ("sklearn", "scipy", "skl2onnx", "onnx") if m in sys.modules)}))
"""


def test_serving_imports_no_sklearn_scipy_or_skl2onnx_and_unpickles_nothing(tmp_path: Path) -> None:
    m = trained()
    artifact = tmp_path / "model.onnx"
    artifact.write_bytes(m.onnx)
    rows, x = _rows(1)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers/common/python")}
    out = subprocess.run([sys.executable, "-c", SUBPROCESS, str(artifact), m.sha256, json.dumps(rows[0])],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["loaded"] == []
    assert result["p"] == pytest.approx(m.pipeline.predict_proba(x)[0, 1], abs=1e-5)


def test_the_import_check_does_see_sklearn_when_it_is_imported() -> None:
    """Control for the test above: the same check run on the training module reports sklearn."""
    code = ("import sys, mlops.models.training; "
            "print(sorted(m for m in ('sklearn', 'scipy', 'skl2onnx') if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers/common/python")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['scipy', 'skl2onnx', 'sklearn']"
