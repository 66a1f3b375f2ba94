"""What a served ONNX artifact computes, rebuilt from its nodes in numpy so it can be explained.

Supported graphs are the chains the training pipeline exports (`mlops.models.onnx_export`):
``[Imputer] -> [Scaler] -> estimator -> [Identity]``, where the estimator is a
TreeEnsembleClassifier / TreeEnsembleRegressor (gradient boosting, random forest, a tree) or a
LinearClassifier / LinearRegressor (logistic or linear regression). Anything else raises
`NotExplainable` naming the node.

What is explained is the estimator's **margin**, the raw score before the output link:

- gradient boosting (post_transform LOGISTIC): the log-odds, ``base + sum of leaf values``;
  the served probability is ``sigmoid(margin)``. The ensemble's ``base_values`` (the prior
  log-odds of the training labels) are part of the expected value, not of any feature.
  Additivity holds in log-odds, not in probability: SHAP values of a sigmoid are not the
  sigmoid of SHAP values.
- random forest (post_transform NONE): the margin is the probability itself (the mean of the
  trees' leaf class shares).
- logistic regression: the log-odds ``w . z + b`` of the scaled input z.

Trees are explained with exact path-dependent TreeSHAP (`mlops.explain.treeshap`) using the
node covers that the export writes into ``nodes_hitrates``; an artifact without them (exported
before they were written, or by another tool) is `NotExplainable`. Linear models get linear
SHAP values under feature independence, ``w_j (z_j - E[z_j])``; the scaler's offset is the
training mean (scikit-learn's StandardScaler, as `build_pipeline` makes), so E[z] = 0, the
attribution is ``w_j z_j`` and the expected value is the intercept. A linear model without a
scaler is `NotExplainable` (its training mean is unknown).

Attributions are per input feature, on the imputed values: the Imputer and Scaler act on one
feature at a time, so a feature's attribution covers its preprocessing too. A missing value is
explained as the value the imputer put in its place. The preprocessing runs in float32, as in
onnxruntime, so splits see the same numbers as the served model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from mlops.explain.onnx_graph import Graph, Node, OnnxReadError, read_graph
from mlops.explain.treeshap import MODES, TreeEnsemble

Link = Literal["logistic", "identity"]
_TREES = ("TreeEnsembleClassifier", "TreeEnsembleRegressor")
_LINEAR = ("LinearClassifier", "LinearRegressor")
_PREPROCESS = ("Imputer", "Scaler")


class NotExplainable(ValueError):
    """The artifact computes something this module cannot explain; the message says what."""


@dataclass(frozen=True)
class Explanation:
    """Attributions [rows, features] of the margin, the expected margin, and per row the
    margin and the probability (the margin through the link)."""

    attributions: np.ndarray
    expected_value: float
    margin: np.ndarray
    probability: np.ndarray
    method: str
    link: Link


def apply_link(link: Link, margin: np.ndarray) -> np.ndarray:
    """The served output of a margin: the logistic function or the margin itself."""
    m = np.asarray(margin, dtype=np.float64)
    return 1.0 / (1.0 + np.exp(-m)) if link == "logistic" else m


@dataclass(frozen=True)
class _Imputer:
    values: np.ndarray  # float32 per feature
    replaced: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        hit = np.isnan(x) if np.isnan(self.replaced) else x == np.float32(self.replaced)
        return np.where(hit, self.values, x).astype(np.float32)


@dataclass(frozen=True)
class _Scaler:
    offset: np.ndarray  # float32 per feature
    scale: np.ndarray

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.offset) * self.scale).astype(np.float32)


@dataclass(frozen=True)
class _Linear:
    coef: np.ndarray  # float64 [n_features]
    intercept: float

    def margin(self, z: np.ndarray) -> np.ndarray:
        return z.astype(np.float64) @ self.coef + self.intercept


class ExplainableModel:
    """Preprocessing + estimator + link of one artifact; see the module docstring."""

    def __init__(self, n_features: int, steps: list[Any], estimator: TreeEnsemble | _Linear, link: Link,
                 estimator_op: str):
        self.n_features = n_features
        self.steps = steps
        self.estimator = estimator
        self.link = link
        self.estimator_op = estimator_op
        self.method = "tree_shap_path_dependent" if isinstance(estimator, TreeEnsemble) else "linear_shap"

    def transform(self, x: Any) -> np.ndarray:
        """Rows [R, n_features] as the estimator sees them (float32, imputed, scaled)."""
        z = np.asarray(x, dtype=np.float32)
        if z.ndim == 1:
            z = z[None, :]
        if z.ndim != 2 or z.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features, got shape {list(z.shape)}")
        if np.isinf(z).any():
            raise ValueError("feature values must be finite")
        for step in self.steps:
            z = step(z)
        return z

    def expected_value(self) -> float:
        """The margin's expectation over the training data (see the module docstring)."""
        if isinstance(self.estimator, TreeEnsemble):
            return self.estimator.expected_value()
        return float(self.estimator.intercept)

    def margin(self, x: Any) -> np.ndarray:
        """The margin of each row (float64)."""
        z = self.transform(x)
        return self.estimator.predict(z) if isinstance(self.estimator, TreeEnsemble) else self.estimator.margin(z)

    def explain(self, x: Any) -> Explanation:
        """Attributions of the margin for each row of `x` [R, n_features] (NaN = missing)."""
        z = self.transform(x)
        if isinstance(self.estimator, TreeEnsemble):
            phi = self.estimator.shap_values(z)
            margin = self.estimator.predict(z)
        else:
            phi = z.astype(np.float64) * self.estimator.coef[None, :]
            margin = self.estimator.margin(z)
        return Explanation(phi, self.expected_value(), margin, apply_link(self.link, margin), self.method, self.link)


