"""What POST /explain answers, without AWS: the version chosen as /predict chooses it (default
the champion alias), the sha256-checked artifact explained, additivity in the answer, and
every bad input or unexplainable version answered with its status and field."""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timezone

import numpy as np
import onnx
import pytest
from models_synthetic import FEATURES, trained

from mlops.api_errors import ApiError
from mlops.explain.explaining import ADDITIVITY_TOLERANCE, Explainer, parse_explain
from mlops.models.registry import ModelVersion
from mlops.models.registry_store import AliasNotFound, ModelNotFound, VersionNotFound
from mlops.models.serving_model import ServingModel

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


def _without_covers(artifact: bytes) -> bytes:
    m = onnx.ModelProto.FromString(artifact)
    for node in m.graph.node:
        for a in list(node.attribute):
            if a.name == "nodes_hitrates":
                node.attribute.remove(a)
    return m.SerializeToString()


class Registry:
    """Versions of "yield" in memory: 1 gradient boosting (champion), 2 logistic regression
    (refuses missing values), 3 without node covers, 4 tampered in S3."""

    def __init__(self) -> None:
        gb, lr = trained("gradient_boosting"), trained("logistic_regression")
        bare = _without_covers(gb.onnx)
        self.versions = {
            1: (gb.onnx, gb.to_record(), gb.sha256, "impute"),
            2: (lr.onnx, lr.to_record(), lr.sha256, "refuse"),
            3: (bare, gb.to_record(), hashlib.sha256(bare).hexdigest(), "impute"),
            4: (b"tampered" + gb.onnx, gb.to_record(), gb.sha256, "impute"),
        }
        self.aliases = {"champion": 1, "challenger": 2}
        self.artifact_reads = 0

    def get_version(self, name: str, number: int) -> ModelVersion:
        if name != "yield":
            raise ModelNotFound(f"no model {name!r}")
        if number not in self.versions:
            raise VersionNotFound(f"{name} has no version {number}")
        data, record, sha, policy = self.versions[number]
        return ModelVersion(name, number, "2026-01-05T09:00:00.000000Z", "approved", sha, f"a/{number}.onnx",
                            len(data), "c.json", "c.md", "test", None, policy, float(record["threshold"]["threshold"]),
                            record)

    def read_artifact(self, version: ModelVersion) -> bytes:
        self.artifact_reads += 1
        return self.versions[version.version][0]

    def get_alias(self, name: str, alias: str) -> int:
        if name != "yield":
            raise ModelNotFound(f"no model {name!r}")
        if alias not in self.aliases:
            raise AliasNotFound(f"{name} has no alias {alias!r}")
        return self.aliases[alias]


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry()


@pytest.fixture(scope="module")
def explainer(registry: Registry) -> Explainer:
    return Explainer(registry, cache_ttl_s=0, failure_ttl_s=0)


