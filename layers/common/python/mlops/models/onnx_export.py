"""Export a trained scikit-learn pipeline to ONNX, byte-for-byte reproducibly, and prove parity.

skl2onnx names the graph with a random UUID and may emit duplicate opset entries, so two
exports of the same pipeline differ. `export_pipeline` pins the target opset, names the graph,
renames nodes by position, clears doc strings, stores the input signature as metadata and
serializes deterministically: the same pipeline always gives the same bytes and sha256.
Probabilities come out as a plain [n, 2] float tensor (no ZipMap), so inference needs
neither ZipMap handling nor scikit-learn. Tree ensembles carry each node's training cover in
``nodes_hitrates`` (runtimes ignore it), which the explanations (TreeSHAP) need.

`check_parity` runs the artifact on the validation rows and compares it with the pipeline's
`predict_proba`; a difference above the tolerance raises `ParityError`. It uses onnxruntime
when installed, else onnx's pure-Python reference evaluator (for a training environment
that cannot also hold onnxruntime within Lambda's size limit).
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import numpy as np
import onnx
import skl2onnx
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType

from mlops.models.signature import METADATA_KEY, InputSignature

#: Opsets the artifacts target: fixed so the bytes do not move with skl2onnx's defaults, and
#: old enough for any onnxruntime the serving layer may pin.
TARGET_OPSET: dict[str, int] = {"": 17, "ai.onnx.ml": 3}
GRAPH_NAME = "mlops_pipeline"
PARITY_TOLERANCE = 1e-5

Runtime = Literal["auto", "onnxruntime", "reference"]


class ParityError(RuntimeError):
    """ONNX and scikit-learn probabilities differ by more than the tolerance."""

    def __init__(self, max_abs_diff: float, tolerance: float, row: int, sklearn_value: float, onnx_value: float):
        self.max_abs_diff = max_abs_diff
        self.tolerance = tolerance
        self.row = row
        super().__init__(
            f"ONNX parity check failed: max |p_onnx - p_sklearn| = {max_abs_diff:.3e} > tolerance "
            f"{tolerance:.1e} (worst validation row {row}: sklearn {sklearn_value:.8f}, onnx {onnx_value:.8f})"
        )


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of an artifact."""
    return hashlib.sha256(data).hexdigest()


def canonicalize(model: onnx.ModelProto, signature: InputSignature) -> bytes:
    """Strip what varies between exports of the same pipeline and serialize deterministically.

    Graph name fixed, nodes named `n<position>_<op>`, doc strings cleared, opset imports
    merged (highest version per domain, sorted), metadata reduced to the signature.
    """
    model = onnx.ModelProto.FromString(model.SerializeToString())
    model.doc_string = ""
    model.graph.name = GRAPH_NAME
    model.graph.doc_string = ""
    for i, node in enumerate(model.graph.node):
        node.name = f"n{i}_{node.op_type}"
        node.doc_string = ""
    versions: dict[str, int] = {}
    for entry in model.opset_import:
        versions[entry.domain] = max(versions.get(entry.domain, 0), entry.version)
    del model.opset_import[:]
    for domain in sorted(versions):
        model.opset_import.append(onnx.helper.make_opsetid(domain, versions[domain]))
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, {METADATA_KEY: signature.to_json()})
    model.producer_name = "skl2onnx"
    model.producer_version = skl2onnx.__version__
    onnx.checker.check_model(model)
    return model.SerializeToString(deterministic=True)


def export_pipeline(pipeline: Any, signature: InputSignature) -> bytes:
    """Convert a fitted binary classification pipeline to canonical ONNX bytes.

    One float32 input `signature.input_name` of shape [None, n_features]; outputs `label`
    and `signature.output_name` (probabilities, [n, 2] float32, column 1 the positive class).
    """
    model = convert_sklearn(
        pipeline,
        name=GRAPH_NAME,
        initial_types=[(signature.input_name, FloatTensorType([None, signature.n_features]))],
        options={"zipmap": False},
        target_opset=TARGET_OPSET,
    )
    outputs = [o.name for o in model.graph.output]
    if signature.output_name not in outputs:
        raise RuntimeError(f"skl2onnx produced outputs {outputs}, expected {signature.output_name!r}")
    attach_node_covers(model, pipeline)
    return canonicalize(model, signature)