# ------------------------------------------------------------------------------------- parsing
def _attr(node: Node, name: str, default: Any = None) -> Any:
    """An attribute, or its ``<name>_as_tensor`` form (double precision), or the default."""
    value = node.attributes.get(f"{name}_as_tensor")
    if value is None:
        value = node.attributes.get(name)
    return default if value is None else value


def _per_feature(values: Any, n: int, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float32).ravel()
    if arr.shape[0] == 1:
        return np.full(n, arr[0], dtype=np.float32)
    if arr.shape[0] != n:
        raise NotExplainable(f"{what} has {arr.shape[0]} values for {n} features")
    return arr


def _link(node: Node) -> Link:
    post = node.attributes.get("post_transform", "NONE")
    if post == "LOGISTIC":
        return "logistic"
    if post == "NONE":
        return "identity"
    raise NotExplainable(f"{node.op_type} with post_transform {post} is not supported")


def _positive_weights(node: Node, classes: tuple[int, ...], positive_index: int) -> tuple[np.ndarray, float]:
    """Leaf-weight selector and base value of the positive class's score of a classifier.

    With weights for a single class id and two labels, onnxruntime treats the ensemble as
    binary and the summed score is the second label's (skl2onnx writes binary gradient boosting
    and random forests this way); with weights per class, the positive label's are used.
    """
    labels = node.attributes.get("classlabels_int64s")
    if labels is None or len(labels) != 2:
        raise NotExplainable(f"{node.op_type}: only binary classifiers with integer labels are explained")
    labels = tuple(int(v) for v in labels)
    positive = classes[positive_index]
    if positive not in labels:
        raise NotExplainable(f"{node.op_type}: the positive class {positive} is not one of its labels {labels}")
    ids = np.asarray(node.attributes["class_ids"], dtype=np.int64)
    base_values = np.asarray(_attr(node, "base_values", []), dtype=np.float64).ravel()
    pos_index = labels.index(positive)
    if np.unique(ids).shape[0] == 1:
        if pos_index != 1:
            raise NotExplainable(f"{node.op_type}: a one-score binary ensemble scores label {labels[1]}, "
                                 f"not the positive class {positive}")
        select = np.ones(ids.shape[0], dtype=bool)
        base = float(base_values[-1]) if base_values.size else 0.0
    else:
        select = ids == pos_index
        if base_values.size == 1:
            raise NotExplainable(f"{node.op_type}: one base value for two class scores is ambiguous")
        base = float(base_values[pos_index]) if base_values.size == 2 else 0.0  # absent: 0
    return select, base


