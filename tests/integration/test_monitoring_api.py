"""Monitoring end to end through `LocalCloud` + `ApiServer` over real HTTP: a trained and
promoted model with a stored training baseline, predictions (some with inputs far outside the
training range, some with feedback), then GET /monitoring/{model}: the per-version numbers
against the logged items, data-quality flags at serving (the answer's warnings, the log's
``quality``), the HTML report in S3, and alerts that reach an SQS queue through both the SNS
topic and an EventBridge rule. Also the hourly schedule's event and bad requests.

One cloud for the module; tests run in file order and build on the predictions made first.
"""

from __future__ import annotations

import http.client
import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from yield_models import STORED, explicit_features, training_event
from stack_env import product_cloud

from localcloud.apigw import ApiServer
from localcloud.cloud import LocalCloud

ROOT = Path(__file__).resolve().parents[2]
KEY = "monitoring-test-key-0123456789"
ADMIN = "monitoring-admin-key-0123456789"
N_NORMAL, N_FAR = 24, 8


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    overrides = {"InferenceFunction": {"DEPLOYMENT_CACHE_SECONDS": "0"}}
    with product_cloud({"ApiKey": KEY, "AdminApiKey": ADMIN}, env_vars=overrides,
                       log_sink=lambda fid, line: None) as c:
        yield c


