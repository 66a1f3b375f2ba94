"""Training: the pipeline, class weights, time split, ONNX export, parity, reproducibility."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from models_synthetic import FEATURES, make_yield_data, trained
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.utils.class_weight import compute_sample_weight

from mlops.models.dataset import TrainingDataError
from mlops.models.onnx_export import GRAPH_NAME, ParityError, check_parity, export_pipeline
from mlops.models.signature import METADATA_KEY, InputSignature
from mlops.models.thresholds import ThresholdError, ThresholdPolicy
from mlops.models.training import TrainingConfig, balanced_sample_weights, build_pipeline, train_model

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]


def _validation_rows(model) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validation rows recomputed from the record's split time, independently of training."""
    d = make_yield_data()
    ts_ms = d["timestamps"].astype("datetime64[ms]").astype(np.int64)
    split = np.datetime64(model.data["split_time"].rstrip("Z"), "ms").astype(np.int64)
    mask = ts_ms >= split
    x = np.column_stack([d["features"][f] for f in FEATURES])
    return x[mask], d["labels"][mask], mask


def test_pipeline_steps_per_model() -> None:
    assert [n for n, _ in build_pipeline(TrainingConfig("gradient_boosting")).steps] == ["imputer", "classifier"]
    assert [n for n, _ in build_pipeline(TrainingConfig("random_forest")).steps] == ["imputer", "classifier"]
    assert [n for n, _ in build_pipeline(TrainingConfig("logistic_regression")).steps] == ["imputer", "scaler", "classifier"]
    gb = build_pipeline(TrainingConfig(seed=7)).named_steps["classifier"]
    assert gb.random_state == 7 and gb.max_depth == 3
    with pytest.raises(ValueError, match="unknown model"):
        TrainingConfig(model="hist_gradient_boosting")  # type: ignore[arg-type]


def test_balanced_weights_match_sklearn() -> None:
    y = make_yield_data(n=500)["labels"]
    np.testing.assert_allclose(balanced_sample_weights(y), compute_sample_weight("balanced", y), rtol=1e-15)
    w = balanced_sample_weights(y)
    assert w[y == 1].sum() == pytest.approx(w[y == 0].sum())


def test_artifact_shape_signature_and_parity() -> None:
    m = trained()
    assert m.sha256 == hashlib.sha256(m.onnx).hexdigest()
    model = onnx.load_from_string(m.onnx)
    assert model.graph.name == GRAPH_NAME
    assert "ZipMap" not in {n.op_type for n in model.graph.node}
    (inp,) = model.graph.input
    assert inp.name == "features" and inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    dims = inp.type.tensor_type.shape.dim
    assert not dims[0].HasField("dim_value") and dims[1].dim_value == len(FEATURES)
    meta = {p.key: p.value for p in model.metadata_props}
    assert InputSignature.from_json(meta[METADATA_KEY]).features == FEATURES == m.signature.features
    # Independent parity check on the validation rows, with a session of our own.
    x_val, y_val, _ = _validation_rows(m)
    session = ort.InferenceSession(m.onnx, providers=["CPUExecutionProvider"])
    p_onnx = session.run(["probabilities"], {"features": x_val.astype(np.float32)})[0]
    assert p_onnx.dtype == np.float32 and p_onnx.shape == (len(y_val), 2)
    diff = np.abs(p_onnx - m.pipeline.predict_proba(x_val)).max()
    assert diff <= 1e-5
    assert m.parity == {"max_abs_diff": pytest.approx(float(diff), abs=1e-9), "tolerance": 1e-5, "rows": len(y_val)}


