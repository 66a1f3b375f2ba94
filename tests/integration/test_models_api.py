"""The models issue end to end through `LocalCloud` + `ApiServer` over real HTTP: train ->
register -> promote -> predict (explicit features and entity ids, single and batch) ->
feedback; routing, shadow scoring, integrity checks, alias history and bad input.

One cloud for the module (template.yaml as it is, the inference function's caches switched off
through SAM-style env-var overrides so a move is seen at once). Tests run in file order and
build on each other's registry state where the comment says so.
"""

from __future__ import annotations

import http.client
import json
import math
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from yield_models import explicit_features, training_event
from stack_env import FunctionLogs, product_cloud, table

from localcloud.apigw import ApiServer
from localcloud.cloud import LocalCloud

ROOT = Path(__file__).resolve().parents[2]
KEY = "models-test-key-0123456789"
ADMIN = "models-admin-key-0123456789"


@pytest.fixture(scope="module")
def logs() -> FunctionLogs:
    return FunctionLogs()


@pytest.fixture(scope="module")
def cloud(logs: FunctionLogs) -> Iterator[LocalCloud]:
    overrides = {"InferenceFunction": {"DEPLOYMENT_CACHE_SECONDS": "0", "MODEL_RETRY_SECONDS": "0"}}
    with product_cloud({"ApiKey": KEY, "AdminApiKey": ADMIN}, env_vars=overrides, log_sink=logs) as c:
        yield c


class Answer:
    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        self.status, self.headers, self.raw = status, headers, body

    @property
    def body(self) -> Any:
        return json.loads(self.raw)

    def fields(self) -> dict[str, str]:
        return {d["field"]: d["problem"] for d in self.body["details"]}


