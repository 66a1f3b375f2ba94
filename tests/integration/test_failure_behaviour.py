"""Failure behaviour end to end: AWS throttling (bounded retries, then a 503 with Retry-After,
nothing half-written) and a tampered model artifact (refused, the champion answers, an alert).

template.yaml in a LocalCloud whose endpoint answers chosen calls as a throttled AWS does
(`localcloud.faults`: DynamoDB's ProvisionedThroughputExceededException, S3's SlowDown). The
functions' real SDK clients retry (`mlops.aws`: standard mode, `MAX_ATTEMPTS` attempts), then
the handler answers 503 ``service_unavailable`` with ``Retry-After`` in the API's error shape
(`mlops.unavailable`). Each test checks the attempts the fault saw, the answer, that the store
holds nothing of the refused request, and that once the fault is gone the same request works.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from stack_env import FunctionLogs, http_json, product_cloud, table, train_champion
from yield_models import device_row, explicit_features, iso, training_event

from localcloud.apigw import ApiServer
from localcloud.cloud import LocalCloud
from mlops.aws import MAX_ATTEMPTS

KEY = "failure-test-key-0123456789"
ADMIN = "failure-admin-key-0123456789"


@pytest.fixture(scope="module")
def logs() -> FunctionLogs:
    return FunctionLogs()


@pytest.fixture(scope="module")
def cloud(logs: FunctionLogs) -> Iterator[LocalCloud]:
    overrides = {"InferenceFunction": {"DEPLOYMENT_CACHE_SECONDS": "0", "AUDIT_PREDICTION_SAMPLE_RATE": "0"}}
    with product_cloud({"ApiKey": KEY, "AdminApiKey": ADMIN}, env_vars=overrides, log_sink=logs,
                       max_concurrency=2) as c:
        yield c


@pytest.fixture(scope="module")
def champion(cloud: LocalCloud, api: ApiServer) -> dict:
    return train_champion(cloud, api, ADMIN, training_event(seed=0, n_estimators=8))


def call(api: ApiServer, method: str, path: str, body: Any = None, *, key: str = KEY,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    return http_json(api, method, path, body, key=key, headers=headers)


def prediction_rows(cloud: LocalCloud, entity: str) -> list[dict]:
    items = cloud.client("dynamodb").scan(TableName=table(cloud, "PredictionsTable"))["Items"]
    return [i for i in items if i.get("entity_id", {}).get("S") == entity]


def assert_unavailable(answer: tuple[int, dict[str, str], Any]) -> None:
    status, headers, body = answer
    assert status == 503, answer
    assert headers["retry-after"] == "2"
    assert body["error"] == "service_unavailable" and body["details"] == []
    assert "retry after 2 s" in body["message"] and body["retry_after_seconds"] == 2


def test_a_throttled_prediction_log_is_a_503_and_nothing_is_logged(cloud, api, champion, faults) -> None:
    body = {"model": "yield", "entity_id": "FAIL-P1", "features": explicit_features(21)}
    rule = faults.throttle("dynamodb", "PutItem", resource=table(cloud, "PredictionsTable"))
    refused = call(api, "POST", "/predict", body, headers={"Idempotency-Key": "fail-predict-1"})
    assert_unavailable(refused)
    assert refused[1]["x-request-id"]  # the id a client quotes
    assert rule.hits == MAX_ATTEMPTS  # bounded retries: the first call and two more
    assert prediction_rows(cloud, "FAIL-P1") == []
    faults.clear()
    # a 503 is not stored under the Idempotency-Key: the retry runs, and logs once
    retried = call(api, "POST", "/predict", body, headers={"Idempotency-Key": "fail-predict-1"})
    assert retried[0] == 200 and "idempotent-replayed" not in retried[1]
    assert [r["request_id"]["S"] for r in prediction_rows(cloud, "FAIL-P1")] == [retried[2]["request_id"]]


def test_a_throttled_deployment_read_is_a_503(cloud, api, champion, faults) -> None:
    rule = faults.throttle("dynamodb", ["GetItem", "Query"], resource=table(cloud, "DeploymentsTable"))
    assert_unavailable(call(api, "POST", "/predict", {"model": "yield", "entity_id": "FAIL-P2",
                                                      "features": explicit_features(22)}))
    assert rule.hits >= MAX_ATTEMPTS
    assert prediction_rows(cloud, "FAIL-P2") == []


def test_throttled_feedback_is_a_503_and_no_label_is_stored(cloud, api, champion, faults) -> None:
    rid = call(api, "POST", "/predict", {"model": "yield", "entity_id": "FAIL-F1",
                                         "features": explicit_features(23)})[2]["request_id"]
    rule = faults.throttle("dynamodb", ["UpdateItem", "PutItem", "TransactWriteItems"],
                           resource=table(cloud, "PredictionsTable"))
    assert_unavailable(call(api, "POST", "/feedback", {"request_id": rid, "label": 1}))
    assert rule.hits == MAX_ATTEMPTS
    assert "label" not in prediction_rows(cloud, "FAIL-F1")[0]
    faults.clear()
    joined = call(api, "POST", "/feedback", {"request_id": rid, "label": 1})
    assert joined[0] == 200 and joined[2]["duplicate"] is False


def test_a_throttled_idempotency_table_is_a_503_and_nothing_is_joined(cloud, api, champion, faults) -> None:
    rid = call(api, "POST", "/predict", {"model": "yield", "entity_id": "FAIL-F2",
                                         "features": explicit_features(24)})[2]["request_id"]
    rule = faults.throttle("dynamodb", "PutItem", resource=table(cloud, "IdempotencyTable"))
    assert_unavailable(call(api, "POST", "/feedback", {"request_id": rid, "label": 0},
                            headers={"Idempotency-Key": "fail-feedback-2"}))
    assert rule.hits == MAX_ATTEMPTS
    assert "label" not in prediction_rows(cloud, "FAIL-F2")[0]


def test_a_throttled_feature_lookup_is_a_503(cloud, api, faults) -> None:
    rule = faults.throttle("dynamodb", ["GetItem", "BatchGetItem"], resource=table(cloud, "FeaturesTable"))
    assert_unavailable(call(api, "GET", "/features/FAIL-L1?views=device_parametrics"))
    assert rule.hits == MAX_ATTEMPTS
    faults.clear()
    found = call(api, "GET", "/features/FAIL-L1?views=device_parametrics")
    assert found[0] == 200 and found[2]["views"]["device_parametrics"]["status"] == "missing"


def test_s3_slowdown_on_ingestion_is_a_503_and_nothing_is_stored(cloud, api, faults) -> None:
    now = datetime.now(timezone.utc)
    row = device_row(random.Random(5), "FAIL-I1", now - timedelta(hours=1))
    row["event_timestamp"] = iso(now - timedelta(hours=1))
    bucket = cloud.stack.buckets["DataBucket"].name
    rule = faults.throttle("s3", "PutObject", resource=bucket)
    assert_unavailable(call(api, "POST", "/features", {"view": "device_parametrics", "rows": [row]}, key=ADMIN))
    assert rule.hits == MAX_ATTEMPTS
    faults.clear()
    online = call(api, "GET", "/features/FAIL-I1?views=device_parametrics")
    assert online[2]["views"]["device_parametrics"]["status"] == "missing"  # the online store was not written
    stored = call(api, "POST", "/features", {"view": "device_parametrics", "rows": [row]}, key=ADMIN)
    assert stored[0] == 200, stored
    assert call(api, "GET", "/features/FAIL-I1?views=device_parametrics")[2]["views"]["device_parametrics"][
        "status"] == "ok"


# ----------------------------------------------------------------------- a tampered artifact


def test_a_tampered_challenger_artifact_is_refused_the_champion_answers_and_an_alert_goes_out(
        cloud, api, champion, logs) -> None:
    from mlops.models.deployment_store import DeploymentStore

    trained = cloud.runtime.invoke("TrainFunction", json.dumps(training_event(seed=2, n_estimators=6)))
    assert trained.function_error is None, trained.payload[:2000]
    v2 = trained.json()
    assert call(api, "POST", "/models/yield/aliases/challenger", {"version": v2["version"]}, key=ADMIN)[0] == 200
    artifact = cloud.client("s3").get_object(Bucket=cloud.stack.buckets["ArtifactsBucket"].name,
                                             Key=v2["artifact_key"])["Body"].read()
    cloud.client("s3").put_object(Bucket=cloud.stack.buckets["ArtifactsBucket"].name, Key=v2["artifact_key"],
                                  Body=artifact[:-16] + bytes(16))  # same size, last bytes zeroed
    deployments = DeploymentStore(table(cloud, "DeploymentsTable"), dynamodb=cloud.client("dynamodb"))
    deployments.set_challenger_percent("yield", 100, updated_at="2026-01-01T00:00:00.000000Z")
    try:
        answers = [call(api, "POST", "/predict", {"model": "yield", "entity_id": f"TAMPER-{i}",
                                                  "features": explicit_features(30 + i)}) for i in range(3)]
    finally:
        deployments.set_challenger_percent("yield", 0, updated_at="2026-01-01T00:00:01.000000Z")
    for status, _, body in answers:
        assert status == 200, body
        assert (body["version"], body["variant"]) == (1, "champion")  # the champion answered every request
        assert [w["code"] for w in body["warnings"] if w["code"] == "fallback"] == ["fallback"]
        errors = cloud.client("dynamodb").get_item(TableName=table(cloud, "PredictionsTable"),
                                                   Key={"request_id": {"S": body["request_id"] + "#error"}})["Item"]
        assert errors["version"] == {"N": str(v2["version"])} and "artifact_integrity" in errors["error"]["S"]
    # the alert: an audit record of the version, and the ArtifactRejected metric
    audit = call(api, "GET", f"/audit?entity=version:yield/{v2['version']}", key=ADMIN)
    rejected = [r for r in audit[2]["records"] if r["action"] == "artifact.rejected"]
    assert rejected and rejected[0]["actor"] == "inference"
    assert rejected[0]["details"]["error"]["type"] == "ArtifactIntegrityError"
    assert "sha256" in rejected[0]["details"]["error"]["message"]
    metrics = [d for d in logs.emf("InferenceFunction") if "ArtifactRejected" in d and d.get("version") == str(v2["version"])]
    assert metrics and all(d["ArtifactRejected"] == [1.0] and d["model"] == "yield" for d in metrics)
    # a failed load is alerted once, not once per refused request
    assert len(rejected) <= 2 and len(metrics) == len(rejected)  # at most one per warm environment
