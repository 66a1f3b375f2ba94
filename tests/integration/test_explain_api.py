"""POST /explain end to end through `LocalCloud` + `ApiServer` over real HTTP: versions trained
and registered by TrainFunction (gradient boosting, random forest, logistic regression),
explained by alias and by version; the attributions add up to the margin, the probability is
the one /predict serves, the cards carry the importance and fairness sections, and bad input
is answered with 400/403/404 naming the field."""

from __future__ import annotations

import http.client
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from yield_models import explicit_features, training_event
from stack_env import product_cloud

from localcloud.apigw import ApiServer
from localcloud.cloud import LocalCloud

ROOT = Path(__file__).resolve().parents[2]
KEY = "explain-test-key-0123456789"
ADMIN = "explain-admin-key-0123456789"
REQUEST = {"vdd_setpoint": 1.2}


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    overrides = {"ExplainFunction": {"ALIAS_CACHE_SECONDS": "0", "MODEL_RETRY_SECONDS": "0"},
                 "InferenceFunction": {"DEPLOYMENT_CACHE_SECONDS": "0", "MODEL_RETRY_SECONDS": "0"}}
    with product_cloud({"ApiKey": KEY, "AdminApiKey": ADMIN}, env_vars=overrides) as c:
        yield c


def call(api: ApiServer, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
         key: str | None = KEY) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=120)
    try:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        headers = {"Content-Type": "application/json", **({"x-api-key": key} if key else {})}
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def fields(body: dict) -> dict[str, str]:
    return {d["field"]: d["problem"] for d in body["details"]}


@pytest.fixture(scope="module")
def versions(cloud: LocalCloud) -> dict[str, dict]:
    """Versions 1-3 of "yield", trained and registered by TrainFunction."""
    out = {}
    for kind in ("gradient_boosting", "random_forest", "logistic_regression"):
        event = training_event(seed=0)
        event["config"]["model"] = kind
        answer = cloud.runtime.invoke("TrainFunction", json.dumps(event))
        assert answer.function_error is None, answer.payload[:2000]
        out[kind] = answer.json()
    assert [v["version"] for v in out.values()] == [1, 2, 3]
    return out


def check_additivity(body: dict) -> None:
    total = sum(body["attributions"].values())
    assert abs(total + body["expected_value"] - body["output"]["margin"]) <= 1e-6
    assert body["additivity"]["error"] <= body["additivity"]["tolerance"] == 1e-6


def test_without_a_champion_the_default_alias_is_not_found(api, versions) -> None:
    body = {"model": "yield", "features": explicit_features(), "request": REQUEST}
    status, body = call(api, "POST", "/explain", body)
    assert status == 404 and body["error"] == "alias_not_found" and fields(body) == {"alias": "not found"}


def test_the_champion_is_explained_and_matches_what_predict_serves(api, versions) -> None:
    status, moved = call(api, "POST", "/models/yield/aliases/champion", {"version": 1, "reason": "first"}, key=ADMIN)
    assert status == 200, moved
    features = explicit_features()
    status, body = call(api, "POST", "/explain", {"model": "yield", "features": features, "request": REQUEST})
    assert status == 200, body
    assert (body["model"], body["version"], body["variant"]) == ("yield", 1, "champion")
    assert body["method"] == "tree_shap_path_dependent" and body["link"] == "logistic"
    assert list(body["attributions"]) == versions["gradient_boosting"]["features"]  # the signature's order
    check_additivity(body)
    assert 1 / (1 + math.exp(-body["output"]["margin"])) == pytest.approx(body["output"]["probability"], abs=1e-6)
    assert body["inputs"]["vdd_idd_ratio"] == pytest.approx(features["vdd"] / features["idd"])  # on-demand, computed
    status, predicted = call(api, "POST", "/predict", {"model": "yield", "features": features, "request": REQUEST})
    assert status == 200 and predicted["version"] == 1
    assert body["output"]["probability"] == predicted["probability"]
    assert body["output"]["label"] == predicted["label"] and body["output"]["threshold"] == predicted["threshold"]


@pytest.mark.parametrize("version, kind, method, link", [
    (2, "random_forest", "tree_shap_path_dependent", "identity"),
    (3, "logistic_regression", "linear_shap", "logistic"),
])
def test_each_kind_of_model_adds_up(api, versions, version: int, kind: str, method: str, link: str) -> None:
    for seed in (1, 2, 3):
        features = {**explicit_features(seed), "p000": None}  # missing: imputed, as /predict does
        status, body = call(api, "POST", "/explain",
                            {"model": "yield", "version": version, "features": features, "request": REQUEST})
        assert status == 200, body
        assert (body["version"], body["method"], body["link"]) == (version, method, link)
        assert body["missing_features"] == {"policy": "impute", "imputed": ["p000"]}
        check_additivity(body)
        if link == "identity":  # a forest's margin is its probability
            assert body["output"]["margin"] == pytest.approx(body["output"]["probability"], abs=1e-6)


def test_the_cards_show_feature_importance_and_fairness(cloud, api, versions) -> None:
    s3 = cloud.client("s3")
    bucket = cloud.stack.buckets["ArtifactsBucket"].name
    status, got = call(api, "GET", "/models/yield/versions/2")
    assert status == 200
    card = json.loads(s3.get_object(Bucket=bucket, Key=got["card"]["json_key"])["Body"].read())
    importance = card["feature_importance"]
    assert importance["method"] == "tree_shap_path_dependent" and importance["output"] == "probability"
    assert sorted(importance["ranking"]) == sorted(versions["random_forest"]["features"])
    assert list(card["fairness"]["attributes"]) == ["tester_id"]
    assert [g["value"] for g in card["fairness"]["attributes"]["tester_id"]["groups"]] == ["T1", "T2", "T3"]
    markdown = s3.get_object(Bucket=bucket, Key=got["card"]["markdown_key"])["Body"].read().decode()
    assert "\n## Feature importance\n" in markdown and "\n## Fairness\n" in markdown and "### tester_id" in markdown


def test_bad_input_is_refused_with_its_field(api, versions) -> None:
    features = explicit_features()
    status, body = call(api, "POST", "/explain", raw=b"{not json")
    assert status == 400 and set(fields(body)) == {"body"}
    status, body = call(api, "POST", "/explain", {"model": "yield", "features": {**features, "vdd": "1.2"},
                                                  "version": 1, "request": REQUEST})
    assert status == 400 and fields(body) == {"body.features.vdd": "expected a number or null, got a string"}
    status, body = call(api, "POST", "/explain", {"model": "yield", "entity_id": "D-1", "version": 1})
    assert status == 400 and set(fields(body)) == {"body.features"}
    status, body = call(api, "POST", "/explain", {"model": "yield", "features": {**features, "volts": 1.0},
                                                  "version": 1, "request": REQUEST})
    assert status == 400 and body["error"] == "invalid_features"
    assert fields(body) == {"body.features.volts": "unexpected feature"}
    status, body = call(api, "POST", "/explain", {"model": "yield", "features": features, "version": 7})
    assert status == 404 and fields(body) == {"version": "not found"}
    status, body = call(api, "POST", "/explain", {"model": "yield", "features": features}, key=None)
    assert status == 403