def call(api: ApiServer, method: str, path: str, body: Any = None, key: str | None = KEY) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=120)
    try:
        headers = {"Content-Type": "application/json", **({"x-api-key": key} if key else {})}
        conn.request(method, path, body=None if body is None else json.dumps(body).encode(), headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else None
    finally:
        conn.close()


def bucket(cloud: LocalCloud) -> str:
    return cloud.stack.buckets["ArtifactsBucket"].name


@pytest.fixture(scope="module")
def inbox(cloud: LocalCloud) -> dict[str, str]:
    """Two SQS queues: one subscribed to AlertsTopic, one targeted by an EventBridge rule on the
    default bus for source mlops.monitoring."""
    sqs, sns, events = cloud.client("sqs"), cloud.client("sns"), cloud.client("events")
    urls = {}
    for name in ("alerts-sns", "alerts-events"):
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        urls[name] = url
    arn = {n: sqs.get_queue_attributes(QueueUrl=u, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
           for n, u in urls.items()}
    topic = cloud.stack.functions["MonitorFunction"].environment["ALERTS_TOPIC_ARN"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn["alerts-sns"])
    events.put_rule(Name="monitoring-alerts", EventPattern=json.dumps({"source": ["mlops.monitoring"]}))
    events.put_targets(Rule="monitoring-alerts", Targets=[{"Id": "queue", "Arn": arn["alerts-events"]}])
    return urls


def drain(cloud: LocalCloud, url: str) -> list[dict]:
    sqs, out = cloud.client("sqs"), []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return out
        for m in got:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


@pytest.fixture(scope="module")
def served(cloud: LocalCloud, api: ApiServer) -> dict[str, Any]:
    """Version 1 trained, its baseline stored (from the training rows), promoted; then predictions."""
    from mlops.drift.baseline import Baseline
    from mlops.drift.baseline_store import BaselineStore

    event = training_event(seed=0)
    trained = cloud.runtime.invoke("TrainFunction", json.dumps(event))
    assert trained.function_error is None, trained.payload[:2000]
    rows = event["feature_rows"]["device_parametrics"]
    baseline = Baseline.build({f: np.array(rows[f], dtype=float) for f in STORED})
    BaselineStore(bucket(cloud), s3=cloud.client("s3")).save("yield", 1, baseline)
    status, moved = call(api, "POST", "/models/yield/aliases/champion", {"version": 1, "reason": "monitoring test"}, key=ADMIN)
    assert status == 200, moved

    rows = []
    for i in range(N_NORMAL + N_FAR):
        features = explicit_features(100 + i)
        if i >= N_NORMAL:
            features["leakage_na"] = 10_000.0
        rows.append({"features": features, "request": {"vdd_setpoint": 1.2}})
    # One normal and one far row alone (the single-row path), the others in two batches.
    bodies = []
    for chunk in ([rows[0]], rows[1:N_NORMAL], [rows[N_NORMAL]], rows[N_NORMAL + 1:]):
        if len(chunk) == 1:
            status, body = call(api, "POST", "/predict", {"model": "yield", **chunk[0]})
            bodies.append(body)
        else:
            status, body = call(api, "POST", "/predict/batch", {"model": "yield", "rows": chunk})
            bodies.extend(body["predictions"])
        assert status == 200, body
    answers = []
    for row, body in zip(rows, bodies):
        f = baseline.features
        expected = sorted(n for n in STORED if not f[n].min <= row["features"][n] <= f[n].max)
        answers.append({"body": body, "features": row["features"], "out_of_range": expected})
    labelled = answers[:6]
    for a in labelled:
        status, fb = call(api, "POST", "/feedback", {"request_id": a["body"]["request_id"], "label": 1})
        assert status == 200, fb
    return {"answers": answers, "baseline": baseline, "labelled": len(labelled)}


def test_serving_flags_inputs_outside_the_training_range(cloud: LocalCloud, served: dict) -> None:
    dynamodb = cloud.client("dynamodb")
    table = cloud.stack.tables["PredictionsTable"].name
    far = served["answers"][N_NORMAL:]
    assert all(a["out_of_range"] and "leakage_na" in a["out_of_range"] for a in far)
    for a in served["answers"]:
        warnings = [w for w in a["body"]["warnings"] if w["code"] == "data_quality"]
        item = dynamodb.get_item(TableName=table, Key={"request_id": {"S": a["body"]["request_id"]}})["Item"]
        if a["out_of_range"]:
            [warning] = warnings
            assert sorted(o["feature"] for o in warning["out_of_range"]) == a["out_of_range"]
            assert warning["nulls"] == [] and warning["unseen"] == []
            assert json.loads(item["quality"]["S"]) == {"out_of_range": a["out_of_range"]}
        else:
            assert warnings == [] and "quality" not in item


def test_monitoring_reports_per_version_numbers_equal_to_the_log(cloud: LocalCloud, api: ApiServer, served: dict,
                                                                 inbox: dict) -> None:
    status, body = call(api, "GET", "/monitoring/yield?hours=1&bucket=5m&publish=true")
    assert status == 200, body
    [v1] = body["versions"]
    items = cloud.client("dynamodb").scan(TableName=cloud.stack.tables["PredictionsTable"].name)["Items"]
    latencies = np.array([float(i["latency_ms"]["N"]) for i in items])
    labels = [int(i["predicted_label"]["N"]) for i in items]
    correct = [int(i["predicted_label"]["N"]) == int(i["label"]["N"]) for i in items if "label" in i]
    n = N_NORMAL + N_FAR
    assert (v1["version"], v1["variants"], v1["stats"]["n"], v1["stats"]["errors"]) == (1, {"champion": n}, n, 0)
    np.testing.assert_allclose([v1["stats"][f"latency_p{p}"] for p in (50, 95, 99)],
                               np.percentile(latencies, [50, 95, 99]), rtol=0, atol=1e-9)
    assert v1["stats"]["positive_rate"] == pytest.approx(sum(labels) / n, abs=1e-12)
    assert (v1["stats"]["labelled"], v1["stats"]["correct"]) == (served["labelled"], sum(correct))
    assert sum(b["n"] for b in v1["buckets"]) == n and all(b["seconds"] == 300 for b in v1["buckets"])
    assert {s["name"] for s in v1["slos"]} == {"p95-latency-daily", "availability", "latency-100ms"}
    availability = next(s for s in v1["slos"] if s["name"] == "availability")
    assert (availability["units"], availability["bad"], availability["budget_remaining"]) == (n, 0, 1.0)

    flagged = sum(1 for a in served["answers"] if a["out_of_range"])
    dq = v1["data_quality"]
    assert (dq["rows"], dq["flagged_rows"]) == (n, flagged)
    leakage = next(f for f in dq["features"] if f["feature"] == "leakage_na")
    assert leakage["out_of_range"] == sum("leakage_na" in a["out_of_range"] for a in served["answers"])

    # 8+ of 32 requests flagged (> 20%): a data-quality alert, sent to both destinations.
    kinds = [(a["kind"], a["detail"].get("problem")) for a in body["alerts"]]
    assert ("data_quality", "flagged_rate") in kinds
    assert body["published"] == {"events": len(body["alerts"]), "messages": len(body["alerts"])}
    via_sns = drain(cloud, inbox["alerts-sns"])
    assert sorted(json.loads(m["Message"])["title"] for m in via_sns) == sorted(a["title"] for a in body["alerts"])
    via_events = drain(cloud, inbox["alerts-events"])
    assert sorted(e["detail"]["title"] for e in via_events) == sorted(a["title"] for a in body["alerts"])
    assert {e["detail-type"] for e in via_events if e["detail"]["kind"] == "data_quality"} == {"MLOps Data Quality"}
    assert all(e["source"] == "mlops.monitoring" for e in via_events)

    s3 = cloud.client("s3")
    page = s3.get_object(Bucket=bucket(cloud), Key=body["report"]["html"])["Body"].read().decode()
    assert body["report"]["html"].startswith("reports/monitoring/yield/") and page.startswith("<!doctype html>")
    assert page.count("data:image/png;base64,") == 4 and "<h2>Data quality</h2>" in page
    stored = json.loads(s3.get_object(Bucket=bucket(cloud), Key=body["report"]["json"])["Body"].read())
    assert stored["versions"][0]["stats"] == v1["stats"]


def test_without_publish_nothing_is_sent(cloud: LocalCloud, api: ApiServer, served: dict, inbox: dict) -> None:
    status, body = call(api, "GET", "/monitoring/yield?hours=2")
    assert status == 200 and body["alerts"] and body["published"] == {"events": 0, "messages": 0}
    assert body["bucket_seconds"] == 3600
    assert drain(cloud, inbox["alerts-sns"]) == [] and drain(cloud, inbox["alerts-events"]) == []


def test_the_hourly_schedule_monitors_every_model(cloud: LocalCloud, served: dict, inbox: dict) -> None:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
             "account": "123456789012", "time": now, "region": "us-east-1", "detail": {},
             "resources": ["arn:aws:events:us-east-1:123456789012:rule/mlops-MonitorFunctionHourly"]}
    answer = cloud.runtime.invoke("MonitorFunction", json.dumps(event))
    assert answer.function_error is None, answer.payload[:2000]
    [model] = answer.json()["models"]
    assert model["model"] == "yield" and model["versions"] == [1]
    assert model["published"]["messages"] == len(model["alerts"]) > 0
    assert len(drain(cloud, inbox["alerts-sns"])) == len(model["alerts"])


@pytest.mark.parametrize(("path", "status", "fields"), [
    ("/monitoring/yield?hours=0", 400, {"query.hours"}),  # a 400 names each field by location
    ("/monitoring/yield?hours=abc&bucket=1w", 400, {"query.hours"}),  # the shape (pydantic) first
    ("/monitoring/yield?hours=2&bucket=1w", 400, {"query.bucket"}),
    ("/monitoring/yield?hours=1&bucket=2h", 400, {"query.bucket"}),
    ("/monitoring/yield?bucket=10s", 400, {"query.bucket"}),
    ("/monitoring/yield?publish=maybe", 400, {"query.publish"}),
    ("/monitoring/Not_A_Model!", 400, {"path.model"}),
    ("/monitoring/nothing-here", 404, {"model"}),
])
def test_bad_requests_name_the_field(api: ApiServer, served: dict, path: str, status: int, fields: set) -> None:
    got, body = call(api, "GET", path)
    assert got == status, body
    assert {d["field"] for d in body["details"]} == fields


def test_the_route_needs_the_api_key(api: ApiServer) -> None:
    status, _ = call(api, "GET", "/monitoring/yield", key=None)
    assert status == 403