def _features(seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    return {name: float(v) for name, v in zip(FEATURES, rng.normal(size=len(FEATURES)))}


def ask(explainer: Explainer, body: dict) -> dict:
    return explainer.explain(parse_explain(body), "req-1", NOW)


def fields(exc: pytest.ExceptionInfo) -> dict[str, str]:
    return {d["field"]: d["problem"] for d in exc.value.details}


def test_the_champion_is_explained_by_default_and_the_answer_adds_up(explainer: Explainer, registry: Registry) -> None:
    features = _features()
    body = ask(explainer, {"model": "yield", "features": features, "entity_id": "D-7"})
    assert (body["model"], body["version"], body["variant"], body["entity_id"]) == ("yield", 1, "champion", "D-7")
    assert body["method"] == "tree_shap_path_dependent" and body["link"] == "logistic"
    assert list(body["attributions"]) == list(FEATURES)
    total = sum(body["attributions"].values())
    assert abs(total + body["expected_value"] - body["output"]["margin"]) < ADDITIVITY_TOLERANCE
    assert body["additivity"]["error"] < ADDITIVITY_TOLERANCE
    served = ServingModel.load(registry.versions[1][0], registry.versions[1][2]).predict_one(features).probability
    assert body["output"]["probability"] == served
    assert 1 / (1 + math.exp(-body["output"]["margin"])) == pytest.approx(served, abs=1e-6)
    assert body["output"]["label"] == int(served >= body["output"]["threshold"])
    top = max(body["attributions"], key=lambda k: abs(body["attributions"][k]))
    assert top in {"p00", "p03", "p07", "p11"}  # the features the labels depend on
    reads = registry.artifact_reads
    ask(explainer, {"model": "yield", "features": _features(1), "version": 1})
    assert registry.artifact_reads == reads  # the version's session and explainer are kept warm


def test_an_alias_or_version_picks_the_model_and_missing_values_follow_its_policy(explainer: Explainer) -> None:
    features = {**_features(2), "p05": None}
    linear = ask(explainer, {"model": "yield", "features": {**features, "p05": 0.3}, "alias": "challenger"})
    assert (linear["version"], linear["variant"], linear["method"]) == (2, "challenger", "linear_shap")
    assert abs(sum(linear["attributions"].values()) + linear["expected_value"] - linear["output"]["margin"]) < 1e-6
    with pytest.raises(ApiError) as exc:  # version 2 refuses missing values
        ask(explainer, {"model": "yield", "features": features, "version": 2})
    assert (exc.value.status, exc.value.code) == (400, "missing_features")
    assert fields(exc) == {"features.p05": "missing"}
    imputed = ask(explainer, {"model": "yield", "features": features, "version": 1})
    assert imputed["missing_features"] == {"policy": "impute", "imputed": ["p05"]} and imputed["inputs"]["p05"] is None
    assert abs(sum(imputed["attributions"].values()) + imputed["expected_value"] - imputed["output"]["margin"]) < 1e-6


@pytest.mark.parametrize("body, status, code, expected", [
    ({"model": "yield"}, 400, "invalid_request",
     {"features": "give features, or an entity_id to read them from the online store"}),
    ({"model": "yield", "entity_id": "D-1"}, 400, "invalid_request", None),
    ({"model": "Bad Name!", "features": {"p00": 1.0}, "version": 0}, 400, "invalid_request", None),
    ({"model": "yield", "features": {"p00": "high"}, "version": 1, "alias": "champion"}, 400, "invalid_request", None),
    ({"model": "yield", "features": {**{f: 0.0 for f in FEATURES}, "p99": 1.0}, "version": 1}, 400, "invalid_features",
     {"features.p99": "unexpected feature"}),
    ({"model": "wafer", "features": {"p00": 1.0}}, 404, "model_not_found", {"model": "not found"}),
    ({"model": "yield", "features": {"p00": 1.0}, "alias": "shadow"}, 404, "alias_not_found", {"alias": "not found"}),
    ({"model": "yield", "features": {"p00": 1.0}, "version": 9}, 404, "version_not_found", {"version": "not found"}),
])
def test_bad_requests_name_their_fields(explainer: Explainer, body: dict, status: int, code: str, expected) -> None:
    with pytest.raises(ApiError) as exc:
        ask(explainer, body)
    assert (exc.value.status, exc.value.code) == (status, code)
    got = fields(exc)
    if expected is not None:
        assert got == expected
    elif "entity_id" in body:
        assert set(got) == {"features"} and "explicit feature values" in got["features"]
    elif body["model"] == "Bad Name!":
        assert set(got) == {"model", "version"}
    else:
        assert set(got) == {"features.p00", "alias"}


def test_unexplainable_and_tampered_versions(explainer: Explainer) -> None:
    with pytest.raises(ApiError) as exc:
        ask(explainer, {"model": "yield", "features": _features(), "version": 3})
    assert (exc.value.status, exc.value.code) == (422, "not_explainable") and "node covers" in exc.value.message
    assert exc.value.body()["version"] == 3
    with pytest.raises(ApiError) as exc:
        ask(explainer, {"model": "yield", "features": _features(), "version": 4})
    assert (exc.value.status, exc.value.code) == (500, "artifact_integrity")