def _trees(node: Node, n_features: int, classes: tuple[int, ...], positive_index: int) -> tuple[TreeEnsemble, Link]:
    a = node.attributes
    tree_ids = np.asarray(a["nodes_treeids"], dtype=np.int64)
    node_ids = np.asarray(a["nodes_nodeids"], dtype=np.int64)
    n = tree_ids.shape[0]
    index = {(int(t), int(i)): k for k, (t, i) in enumerate(zip(tree_ids, node_ids))}
    if len(index) != n:
        raise NotExplainable(f"{node.op_type}: duplicate (tree, node) ids")

    def locate(trees: np.ndarray, nodes: np.ndarray, what: str) -> np.ndarray:
        try:
            return np.array([index[(int(t), int(i))] for t, i in zip(trees, nodes)], dtype=np.int64)
        except KeyError as exc:
            raise NotExplainable(f"{node.op_type}: {what} names a node that does not exist {exc.args[0]}") from None

    modes = a["nodes_modes"]
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        raise NotExplainable(f"{node.op_type}: split modes {unknown} are not supported")
    mode = np.array([MODES.index(m) for m in modes], dtype=np.int8)
    internal = mode != 0
    true_child = np.full(n, -1, dtype=np.int64)
    false_child = np.full(n, -1, dtype=np.int64)
    true_child[internal] = locate(tree_ids[internal], np.asarray(a["nodes_truenodeids"])[internal], "a true branch")
    false_child[internal] = locate(tree_ids[internal], np.asarray(a["nodes_falsenodeids"])[internal], "a false branch")
    missing = a.get("nodes_missing_value_tracks_true")
    missing_true = np.zeros(n, dtype=bool) if missing is None or len(missing) == 0 else np.asarray(missing) != 0
    cover = _attr(node, "nodes_hitrates")
    cover = None if cover is None else np.asarray(cover, dtype=np.float64).ravel()
    if cover is None or cover.shape[0] != n or np.all(cover == 1.0):
        raise NotExplainable("the artifact carries no node covers (nodes_hitrates), which TreeSHAP needs; "
                             "retrain the model with this platform version to explain it")
    value = np.zeros(n, dtype=np.float64)
    if node.op_type == "TreeEnsembleClassifier":
        select, base = _positive_weights(node, classes, positive_index)
        link = _link(node)
        prefix = "class"
    else:
        if int(a.get("n_targets", 1)) != 1:
            raise NotExplainable("TreeEnsembleRegressor: only one target is explained")
        select = np.ones(np.asarray(a["target_ids"]).shape[0], dtype=bool)
        bv = np.asarray(_attr(node, "base_values", [0.0]), dtype=np.float64).ravel()
        base = float(bv[0]) if bv.size else 0.0
        link = _link(node)
        if link != "identity":
            raise NotExplainable("TreeEnsembleRegressor with a post_transform is not supported")
        prefix = "target"
    weights = np.asarray(_attr(node, f"{prefix}_weights"), dtype=np.float64).ravel()
    at = locate(np.asarray(a[f"{prefix}_treeids"]), np.asarray(a[f"{prefix}_nodeids"]), f"{prefix}_nodeids")
    np.add.at(value, at[select], weights[select])
    roots_mask = np.ones(n, dtype=bool)
    roots_mask[true_child[internal]] = False
    roots_mask[false_child[internal]] = False
    roots = np.flatnonzero(roots_mask)
    if node.op_type == "TreeEnsembleRegressor":
        agg = a.get("aggregate_function", "SUM")
        if agg == "AVERAGE":
            value /= roots.shape[0]
        elif agg != "SUM":
            raise NotExplainable(f"TreeEnsembleRegressor with aggregate_function {agg} is not supported")
    feature = np.where(internal, np.asarray(a["nodes_featureids"], dtype=np.int64), -1)
    threshold = np.asarray(_attr(node, "nodes_values"), dtype=np.float64).astype(np.float32)
    try:
        ensemble = TreeEnsemble(feature=feature, threshold=threshold, mode=mode, true_child=true_child,
                                false_child=false_child, missing_true=missing_true, cover=cover, value=value,
                                roots=roots, base=base, n_features=n_features)
        ensemble.paths()
    except ValueError as exc:
        raise NotExplainable(f"{node.op_type}: {exc}") from None
    return ensemble, link