def test_time_split_and_data_reference() -> None:
    m = trained()
    d = make_yield_data()
    ref = m.data
    assert ref["rows"] == 4000 and ref["positives"] == int(d["labels"].sum())
    assert ref["validation"]["rows"] == 800 and ref["train"]["rows"] == 3200
    assert ref["train"]["end"] < ref["validation"]["start"] == ref["split_time"]
    ts = np.sort(d["timestamps"])
    assert ref["time_range"]["start"].startswith(str(ts[0])) and ref["time_range"]["end"].startswith(str(ts[-1]))
    _, y_val, mask = _validation_rows(m)
    assert mask.sum() == 800 and (m.validation_labels == y_val).all()
    assert len(ref["content_sha256"]) == 64


def test_validation_metrics_are_those_of_the_served_probabilities() -> None:
    m = trained()
    x_val, y_val, _ = _validation_rows(m)
    session = ort.InferenceSession(m.onnx, providers=["CPUExecutionProvider"])
    p = session.run(["probabilities"], {"features": x_val.astype(np.float32)})[0][:, 1].astype(np.float64)
    assert m.metrics["roc_auc"] == pytest.approx(roc_auc_score(y_val, p), abs=1e-9)
    assert m.metrics["pr_auc"] == pytest.approx(average_precision_score(y_val, p), abs=1e-9)
    assert m.metrics["brier"] == pytest.approx(brier_score_loss(y_val, p), abs=1e-9)
    assert m.metrics["threshold"] == m.threshold.threshold
    assert m.threshold.policy == ThresholdPolicy.max_f1()
    assert m.metrics["f1"] == pytest.approx(m.threshold.f1, abs=1e-12)
    # The synthetic signal is strong: the model must find it.
    assert m.metrics["roc_auc"] > 0.8
    testers = {e["value"]: e for e in m.slices["tester"]}
    assert set(testers) == {"T1", "T2", "T3", "T4"} and sum(e["n"] for e in testers.values()) == 800
    assert set(m.slices) == {"tester", "fab_site"}


def test_class_weighting_raises_the_minority_probabilities() -> None:
    balanced = trained("logistic_regression")
    d = make_yield_data()
    plain = train_model(d["features"], d["labels"], d["timestamps"],
                        TrainingConfig(model="logistic_regression", class_weight="none"))
    base_rate = balanced.data["validation"]["positive_rate"]
    assert plain.validation_probabilities.mean() == pytest.approx(base_rate, abs=0.03)
    assert balanced.validation_probabilities.mean() > 3 * plain.validation_probabilities.mean()
    assert balanced.sha256 != plain.sha256


@pytest.mark.parametrize("kind", ["random_forest", "logistic_regression"])
def test_other_models_export_with_parity(kind: str) -> None:
    m = trained(kind, n_estimators=30)
    assert m.parity["max_abs_diff"] <= 1e-5
    assert m.parameters["config"]["model"] == kind
    x_val, _, _ = _validation_rows(m)
    session = ort.InferenceSession(m.onnx, providers=["CPUExecutionProvider"])
    p = session.run(["probabilities"], {"features": x_val.astype(np.float32)})[0]
    assert np.abs(p - m.pipeline.predict_proba(x_val)).max() <= 1e-5


def test_same_data_and_parameters_give_the_same_artifact_in_process() -> None:
    first = trained("random_forest", n_estimators=30)
    d = make_yield_data()
    again = train_model(d["features"], d["labels"], d["timestamps"],
                        TrainingConfig(model="random_forest", n_estimators=30), slices=d["slices"], code_version="test")
    assert again.onnx == first.onnx and again.sha256 == first.sha256
    assert again.data["content_sha256"] == first.data["content_sha256"]
    assert export_pipeline(first.pipeline, first.signature) == first.onnx
    other_seed = trained("random_forest", n_estimators=30, seed=1)
    assert other_seed.sha256 != first.sha256


def test_same_data_and_parameters_give_the_same_artifact_in_a_subprocess() -> None:
    code = (
        "from models_synthetic import trained; m = trained(); "
        "print(m.sha256, m.data['content_sha256'])"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "layers/common/python"), str(HERE)]),
           "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True)
    sha, data_sha = out.stdout.split()
    m = trained()
    assert (sha, data_sha) == (m.sha256, m.data["content_sha256"])