def _sklearn_trees(estimator: Any) -> list[Any] | None:
    """The fitted `tree_` objects of a tree model in skl2onnx's tree-id order, or None."""
    if hasattr(estimator, "tree_"):
        return [estimator.tree_]
    estimators = getattr(estimator, "estimators_", None)
    if estimators is None:
        return None
    flat = np.asarray(estimators, dtype=object).ravel()  # gradient boosting: [n_stages, 1]
    if not all(hasattr(e, "tree_") for e in flat):
        return None
    return [e.tree_ for e in flat]


def attach_node_covers(model: onnx.ModelProto, pipeline: Any) -> None:
    """Write each tree node's training cover (scikit-learn's ``weighted_n_node_samples``)
    into the tree ensemble's ``nodes_hitrates`` attribute, in place.

    ONNX defines ``nodes_hitrates`` as the popularity of each node and runtimes ignore it
    (skl2onnx writes 1.0 everywhere); TreeSHAP needs exactly this (`mlops.explain`), so the
    artifact that is served carries what explains it. Node ids are checked against the
    scikit-learn trees (same feature, same leaves): a mismatch raises instead of guessing.
    """
    estimator = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    trees = _sklearn_trees(estimator)
    if trees is None:
        return
    for node in model.graph.node:
        if node.op_type not in ("TreeEnsembleClassifier", "TreeEnsembleRegressor"):
            continue
        attrs = {a.name: a for a in node.attribute}
        tree_ids, node_ids = attrs["nodes_treeids"].ints, attrs["nodes_nodeids"].ints
        features, modes = attrs["nodes_featureids"].ints, attrs["nodes_modes"].strings
        covers = []
        for t, n, f, mode in zip(tree_ids, node_ids, features, modes):
            tree = trees[t]
            leaf = tree.children_left[n] == -1
            if leaf != (mode == b"LEAF") or (not leaf and tree.feature[n] != f):
                raise RuntimeError(f"ONNX tree {t} node {n} does not match the scikit-learn tree")
            covers.append(float(tree.weighted_n_node_samples[n]))
        if "nodes_hitrates" in attrs:
            node.attribute.remove(attrs["nodes_hitrates"])
        node.attribute.append(onnx.helper.make_attribute("nodes_hitrates", covers))


def _resolve_runtime(runtime: Runtime) -> str:
    if runtime != "auto":
        return runtime
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "reference"
    return "onnxruntime"


def onnx_probabilities(
    onnx_bytes: bytes, x: np.ndarray, signature: InputSignature, *, runtime: Runtime = "auto"
) -> np.ndarray:
    """Run the artifact on rows `x` (cast to float32) and return its [n, 2] probabilities."""
    feed = {signature.input_name: np.ascontiguousarray(x, dtype=np.float32)}
    if _resolve_runtime(runtime) == "onnxruntime":
        import onnxruntime as ort

        session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
        return session.run([signature.output_name], feed)[0]
    from onnx.reference import ReferenceEvaluator

    return np.asarray(ReferenceEvaluator(onnx.ModelProto.FromString(onnx_bytes)).run([signature.output_name], feed)[0])


def check_parity(
    onnx_bytes: bytes,
    pipeline: Any,
    x: np.ndarray,
    signature: InputSignature,
    *,
    tolerance: float = PARITY_TOLERANCE,
    runtime: Runtime = "auto",
) -> tuple[float, np.ndarray]:
    """Compare ONNX and scikit-learn probabilities on rows `x` (the validation set).

    Returns (max absolute difference, ONNX probabilities of the positive class as float64);
    raises ParityError when the difference exceeds `tolerance`. scikit-learn sees the rows as
    given (float64); ONNX sees them as float32, as inference will.
    """
    if x.shape[0] == 0:
        raise ValueError("parity needs at least one row")
    p_onnx = onnx_probabilities(onnx_bytes, x, signature, runtime=runtime).astype(np.float64)
    p_skl = np.asarray(pipeline.predict_proba(x), dtype=np.float64)
    if p_onnx.shape != p_skl.shape:
        raise ParityError(float("inf"), tolerance, 0, float("nan"), float("nan"))
    diff = np.abs(p_onnx - p_skl)
    worst = int(np.argmax(diff.max(axis=1)))
    max_diff = float(diff.max())
    pos = signature.positive_index
    if not max_diff <= tolerance:
        raise ParityError(max_diff, tolerance, worst, float(p_skl[worst, pos]), float(p_onnx[worst, pos]))
    return max_diff, p_onnx[:, pos]
