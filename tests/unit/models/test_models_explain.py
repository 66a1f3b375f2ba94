"""Explanations computed from the ONNX artifacts: the graph reader equals the `onnx` package,
the rebuilt model equals onnxruntime, TreeSHAP equals `shap.TreeExplainer` on the
scikit-learn model and brute-force Shapley values, attributions add up, linear models get
linear contributions, and what cannot be explained says so."""

from __future__ import annotations

import itertools
import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import shap
from models_synthetic import FEATURES, make_yield_data, trained
from onnx import helper

from mlops.explain.importance import global_importance, spaced_rows
from mlops.explain.onnx_graph import read_graph
from mlops.explain.onnx_model import NotExplainable, from_onnx
from mlops.models.dataset import make_training_set, time_split
from mlops.models.training import TrainingConfig, train_model

ADDITIVITY = 1e-6
#: Trees per model: the forest shares test_models_training's cached one.
TREES = {"gradient_boosting": 60, "random_forest": 30, "logistic_regression": 60}


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    d = make_yield_data(n=400, seed=5)
    return np.column_stack([d["features"][f] for f in FEATURES])[:60]  # about 3% NaN, imputed by the model


def served_probability(onnx_bytes: bytes, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    return session.run(["probabilities"], {"features": x.astype(np.float32)})[0][:, 1].astype(np.float64)


@pytest.mark.parametrize("kind", ["gradient_boosting", "random_forest", "logistic_regression"])
def test_graph_reader_equals_the_onnx_package(kind: str) -> None:
    artifact = trained(kind, TREES[kind]).onnx
    mine = read_graph(artifact)
    ref = onnx.ModelProto.FromString(artifact).graph
    assert mine.inputs == tuple(i.name for i in ref.input) and mine.outputs == tuple(o.name for o in ref.output)
    assert [n.op_type for n in mine.nodes] == [n.op_type for n in ref.node]
    for got, node in zip(mine.nodes, ref.node):
        assert got.inputs == tuple(node.input) and got.outputs == tuple(node.output)
        assert set(got.attributes) == {a.name for a in node.attribute}
        for a in node.attribute:
            want = helper.get_attribute_value(a)
            have = got.attributes[a.name]
            if isinstance(want, bytes):
                assert have == want.decode()
            elif isinstance(want, list) and want and isinstance(want[0], bytes):
                assert have == [w.decode() for w in want]
            elif isinstance(want, list):
                floats = isinstance(want[0], float)
                assert np.array_equal(have, np.asarray(want, dtype=np.float32 if floats else np.int64), equal_nan=floats)
            else:
                assert have == want or (math.isnan(have) and math.isnan(want))


@pytest.mark.parametrize("kind", ["gradient_boosting", "random_forest"])
def test_tree_shap_equals_shap_tree_explainer(kind: str, rows: np.ndarray) -> None:
    model = trained(kind, TREES[kind])
    explainable = from_onnx(model.onnx, len(FEATURES))
    ex = explainable.explain(rows)
    # What is served: the rebuilt model's output through its link is onnxruntime's probability.
    assert np.abs(ex.probability - served_probability(model.onnx, rows)).max() < 1e-6
    assert np.abs(ex.attributions.sum(axis=1) + ex.expected_value - ex.margin).max() < ADDITIVITY
    clf = model.pipeline.named_steps["classifier"]
    imputed = model.pipeline.named_steps["imputer"].transform(rows)
    explainer = shap.TreeExplainer(clf)
    values = np.asarray(explainer.shap_values(imputed))
    expected = np.ravel(explainer.expected_value)[-1]
    if values.ndim == 3:  # the forest: one column per class
        values = values[:, :, 1]
    # The artifact stores leaf values and covers as float32, scikit-learn as float64.
    assert np.abs(values - ex.attributions).max() < 1e-6
    assert ex.expected_value == pytest.approx(expected, abs=1e-6)
    if kind == "gradient_boosting":  # explained in log-odds: the margin is the decision function
        assert explainable.link == "logistic"
        assert np.abs(ex.margin - model.pipeline.decision_function(rows)).max() < 1e-5
    else:
        assert explainable.link == "identity"


def _tree_value(tree, x: np.ndarray, subset: frozenset[int], leaf_value, node: int = 0) -> float:
    """Path-dependent conditional expectation of one scikit-learn tree given the features in
    `subset` (follow x there, else average the children by their weighted training counts)."""
    left, right = tree.children_left[node], tree.children_right[node]
    if left == -1:
        return leaf_value(tree, node)
    f = tree.feature[node]
    if f in subset:
        return _tree_value(tree, x, subset, leaf_value, left if x[f] <= tree.threshold[node] else right)
    w = tree.weighted_n_node_samples
    return (w[left] * _tree_value(tree, x, subset, leaf_value, left)
            + w[right] * _tree_value(tree, x, subset, leaf_value, right)) / w[node]


def brute_force_shapley(trees, leaf_value, x: np.ndarray, n_features: int) -> np.ndarray:
    """Exact Shapley values by enumerating every feature subset."""
    def value(subset: frozenset[int]) -> float:
        return sum(_tree_value(t, x, subset, leaf_value) for t in trees)

    cache = {frozenset(s): value(frozenset(s)) for k in range(n_features + 1)
             for s in itertools.combinations(range(n_features), k)}
    phi = np.zeros(n_features)
    for i in range(n_features):
        others = [j for j in range(n_features) if j != i]
        for k in range(n_features):
            weight = math.factorial(k) * math.factorial(n_features - k - 1) / math.factorial(n_features)
            for s in itertools.combinations(others, k):
                phi[i] += weight * (cache[frozenset(s) | {i}] - cache[frozenset(s)])
    return phi


@pytest.mark.parametrize("kind", ["gradient_boosting", "random_forest"])
def test_tree_shap_equals_brute_force_shapley_values(kind: str) -> None:
    d = make_yield_data(n=600, seed=3)
    names = ["p00", "p01", "p03", "p07", "p11", "p15"]
    model = train_model({n: d["features"][n] for n in names}, d["labels"], d["timestamps"],
                        TrainingConfig(model=kind, n_estimators=4, max_depth=3, importance_rows=0),
                        code_version="test")
    clf = model.pipeline.named_steps["classifier"]
    if kind == "gradient_boosting":
        trees = [e.tree_ for e in clf.estimators_[:, 0]]

        def leaf(tree, node):
            return clf.learning_rate * tree.value[node, 0, 0]
    else:
        trees = [e.tree_ for e in clf.estimators_]

        def leaf(tree, node):
            v = tree.value[node, 0]
            return v[1] / v.sum() / len(trees)
    explainable = from_onnx(model.onnx, len(names))
    x_all = np.column_stack([d["features"][n] for n in names])[:8]
    imputed = model.pipeline.named_steps["imputer"].transform(x_all).astype(np.float32)
    ex = explainable.explain(x_all)
    for r in range(x_all.shape[0]):
        expected = brute_force_shapley(trees, leaf, imputed[r], len(names))
        assert np.abs(expected - ex.attributions[r]).max() < 1e-6
    # The expected value is the value of the empty coalition plus the ensemble's base score.
    empty = sum(_tree_value(t, imputed[0], frozenset(), leaf) for t in trees)
    full = sum(_tree_value(t, imputed[0], frozenset(range(len(names))), leaf) for t in trees)
    assert ex.margin[0] - ex.expected_value == pytest.approx(full - empty, abs=1e-6)


def test_linear_contributions_of_logistic_regression(rows: np.ndarray) -> None:
    model = trained("logistic_regression")
    explainable = from_onnx(model.onnx, len(FEATURES))
    ex = explainable.explain(rows)
    assert explainable.method == "linear_shap" and explainable.link == "logistic"
    imputer, scaler, clf = (model.pipeline.named_steps[k] for k in ("imputer", "scaler", "classifier"))
    scaled = scaler.transform(imputer.transform(rows))
    assert np.abs(ex.attributions - scaled * clf.coef_[0]).max() < 1e-5
    assert ex.expected_value == pytest.approx(clf.intercept_[0], abs=1e-6)
    assert np.abs(ex.attributions.sum(axis=1) + ex.expected_value - ex.margin).max() < ADDITIVITY
    assert np.abs(ex.probability - served_probability(model.onnx, rows)).max() < 1e-6
    # Against shap's linear explainer with the training mean as background (what the scaler centres on).
    background = shap.maskers.Independent(np.zeros((1, len(FEATURES))))
    values = np.asarray(shap.LinearExplainer((clf.coef_, clf.intercept_), background).shap_values(scaled))
    values = values.reshape(ex.attributions.shape)
    assert np.abs(values - ex.attributions).max() < 1e-5


def test_a_missing_value_is_explained_as_its_imputed_value(rows: np.ndarray) -> None:
    model = trained("gradient_boosting")
    explainable = from_onnx(model.onnx, len(FEATURES))
    imputer = model.pipeline.named_steps["imputer"]
    row = rows[0].copy()
    row[0] = np.nan
    filled = row.copy()
    filled[0] = imputer.statistics_[0]
    a, b = explainable.explain(row[None]), explainable.explain(filled[None])
    assert np.array_equal(a.attributions, b.attributions) and a.margin[0] == b.margin[0]


def test_global_importance_in_the_record_ranks_the_true_signal() -> None:
    model = trained("gradient_boosting")
    importance = model.to_record()["explanations"]
    assert importance["method"] == "tree_shap_path_dependent" and importance["output"].startswith("margin (log-odds")
    assert importance["ranking"][0] == "p00"  # the largest true weight (1.6)
    assert set(importance["ranking"][:4]) == {"p00", "p03", "p07", "p11"}
    assert importance["additivity_max_error"] < ADDITIVITY
    d = make_yield_data()
    data = make_training_set(d["features"], d["labels"], d["timestamps"])
    validation = data.x[time_split(data.timestamps_ms, 0.2).validation]  # as training splits it
    again = global_importance(from_onnx(model.onnx, len(FEATURES)), validation, FEATURES)
    assert again["rows"] == importance["rows"] == 100
    assert again["mean_abs"] == pytest.approx(importance["mean_abs"], abs=1e-12)
    assert list(spaced_rows(800, 100)[[0, -1]]) == [0, 799] and spaced_rows(5, 100).tolist() == [0, 1, 2, 3, 4]


def _strip(artifact: bytes, attribute: str) -> bytes:
    m = onnx.ModelProto.FromString(artifact)
    for node in m.graph.node:
        for a in list(node.attribute):
            if a.name == attribute:
                node.attribute.remove(a)
    return m.SerializeToString()


def test_what_cannot_be_explained_says_why() -> None:
    gb = trained("gradient_boosting").onnx
    with pytest.raises(NotExplainable, match="no node covers"):
        from_onnx(_strip(gb, "nodes_hitrates"), len(FEATURES))
    with pytest.raises(NotExplainable, match="not an ONNX model"):
        from_onnx(b"\xff\xff not onnx", len(FEATURES))
    m = onnx.ModelProto.FromString(trained("logistic_regression").onnx)
    scaler = next(n for n in m.graph.node if n.op_type == "Scaler")
    linear = next(n for n in m.graph.node if n.op_type == "LinearClassifier")
    m.graph.node.remove(scaler)
    linear.input[0] = scaler.input[0]
    with pytest.raises(NotExplainable, match="without a Scaler"):
        from_onnx(m.SerializeToString(), len(FEATURES))
    with pytest.raises(NotExplainable, match="Imputer has 20 values for 3 features"):
        from_onnx(gb, 3)


def test_the_export_writes_covers_that_runtimes_ignore() -> None:
    model = trained("random_forest", TREES["random_forest"])
    clf = model.pipeline.named_steps["classifier"]
    node = next(n for n in read_graph(model.onnx).nodes if n.op_type == "TreeEnsembleClassifier")
    first_tree = node.attributes["nodes_treeids"] == 0
    covers = node.attributes["nodes_hitrates"][first_tree]
    np.testing.assert_allclose(covers, clf.estimators_[0].tree_.weighted_n_node_samples, rtol=1e-7)
    stripped = _strip(model.onnx, "nodes_hitrates")
    x = make_yield_data(n=50, seed=9)
    x = np.column_stack([x["features"][f] for f in FEATURES])
    assert np.array_equal(served_probability(model.onnx, x), served_probability(stripped, x))


@pytest.mark.parametrize("kind", ["gradient_boosting", "random_forest"])
def test_tree_ensemble_regressors_are_explained_too(kind: str) -> None:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor

    from mlops.models.onnx_export import TARGET_OPSET, attach_node_covers

    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 5))
    y = 2 * x[:, 0] - x[:, 1] * x[:, 2] + rng.normal(0, 0.1, 300)
    reg = (GradientBoostingRegressor(n_estimators=15, max_depth=3, random_state=0) if kind == "gradient_boosting"
           else RandomForestRegressor(n_estimators=8, max_depth=5, random_state=0)).fit(x, y)
    model = convert_sklearn(reg, initial_types=[("features", FloatTensorType([None, 5]))], target_opset=TARGET_OPSET)
    attach_node_covers(model, reg)
    artifact = model.SerializeToString()
    explainable = from_onnx(artifact, 5)
    ex = explainable.explain(x[:20])
    served = ort.InferenceSession(artifact, providers=["CPUExecutionProvider"]).run(
        None, {"features": x[:20].astype(np.float32)})[0].ravel()
    assert explainable.estimator_op == "TreeEnsembleRegressor" and explainable.link == "identity"
    assert np.abs(ex.margin - served).max() < 1e-5
    assert np.abs(ex.attributions.sum(axis=1) + ex.expected_value - ex.margin).max() < ADDITIVITY
    explainer = shap.TreeExplainer(reg)
    assert np.abs(explainer.shap_values(x[:20]) - ex.attributions).max() < 1e-5
    assert ex.expected_value == pytest.approx(float(np.ravel(explainer.expected_value)[0]), abs=1e-5)