def _tampered(onnx_bytes: bytes) -> bytes:
    """The artifact with the imputer's fill values moved by +3: parity must catch it."""
    model = onnx.load_from_string(onnx_bytes)
    (imputer,) = [n for n in model.graph.node if n.op_type == "Imputer"]
    (attr,) = [a for a in imputer.attribute if a.name == "imputed_value_floats"]
    attr.floats[:] = [v + 3.0 for v in attr.floats]
    return model.SerializeToString()


def test_parity_failure_is_a_clear_error() -> None:
    m = trained()
    x_val, _, _ = _validation_rows(m)
    with pytest.raises(ParityError, match=r"max \|p_onnx - p_sklearn\| = .* > tolerance 1.0e-05") as info:
        check_parity(_tampered(m.onnx), m.pipeline, x_val, m.signature)
    assert info.value.max_abs_diff > 1e-3
    assert np.isnan(x_val[info.value.row]).any()  # the worst row is one the imputer filled


def test_training_fails_when_parity_tolerance_is_not_met() -> None:
    d = make_yield_data(n=1500)
    with pytest.raises(ParityError) as info:
        train_model(d["features"], d["labels"], d["timestamps"],
                    TrainingConfig(n_estimators=10, parity_tolerance=1e-12))
    assert 1e-12 < info.value.max_abs_diff <= 1e-5


def test_reference_runtime_parity_agrees_with_onnxruntime() -> None:
    m = trained()
    x_val, _, _ = _validation_rows(m)
    diff_ref, p_ref = check_parity(m.onnx, m.pipeline, x_val, m.signature, runtime="reference")
    diff_ort, p_ort = check_parity(m.onnx, m.pipeline, x_val, m.signature, runtime="onnxruntime")
    assert diff_ref <= 1e-5 and diff_ort <= 1e-5
    np.testing.assert_allclose(p_ref, p_ort, atol=1e-6)


def test_record_is_json_and_complete() -> None:
    m = trained()
    record = json.loads(json.dumps(m.to_record()))
    assert record["sha256"] == m.sha256 and record["artifact_bytes"] == len(m.onnx)
    assert [f["name"] for f in record["signature"]["features"]] == list(FEATURES)
    assert {f["type"] for f in record["signature"]["features"]} == {"float"}
    assert record["parameters"]["config"]["n_estimators"] == 60
    assert record["parameters"]["estimator"]["max_depth"] == 3
    assert record["code_version"] == "test"
    assert {"scikit-learn", "skl2onnx", "onnx", "numpy", "python"} <= set(record["environment"])
    assert TrainingConfig.from_dict(record["parameters"]["config"]) == TrainingConfig(n_estimators=60)
    assert record["threshold"]["policy"] == {"kind": "max_f1", "value": None}


def test_unusable_training_data_is_refused() -> None:
    d = make_yield_data(n=600)
    late = d["timestamps"] >= np.sort(d["timestamps"])[480]
    only_late_failures = np.where(late, d["labels"], 0)
    with pytest.raises(TrainingDataError, match="only label 0"):
        train_model(d["features"], only_late_failures, d["timestamps"])
    feats = dict(d["features"])
    feats["p05"] = np.where(late, feats["p05"], np.nan)
    with pytest.raises(TrainingDataError, match=r"entirely missing in the training rows: \['p05'\]"):
        train_model(feats, d["labels"], d["timestamps"])
    with pytest.raises(TrainingDataError, match="slice column 'tester'"):
        train_model(d["features"], d["labels"], d["timestamps"], slices={"tester": d["slices"]["tester"][:5]})
    with pytest.raises(ThresholdError):
        train_model(d["features"], d["labels"], d["timestamps"],
                    TrainingConfig(n_estimators=5, threshold_policy=ThresholdPolicy.target_precision(1.0)))