def _linear(node: Node, n_features: int, classes: tuple[int, ...], positive_index: int) -> tuple[_Linear, Link]:
    coef = np.asarray(node.attributes["coefficients"], dtype=np.float64).ravel()
    intercepts = np.asarray(node.attributes.get("intercepts", [0.0]), dtype=np.float64).ravel()
    rows = coef.shape[0] // n_features
    if rows * n_features != coef.shape[0] or rows not in (1, 2):
        raise NotExplainable(f"{node.op_type}: {coef.shape[0]} coefficients for {n_features} features")
    row = 0
    if node.op_type == "LinearClassifier":
        labels = node.attributes.get("classlabels_ints")
        if labels is None or len(labels) != 2:
            raise NotExplainable("LinearClassifier: only binary classifiers with integer labels are explained")
        labels = tuple(int(v) for v in labels)
        positive = classes[positive_index]
        if positive not in labels:
            raise NotExplainable(f"LinearClassifier: the positive class {positive} is not one of its labels {labels}")
        if rows == 2:
            row = labels.index(positive)
        elif labels.index(positive) != 1:
            raise NotExplainable("LinearClassifier: a one-score binary model scores its second label")
    w = coef.reshape(rows, n_features)[row]
    b = float(intercepts[row]) if intercepts.size > row else 0.0
    return _Linear(w, b), _link(node)


def _chain(graph: Graph, input_name: str) -> tuple[list[Node], Node, list[Node]]:
    """The preprocessing nodes, the estimator and the nodes after it, checked as a chain."""
    current = input_name
    pre: list[Node] = []
    nodes = list(graph.nodes)
    for i, node in enumerate(nodes):
        if not node.inputs or node.inputs[0] != current:
            raise NotExplainable(f"node {i} ({node.op_type}) does not continue the chain from {current!r}")
        if node.op_type in _TREES + _LINEAR:
            rest = nodes[i + 1:]
            odd = [n.op_type for n in rest if n.op_type != "Identity"]
            if odd:
                raise NotExplainable(f"nodes after the estimator are not supported: {odd}")
            return pre, node, rest
        if node.op_type not in _PREPROCESS:
            raise NotExplainable(f"{node.op_type} is not supported before the estimator (only {_PREPROCESS})")
        pre.append(node)
        current = node.outputs[0]
    raise NotExplainable("the graph has no tree ensemble or linear estimator")


def from_onnx(onnx_bytes: bytes, n_features: int, *, classes: tuple[int, ...] = (0, 1),
              positive_index: int = 1) -> ExplainableModel:
    """Rebuild an artifact for explanation; `n_features` is the signature's feature count.
    NotExplainable when the graph is not one this module supports."""
    try:
        graph = read_graph(onnx_bytes)
    except OnnxReadError as exc:
        raise NotExplainable(str(exc)) from None
    if len(graph.inputs) != 1:
        raise NotExplainable(f"expected one graph input, got {list(graph.inputs)}")
    pre, est, _ = _chain(graph, graph.inputs[0])
    steps: list[Any] = []
    for node in pre:
        if node.op_type == "Imputer":
            values = node.attributes.get("imputed_value_floats")
            if values is None:
                raise NotExplainable("Imputer without imputed_value_floats is not supported")
            steps.append(_Imputer(_per_feature(values, n_features, "Imputer"),
                                  float(node.attributes.get("replaced_value_float", 0.0))))
        else:
            steps.append(_Scaler(_per_feature(node.attributes.get("offset", [0.0]), n_features, "Scaler offset"),
                                 _per_feature(node.attributes.get("scale", [1.0]), n_features, "Scaler scale")))
    if est.op_type in _TREES:
        estimator, link = _trees(est, n_features, classes, positive_index)
    else:
        if not any(isinstance(s, _Scaler) for s in steps):
            raise NotExplainable(f"{est.op_type} without a Scaler: the training mean of its inputs is unknown")
        estimator, link = _linear(est, n_features, classes, positive_index)
    return ExplainableModel(n_features, steps, estimator, link, est.op_type)