def call(api: ApiServer, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
         key: str | None = KEY) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=60)
    try:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        headers = {"Content-Type": "application/json"}
        if key:
            headers["x-api-key"] = key
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        return Answer(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def scan(cloud: LocalCloud, logical_id: str) -> list[dict]:
    return cloud.client("dynamodb").scan(TableName=table(cloud, logical_id))["Items"]


def logged(cloud: LocalCloud, request_id: str) -> dict | None:
    return cloud.client("dynamodb").get_item(TableName=table(cloud, "PredictionsTable"),
                                             Key={"request_id": {"S": request_id}}).get("Item")


def registry(cloud: LocalCloud):
    from mlops.models.registry_store import RegistryStore

    return RegistryStore(table(cloud, "RegistryTable"), cloud.stack.buckets["ArtifactsBucket"].name,
                         deployments_table=table(cloud, "DeploymentsTable"),
                         dynamodb=cloud.client("dynamodb"), s3=cloud.client("s3"))


def set_percent(cloud: LocalCloud, percent: float) -> None:
    from mlops.models.deployment_store import DeploymentStore

    DeploymentStore(table(cloud, "DeploymentsTable"), dynamodb=cloud.client("dynamodb")).set_challenger_percent(
        "yield", percent, updated_at="2026-01-01T00:00:00.000000Z")


def write_online(cloud: LocalCloud, rows: list[dict], now: datetime) -> None:
    from mlops.features.online_store import OnlineStore
    from mlops.features.timestamps import parse_timestamp
    from mlops.features.yield_example import device_parametrics

    store = OnlineStore(table(cloud, "FeaturesTable"))
    store.write(device_parametrics, [{**r, "event_timestamp": parse_timestamp(r["event_timestamp"])} for r in rows],
                now=now)


# ------------------------------------------------------------------------------ train + register


@pytest.fixture(scope="module")
def v1(cloud: LocalCloud) -> dict:
    """Version 1 of "yield": trained by TrainFunction on a point-in-time training set."""
    answer = cloud.runtime.invoke("TrainFunction", json.dumps(training_event(seed=0)))
    assert answer.function_error is None, answer.payload[:2000]
    return answer.json()


def test_training_registers_a_pending_version_with_lineage_and_a_card(cloud, api, v1) -> None:
    assert (v1["model"], v1["version"], v1["approval_status"]) == ("yield", 1, "pending")
    assert v1["parity"]["max_abs_diff"] <= 1e-5 and v1["metrics"]["roc_auc"] > 0.7
    listed = call(api, "GET", "/models")
    assert listed.status == 200
    [model] = listed.body["models"]
    assert model["name"] == "yield" and model["latest_version"] == 1 and model["aliases"] == {}
    version = call(api, "GET", "/models/yield/versions/1")
    assert version.status == 200
    got = version.body
    assert got["artifact"]["sha256"] == v1["sha256"] and got["artifact"]["key"].endswith(f"{v1['sha256']}.onnx")
    assert [f["name"] for f in got["signature"]["features"]] == v1["features"]
    assert got["training_data"]["rows"] == 400 and got["training_data"]["content_sha256"]
    assert got["training_data"]["source"]["kind"] == "point_in_time_join"
    assert got["code_version"] == "tests" and got["parent_version"] is None
    assert got["feature_source"]["views"] == ["device_parametrics"]
    assert set(got["metrics"]) >= {"roc_auc", "pr_auc", "f1", "log_loss", "brier", "calibration"}
    assert got["slices"]["tester_id"] and got["approval_status"] == "pending"
    s3 = cloud.client("s3")
    bucket = cloud.stack.buckets["ArtifactsBucket"].name
    card = json.loads(s3.get_object(Bucket=bucket, Key=got["card"]["json_key"])["Body"].read())
    assert card["model"]["version"] == 1 and card["model"]["sha256"] == v1["sha256"]
    markdown = s3.get_object(Bucket=bucket, Key=got["card"]["markdown_key"])["Body"].read().decode()
    assert markdown.startswith("# Model card: yield version 1") and "## Limitations" in markdown


def test_nothing_is_served_before_a_champion(api, v1) -> None:
    answer = call(api, "POST", "/predict", {"model": "yield", "features": explicit_features()})
    assert answer.status == 404 and answer.body["error"] == "not_deployed"


def test_promote_then_predict_with_explicit_features(cloud, api, v1, logs) -> None:
    moved = call(api, "POST", "/models/yield/aliases/champion", {"version": 1, "reason": "first model"}, key=ADMIN)
    assert moved.status == 200, moved.raw
    assert moved.body["version"] == 1 and moved.body["previous_version"] is None
    deployment = cloud.client("dynamodb").get_item(TableName=table(cloud, "DeploymentsTable"),
                                                   Key={"model": {"S": "yield"}, "sk": {"S": "DEPLOYMENT"}})["Item"]
    assert deployment["champion"] == {"N": "1"}

    features = explicit_features()
    answer = call(api, "POST", "/predict", {"model": "yield", "features": features, "request": {"vdd_setpoint": 1.2}})
    assert answer.status == 200, answer.raw
    body = answer.body
    assert (body["model"], body["version"], body["variant"]) == ("yield", 1, "champion")
    assert 0.0 <= body["probability"] <= 1.0 and body["threshold"] == v1["threshold"]
    assert body["label"] == int(body["probability"] >= body["threshold"])
    assert body["missing_features"] == {"policy": "impute", "imputed": []} and body["warnings"] == []
    assert answer.headers["X-Request-Id"] == body["request_id"]

    item = logged(cloud, body["request_id"])
    assert item is not None
    assert json.loads(item["inputs"]["S"])["leakage_na"] == features["leakage_na"]
    assert math.isclose(json.loads(item["inputs"]["S"])["vdd_idd_ratio"], features["vdd"] / features["idd"])
    assert item["model_version"] == {"S": "yield#1"} and item["variant"] == {"S": "champion"}
    assert float(item["probability"]["N"]) == body["probability"] and float(item["latency_ms"]["N"]) > 0
    assert int(item["expires_at"]["N"]) > datetime.now(timezone.utc).timestamp() + 80 * 86400
    emf = [d for d in logs.emf("InferenceFunction") if d.get("version") == "1"]
    assert emf, "no EMF document for version 1"
    names = {m["Name"] for m in emf[-1]["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert names >= {"Predictions", "Latency", "Errors", "PredictedPositive", "PredictedPositiveRate"}
    assert ["model", "version"] == emf[-1]["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][:2]


def test_predict_by_entity_id_reads_the_online_store(cloud, api, v1) -> None:
    now = datetime.now(timezone.utc)
    fresh = {"device_id": "D-FRESH", "event_timestamp": (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
             **explicit_features(3)}
    old = {"device_id": "D-OLD", "event_timestamp": (now - timedelta(days=20)).strftime("%Y-%m-%dT%H:%M:%SZ"),
           **explicit_features(4)}
    write_online(cloud, [fresh], now)
    write_online(cloud, [old], now - timedelta(days=19))  # written while it was fresh; 20 days old now (TTL 14 d)

    answer = call(api, "POST", "/predict", {"model": "yield", "entity_id": "D-FRESH", "request": {"vdd_setpoint": 1.2}})
    assert answer.status == 200, answer.raw
    assert answer.body["entity_id"] == "D-FRESH" and answer.body["warnings"] == []
    assert answer.body["missing_features"] == {"policy": "impute", "imputed": []}
    same = call(api, "POST", "/predict", {"model": "yield", "features": {k: fresh[k] for k in explicit_features()},
                                          "request": {"vdd_setpoint": 1.2}})
    assert same.body["probability"] == answer.body["probability"]  # the same features, read from the store
    item = logged(cloud, answer.body["request_id"])
    assert item["entity_id"] == {"S": "D-FRESH"} and json.loads(item["inputs"]["S"])["vdd"] == fresh["vdd"]

    stale = call(api, "POST", "/predict", {"model": "yield", "entity_id": "D-OLD", "request": {"vdd_setpoint": 1.2}})
    assert stale.status == 200, stale.raw
    warnings = {w["code"]: w for w in stale.body["warnings"]}
    assert set(warnings) <= {"stale_features", "data_quality"}  # expired values come back null
    warning = warnings["stale_features"]
    assert warning["view"] == "device_parametrics"
    assert warning["age_seconds"] > 19 * 86400 and warning["ttl_seconds"] == 14 * 86400
    assert stale.body["missing_features"]["policy"] == "impute"
    assert set(stale.body["missing_features"]["imputed"]) == set(v1["features"])

    unknown = call(api, "POST", "/predict", {"model": "yield", "entity_id": "D-NEVER"})
    assert unknown.status == 200
    codes = [w["code"] for w in unknown.body["warnings"]]
    assert codes == ["missing_features", "missing_request_input", "data_quality"]  # nulls vs the baseline


def test_feedback_joins_the_logged_prediction_idempotently(cloud, api, v1) -> None:
    prediction = call(api, "POST", "/predict", {"model": "yield", "entity_id": "D-FB", "features": explicit_features(5)})
    rid = prediction.body["request_id"]
    first = call(api, "POST", "/feedback", {"request_id": rid, "label": 1})
    assert first.status == 200, first.raw
    assert first.body["duplicate"] is False and first.body["prediction"]["label"] == 1
    assert first.body["correct"] == (prediction.body["label"] == 1)
    again = call(api, "POST", "/feedback", {"request_id": rid, "label": True})
    assert again.status == 200 and again.body["duplicate"] is True
    conflict = call(api, "POST", "/feedback", {"request_id": rid, "label": 0})
    assert conflict.status == 409 and conflict.fields() == {"label": "conflicts with the stored label"}
    item = logged(cloud, rid)
    assert item["label"] == {"N": "1"} and item["feedback_at"]["S"] == first.body["prediction"]["feedback_at"]

    later = (datetime.now(timezone.utc) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    by_entity = call(api, "POST", "/feedback", {"entity_id": "D-FRESH", "timestamp": later, "label": 0,
                                                "model": "yield"})
    assert by_entity.status == 200, by_entity.raw
    joined = logged(cloud, by_entity.body["request_id"])
    assert joined["entity_id"] == {"S": "D-FRESH"} and joined["label"] == {"N": "0"}

    missing = call(api, "POST", "/feedback", {"request_id": "no-such-request", "label": 1})
    assert missing.status == 404 and missing.fields() == {"request_id": "not found"}
    too_early = call(api, "POST", "/feedback", {"entity_id": "D-FRESH", "timestamp": "2020-01-01T00:00:00Z", "label": 1})
    assert too_early.status == 404
    bad = call(api, "POST", "/feedback", {"request_id": rid, "label": 2, "extra": 1})
    # shape errors come from the pydantic model (FeedbackBody), named by location
    assert bad.status == 400 and bad.fields() == {"body.label": "Input should be less than or equal to 1",
                                                  "body.extra": "unknown field"}


def test_batch_answers_every_row_and_logs_each(cloud, api, v1) -> None:
    rows = [{"features": explicit_features(6)}, {"entity_id": "D-FRESH", "request": {"vdd_setpoint": 1.2}},
            {"entity_id": "D-B3", "features": explicit_features(7)}]
    answer = call(api, "POST", "/predict/batch", {"model": "yield", "rows": rows})
    assert answer.status == 200, answer.raw
    body = answer.body
    ids = [p["request_id"] for p in body["predictions"]]
    assert ids == [f"{body['request_id']}-{i}" for i in range(3)]
    assert [p.get("entity_id") for p in body["predictions"]] == [None, "D-FRESH", "D-B3"]
    single = call(api, "POST", "/predict", {"model": "yield", "entity_id": "D-FRESH", "request": {"vdd_setpoint": 1.2}})
    assert body["predictions"][1]["probability"] == single.body["probability"]
    assert all(logged(cloud, rid) is not None for rid in ids)


# ------------------------------------------------------------------------------ bad input


BAD_REQUESTS = [
    ({"model": "yield", "features": {**explicit_features(), "bogus": 1.0}}, 400, "invalid_features",
     {"features.bogus": "unexpected feature"}),
    ({"model": "yield", "features": {**explicit_features(), "vdd": "1.2"}}, 400, "invalid_request",
     {"features.vdd": "expected a number or null, got a string"}),
    ({"model": "yield", "features": {**explicit_features(), "vdd": True}}, 400, "invalid_request",
     {"features.vdd": "expected a number or null, got a boolean"}),
    ({"model": "yield"}, 400, "invalid_request",
     {"features": "give features, or an entity_id to read them from the online store"}),
    ({"model": "Yield!", "features": {}, "colour": "red"}, 400, "invalid_request",
     {"model": "must be 1-64 characters of a-z, 0-9, '_' or '-', starting with a letter or digit",
      "colour": "unknown field"}),
    ({"model": "nope", "features": explicit_features()}, 404, "model_not_found", {"model": "not found"}),
    ({"model": "yield", "version": 42, "features": explicit_features()}, 404, "version_not_found",
     {"version": "not found"}),
    ({"model": "yield", "alias": "nope", "features": explicit_features()}, 404, "alias_not_found",
     {"alias": "not found"}),
    ({"model": "yield", "version": 1, "alias": "champion", "features": explicit_features()}, 400, "invalid_request",
     {"alias": "give version or alias, not both"}),
]


@pytest.mark.parametrize(("body", "status", "code", "fields"), BAD_REQUESTS,
                         ids=["extra", "string", "boolean", "nothing", "malformed", "unknown-model",
                              "unknown-version", "unknown-alias", "version-and-alias"])
def test_bad_predictions_are_refused_field_by_field_and_store_nothing(cloud, api, v1, body, status, code,
                                                                      fields) -> None:
    before = len(scan(cloud, "PredictionsTable"))
    answer = call(api, "POST", "/predict", body)
    assert answer.status == status, answer.raw
    if status == 400:  # a 400 names each field by where it was (mlops.api_limits.locate_fields)
        fields = {f"body.{name}": problem for name, problem in fields.items()}
    assert answer.body["error"] == code and answer.fields() == fields
    assert len(scan(cloud, "PredictionsTable")) == before


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_finite_numbers_are_refused(cloud, api, v1, literal) -> None:
    before = len(scan(cloud, "PredictionsTable"))
    raw = b'{"model": "yield", "features": {"vdd": ' + literal + b', "idd": 400.0}}'
    answer = call(api, "POST", "/predict", raw=raw)
    assert answer.status == 400
    assert answer.fields() == {"body.features.vdd": "NaN is not allowed; send null for a missing value"
                               if literal == b"NaN" else "must be finite"}
    assert len(scan(cloud, "PredictionsTable")) == before


def test_batch_errors_name_the_row_and_the_limit_is_enforced(cloud, api, v1) -> None:
    before = len(scan(cloud, "PredictionsTable"))
    rows = [{"features": explicit_features()}, {"features": {**explicit_features(), "p999": 1.0}},
            {"entity_id": ""}]
    answer = call(api, "POST", "/predict/batch", {"model": "yield", "rows": rows})
    assert answer.status == 400
    assert answer.fields() == {"body.rows[2].entity_id": "expected a non-empty string (at most 256 characters) or an integer"}
    answer = call(api, "POST", "/predict/batch", {"model": "yield", "rows": rows[:2]})
    assert answer.status == 400 and answer.fields() == {"body.rows[1].features.p999": "unexpected feature"}
    too_many = call(api, "POST", "/predict/batch", {"model": "yield", "rows": [{"features": explicit_features()}] * 101})
    assert too_many.status == 400 and too_many.body["error"] == "batch_too_large"
    assert too_many.fields() == {"body.rows": "101 rows; the maximum is 100"}
    assert len(scan(cloud, "PredictionsTable")) == before


def test_bad_registry_requests(cloud, api, v1) -> None:
    before = scan(cloud, "RegistryTable")
    cases = [
        ("GET", "/models/nope/versions/1", None, 404, {"model": "not found"}),
        ("GET", "/models/yield/versions/9", None, 404, {"version": "not found"}),
        ("GET", "/models/yield/versions/x", None, 400, {"path.version": "expected a positive integer version"}),
        ("GET", "/models/yield/aliases/nope", None, 404, {"alias": "not found"}),
        ("POST", "/models/yield/aliases/champion", {"version": 9}, 404, {"version": "not found"}),
        ("POST", "/models/nope/aliases/champion", {"version": 1}, 404, {"model": "not found"}),
        ("POST", "/models/yield/aliases/champion", {"version": "one", "why": 1}, 400,  # pydantic: by location
         {"body.version": "Input should be a valid integer, unable to parse string as an integer",
          "body.why": "unknown field"}),
        ("POST", "/models/yield/aliases/9lives", {"version": 1}, 400,
         {"path.alias": "must be 1-64 characters of a-z, 0-9, '_' or '-', starting with a letter"}),
        ("DELETE", "/models/yield/aliases/nope", None, 404, {"alias": "not found"}),
        ("POST", "/models/yield/versions/1/approval", {"status": "maybe"}, 400,
         {"body.status": "Input should be 'approved', 'rejected' or 'pending'"}),
    ]
    for method, path, body, status, fields in cases:
        answer = call(api, method, path, body, key=KEY if method == "GET" else ADMIN)
        assert (answer.status, answer.fields()) == (status, fields), (method, path, answer.raw)
    assert call(api, "GET", "/models", key=None).status == 403
    assert call(api, "POST", "/models/yield/aliases/champion", {"version": 1}).status == 403  # the caller key
    assert scan(cloud, "RegistryTable") == before


# ------------------------------------------------------------------------------ more versions


@pytest.fixture(scope="module")
def v2(cloud: LocalCloud, v1: dict) -> dict:
    """Version 2: other data, so another artifact; its parent is the champion (v1)."""
    answer = cloud.runtime.invoke("TrainFunction", json.dumps(training_event(seed=2, n_estimators=15)))
    assert answer.function_error is None, answer.payload[:2000]
    return answer.json()


@pytest.fixture(scope="module")
def v3(cloud: LocalCloud, v2: dict) -> dict:
    """Version 3, whose artifact is then corrupted in S3 (before anything loaded it)."""
    answer = cloud.runtime.invoke("TrainFunction", json.dumps(training_event(seed=3, n_estimators=12)))
    assert answer.function_error is None, answer.payload[:2000]
    result = answer.json()
    cloud.client("s3").put_object(Bucket=cloud.stack.buckets["ArtifactsBucket"].name, Key=result["artifact_key"],
                                  Body=b"not the model that was registered")
    return result


def test_challenger_traffic_is_weighted_and_sticky_per_entity(cloud, api, v2) -> None:
    assert v2["version"] == 2 and v2["parent_version"] == 1 and v2["sha256"] != registry(cloud).get_version("yield", 1).sha256
    assert call(api, "POST", "/models/yield/aliases/challenger", {"version": 2}, key=ADMIN).status == 200
    entities = [f"E{i}" for i in range(40)]
    before = {e: call(api, "POST", "/predict", {"model": "yield", "entity_id": e, "features": explicit_features()}).body
              for e in entities}
    assert {b["variant"] for b in before.values()} == {"champion"}  # a new challenger starts at 0%
    set_percent(cloud, 50)
    first = {e: call(api, "POST", "/predict", {"model": "yield", "entity_id": e, "features": explicit_features()}).body
             for e in entities}
    again = {e: call(api, "POST", "/predict", {"model": "yield", "entity_id": e, "features": explicit_features()}).body
             for e in entities}
    assert {e: b["variant"] for e, b in first.items()} == {e: b["variant"] for e, b in again.items()}
    on_challenger = [e for e, b in first.items() if b["variant"] == "challenger"]
    assert 8 <= len(on_challenger) <= 32
    assert all(first[e]["version"] == (2 if e in on_challenger else 1) for e in entities)
    pinned = call(api, "POST", "/predict", {"model": "yield", "alias": "challenger", "features": explicit_features()})
    assert (pinned.body["version"], pinned.body["variant"]) == (2, "challenger")
    set_percent(cloud, 0)


def test_a_failing_shadow_never_changes_the_answer(cloud, api, v3) -> None:
    features = {"model": "yield", "entity_id": "E-SHADOW", "features": explicit_features(8)}
    without = call(api, "POST", "/predict", features)
    assert call(api, "POST", "/models/yield/aliases/shadow", {"version": 3}, key=ADMIN).status == 200
    broken = call(api, "POST", "/predict", features)
    assert broken.status == 200, broken.raw
    assert {k: broken.body[k] for k in ("version", "variant", "probability", "label")} == \
        {k: without.body[k] for k in ("version", "variant", "probability", "label")}
    shadow = logged(cloud, broken.body["request_id"])["shadow"]["M"]
    assert shadow["version"] == {"N": "3"} and "sha256" in shadow["error"]["S"]
    assert "probability" not in shadow

    assert call(api, "POST", "/models/yield/aliases/shadow", {"version": 2}, key=ADMIN).status == 200
    scored = call(api, "POST", "/predict", features)
    assert scored.body["probability"] == without.body["probability"] and scored.body["version"] == 1
    shadow = logged(cloud, scored.body["request_id"])["shadow"]["M"]
    assert shadow["version"] == {"N": "2"} and 0 <= float(shadow["probability"]["N"]) <= 1 and "error" not in shadow
    assert call(api, "DELETE", "/models/yield/aliases/shadow", key=ADMIN).status == 200


def test_an_artifact_whose_sha256_differs_is_never_loaded(cloud, api, v3) -> None:
    answer = call(api, "POST", "/predict", {"model": "yield", "version": 3, "features": explicit_features()})
    assert answer.status == 500
    assert answer.body["error"] == "artifact_integrity" and "sha256" in answer.body["message"]
    assert (answer.body["model"], answer.body["version"]) == ("yield", 3)
    promoted = call(api, "POST", "/models/yield/aliases/champion", {"version": 3}, key=ADMIN)
    assert promoted.status == 200  # the registry does not load artifacts ...
    refused = call(api, "POST", "/predict", {"model": "yield", "features": explicit_features()})
    assert refused.status == 500 and refused.body["error"] == "artifact_integrity"  # ... serving refuses it
    assert call(api, "POST", "/models/yield/aliases/champion", {"version": 1}, key=ADMIN).status == 200
    assert call(api, "POST", "/predict", {"model": "yield", "features": explicit_features()}).status == 200


def test_rejected_versions_cannot_take_an_alias(cloud, api, v3) -> None:
    rejected = call(api, "POST", "/models/yield/versions/3/approval", {"status": "rejected", "reason": "corrupt"}, key=ADMIN)
    assert rejected.status == 200 and rejected.body["approval_status"] == "rejected"
    assert rejected.body["approval"]["reason"] == "corrupt"
    refused = call(api, "POST", "/models/yield/aliases/canary", {"version": 3}, key=ADMIN)
    assert refused.status == 409 and refused.fields() == {"version": f"yield version 3 is rejected; it cannot take alias 'canary'"}
    approved = call(api, "POST", "/models/yield/versions/2/approval", {"status": "approved"}, key=ADMIN)
    assert approved.status == 200 and approved.body["approval_status"] == "approved"


def test_alias_history_answers_which_version_served_when(cloud, api, v3) -> None:
    history = call(api, "GET", "/models/yield/aliases/champion").body
    moves = history["history"]
    assert [m["version"] for m in moves] == [1, 3, 1]
    assert [m["seq"] for m in moves] == [1, 2, 3]
    assert history["version"] == 1
    assert moves[1]["previous_version"] == 1 and moves[1]["by"].startswith("api-key:")
    reg = registry(cloud)
    for move, following in zip(moves, moves[1:] + [None]):
        assert reg.alias_version_at("yield", "champion", move["at"]) == move["version"]
        at = call(api, "GET", f"/models/yield/aliases/champion?at={move['at']}")
        assert at.status == 200 and at.body["version"] == move["version"]
    assert reg.alias_version_at("yield", "champion", "2000-01-01T00:00:00.000000Z") is None
    before = call(api, "GET", "/models/yield/aliases/champion?at=2000-01-01T00:00:00Z")
    assert before.status == 200 and before.body["version"] is None
    bad = call(api, "GET", "/models/yield/aliases/champion?at=yesterday")
    assert bad.status == 400 and list(bad.fields()) == ["query.at"]
    shadow = call(api, "GET", "/models/yield/aliases/shadow?at=" + moves[-1]["at"])
    assert shadow.body["version"] is None  # removed before the champion moved back


def test_refuse_policy_names_the_missing_features(cloud, api, v3) -> None:
    answer = cloud.runtime.invoke("TrainFunction", json.dumps(training_event(seed=4, n_estimators=10,
                                                                             missing_policy="refuse")))
    v4 = answer.json()["version"]
    partial = {k: v for k, v in explicit_features().items() if k != "leakage_na"}
    setpoint = {"vdd_setpoint": 1.2}
    refused = call(api, "POST", "/predict", {"model": "yield", "version": v4, "features": {**partial, "p000": None},
                                             "request": setpoint})
    assert refused.status == 400 and refused.body["error"] == "missing_features"
    assert refused.body["missing_policy"] == "refuse"
    assert refused.fields() == {"body.features.leakage_na": "missing", "body.features.p000": "missing"}
    online = call(api, "POST", "/predict", {"model": "yield", "version": v4, "entity_id": "D-OLD"})
    assert online.status == 422 and online.body["missing_policy"] == "refuse"
    imputed = call(api, "POST", "/predict", {"model": "yield", "version": 1, "features": {**partial, "p000": None},
                                             "request": setpoint})
    assert imputed.status == 200
    assert imputed.body["missing_features"] == {"policy": "impute", "imputed": ["leakage_na", "p000"]}
    assert imputed.body["variant"] == "pinned"


def test_concurrent_registrations_never_collide(cloud, v1) -> None:
    reg = registry(cloud)
    base = reg.get_version("yield", 1)
    artifact = reg.read_artifact(base)
    results: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def register() -> None:
        start.wait()
        try:
            v = reg.register_version("concurrent", artifact=artifact, record=dict(base.record))
            with lock:
                results.append(v.version)
        except BaseException as exc:  # noqa: BLE001 - reported below
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=register) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sorted(results) == list(range(1, 9))
    assert reg.get_model("concurrent")["latest_version"] == 8
    assert [reg.get_version("concurrent", n).version for n in range(1, 9)] == list(range(1, 9))


def test_concurrent_alias_moves_keep_a_complete_history(cloud, v2) -> None:
    reg = registry(cloud)
    start = threading.Barrier(6)
    moved: list[int] = []

    def move(version: int) -> None:
        start.wait()
        moved.append(reg.move_alias("yield", "staging", version, by="thread").seq)

    threads = [threading.Thread(target=move, args=(1 + i % 2,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    history = reg.alias_history("yield", "staging")
    assert sorted(moved) == [1, 2, 3, 4, 5, 6] == [m.seq for m in history]
    assert [m.at for m in history] == sorted(m.at for m in history)
    assert all(m.previous_version == p.version for p, m in zip(history, history[1:]))
    assert reg.get_alias("yield", "staging") == history[-1].version


def test_training_reads_the_offline_store_that_feature_ingestion_wrote(cloud, api, v3) -> None:
    """Features ingested through POST /features land in the offline store; a training event
    with label rows only is joined to them point-in-time, and gives the same artifact as the
    same rows sent inline."""
    event = training_event(seed=5, n_estimators=10)
    columns = event.pop("feature_rows")["device_parametrics"]
    rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
    ingested = call(api, "POST", "/features", {"view": "device_parametrics", "rows": rows}, key=ADMIN)
    assert ingested.status == 200, ingested.raw
    from_store = cloud.runtime.invoke("TrainFunction", json.dumps(event))
    assert from_store.function_error is None, from_store.payload[:2000]
    result = from_store.json()
    source = call(api, "GET", f"/models/yield/versions/{result['version']}").body["training_data"]["source"]
    assert source["origin"] == f"offline store s3://{cloud.stack.buckets['DataBucket'].name}/features/"
    assert source["feature_rows"] == {"device_parametrics": 400} and source["matched"] == {"device_parametrics": 400}
    inline = cloud.runtime.invoke("TrainFunction", json.dumps(training_event(seed=5, n_estimators=10))).json()
    assert inline["sha256"] == result["sha256"] and inline["training_data"] == result["training_data"]
