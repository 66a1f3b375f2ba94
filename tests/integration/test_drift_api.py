"""The drift check end to end through `LocalCloud` + `ApiServer` over real HTTP: a model trained
by TrainFunction with its baseline stored as training stores it, predictions logged by
``POST /predict/batch`` (first like the training data, then shifted), feedback labels, then
``GET /drift/yield`` and the hourly schedule's invocation: drifted features flagged, JSON and
PNG reports in S3, detector state carried from one invocation to the next, the retraining
decision, EMF metrics, and bad requests.

One cloud for the module; tests run in file order and build on each other's state.
"""

from __future__ import annotations

import http.client
import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from yield_models import START, STORED, device_row, fails, training_event
from stack_env import FunctionLogs, product_cloud, table

from localcloud.apigw import ApiServer
from localcloud.cloud import LocalCloud

ROOT = Path(__file__).resolve().parents[2]
KEY = "drift-test-key-0123456789"
ADMIN = "drift-admin-key-0123456789"
FEATURES = ["vdd", "idd", "leakage_na", "fmax_mhz", "p000", "vdd_idd_ratio", "vdd_margin"]


@pytest.fixture(scope="module")
def logs() -> FunctionLogs:
    return FunctionLogs()


@pytest.fixture(scope="module")
def cloud(logs: FunctionLogs) -> Iterator[LocalCloud]:
    overrides = {"InferenceFunction": {"DEPLOYMENT_CACHE_SECONDS": "0", "MODEL_RETRY_SECONDS": "0"},
                 # labels in this test come at once: feed every labelled prediction to the detectors
                 "DriftCheckFunction": {"LABEL_DELAY_HOURS": "0"}}
    with product_cloud({"ApiKey": KEY, "AdminApiKey": ADMIN}, log_sink=logs, env_vars=overrides) as c:
        yield c


class Answer:
    def __init__(self, status: int, body: bytes) -> None:
        self.status, self.raw = status, body

    @property
    def body(self) -> Any:
        return json.loads(self.raw)

    def fields(self) -> dict[str, str]:
        return {d["field"]: d["problem"] for d in self.body["details"]}


def call(api: ApiServer, method: str, path: str, body: Any = None, *, key: str = KEY) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=120)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body).encode(),
                     headers={"Content-Type": "application/json", "x-api-key": key})
        resp = conn.getresponse()
        return Answer(resp.status, resp.read())
    finally:
        conn.close()


def artifacts(cloud: LocalCloud) -> str:
    return cloud.stack.buckets["ArtifactsBucket"].name


def schedule_input(cloud: LocalCloud) -> dict:
    [hourly] = [s for s in cloud.stack.schedules if s.target_id == "DriftCheckFunction"]
    assert hourly.expression == "rate(1 hour)"
    return json.loads(hourly.input)


def invoke_scheduled(cloud: LocalCloud) -> dict:
    answer = cloud.runtime.invoke("DriftCheckFunction", json.dumps(schedule_input(cloud)))
    assert answer.function_error is None, answer.payload[:2000]
    return answer.json()


def detector_items(cloud: LocalCloud) -> dict[str, dict]:
    items = cloud.client("dynamodb").query(
        TableName=table(cloud, "DeploymentsTable"), KeyConditionExpression="model = :m AND begins_with(sk, :d)",
        ExpressionAttributeValues={":m": {"S": "yield"}, ":d": {"S": "DETECTOR#"}})["Items"]
    return {i["sk"]["S"]: i for i in items}


def predict_batch(api: ApiServer, seed: int, n: int, *, leakage_shift: float = 0.0, fmax_shift: float = 0.0
                  ) -> list[tuple[dict, dict]]:
    """n rows like the training data (optionally shifted): [(the row, its prediction)]."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        row = device_row(rng, f"DRIFT-{seed}-{i}", START)
        row["leakage_na"] = round(row["leakage_na"] + leakage_shift, 2)
        row["fmax_mhz"] = round(row["fmax_mhz"] + fmax_shift, 1)
        rows.append(row)
    answer = call(api, "POST", "/predict/batch", {"model": "yield", "rows": [
        {"features": {k: r[k] for k in STORED}, "request": {"vdd_setpoint": 1.2}} for r in rows]})
    assert answer.status == 200, answer.raw
    return list(zip(rows, answer.body["predictions"]))


def one(value: Any) -> float:
    """An EMF metric's single value (Powertools may write it as a one-element list)."""
    if isinstance(value, list):
        assert len(value) == 1, value
        return value[0]
    return value


def give_feedback(cloud: LocalCloud, labelled: list[tuple[str, int]]) -> None:
    from mlops.models.prediction_log import PredictionLog

    log = PredictionLog(table(cloud, "PredictionsTable"), dynamodb=cloud.client("dynamodb"))
    for request_id, label in labelled:
        log.record_feedback(request_id, label, at="2026-01-05T12:00:00.000000Z", by="test")


# ------------------------------------------------------------------------------ before a model


def test_an_empty_stack_answers_not_found_on_both_triggers(cloud, api) -> None:
    answer = call(api, "GET", "/drift/yield", key=ADMIN)
    assert answer.status == 404 and answer.body["error"] == "model_not_found"
    assert answer.fields() == {"model": "not found"}
    scheduled = invoke_scheduled(cloud)
    assert scheduled["status"] == 404 and scheduled["error"] == "model_not_found"
    # the query's shape first (pydantic), then the domain checks; each field named by location
    bad = call(api, "GET", "/drift/yield?window_hours=0&methods=vdd:bogus&colour=red", key=ADMIN)
    assert bad.status == 400 and bad.fields() == {"query.window_hours": "Input should be greater than 0"}
    bad = call(api, "GET", "/drift/yield?window_hours=800&methods=vdd:bogus&colour=red", key=ADMIN)
    assert bad.status == 400 and bad.fields() == {
        "query.colour": "unknown field", "query.window_hours": "expected a number of hours in (0, 720]",
        "query.methods.vdd": "unknown method 'bogus'; expected one of chisquare, jensenshannon, kl, ks, psi, wasserstein"}


@pytest.fixture(scope="module")
def v1(cloud: LocalCloud, api: ApiServer) -> dict:
    """Version 1 of "yield", trained by TrainFunction, promoted to champion; no baseline yet."""
    event = training_event(seed=0)
    answer = cloud.runtime.invoke("TrainFunction", json.dumps(event))
    assert answer.function_error is None, answer.payload[:2000]
    trained = answer.json()
    moved = call(api, "POST", "/models/yield/aliases/champion", {"version": 1, "reason": "drift tests"}, key=ADMIN)
    assert moved.status == 200, moved.raw
    cloud.client("s3").delete_object(Bucket=artifacts(cloud), Key="models/yield/versions/1/baseline.json")
    return {"event": event, **trained}


def test_a_champion_without_a_baseline_is_named(cloud, api, v1) -> None:
    answer = call(api, "GET", "/drift/yield", key=ADMIN)
    assert answer.status == 404 and answer.body["error"] == "baseline_not_found"
    assert answer.fields() == {"version": "not found"}
    unknown = call(api, "GET", "/drift/yield?version=9", key=ADMIN)
    assert unknown.status == 404 and unknown.body["error"] == "version_not_found"


@pytest.fixture(scope="module")
def baseline(cloud: LocalCloud, v1: dict) -> dict:
    """The baseline of version 1, built and stored as the training job stores it."""
    from mlops.drift.baseline_store import build_and_save
    from mlops.models.training_job import parse_training_request, prepare

    data = prepare(parse_training_request(v1["event"]))
    assert list(data.features) == FEATURES == v1["features"]
    stored = build_and_save("yield", 1, data.features, bucket=artifacts(cloud), s3=cloud.client("s3"))
    return stored.to_dict()


# ------------------------------------------------------------------------------ checks


def test_inputs_like_the_training_data_do_not_drift(cloud, api, v1, baseline, logs) -> None:
    scored = predict_batch(api, seed=11, n=100)
    rng = random.Random(5)
    labels = [(p["request_id"], fails(rng, row)) for row, p in scored[:60]]
    give_feedback(cloud, labels)

    answer = call(api, "GET", "/drift/yield?window_hours=1", key=ADMIN)
    assert answer.status == 200, answer.raw
    body = answer.body
    assert (body["model"], body["version"], body["champion"], body["trigger"]) == ("yield", 1, 1, "api")
    assert body["rows"] == 100 and body["window"]["hours"] == 1.0
    assert set(body["features"]) == set(FEATURES) and body["skipped"] == {}
    assert body["drifted_features"] == [] and body["dataset_drift"] is False and body["drift_share"] == 0.0
    for name, f in body["features"].items():
        assert f["method"] == "ks" and f["n_current"] == 100, name  # 400 reference rows: a test, not a distance
        assert f["p_value"] == f["score"] and f["p_value"] > 0.01 and f["drifted"] is False
    correct = sum(p["label"] == label for (_, p), (_, label) in zip(scored, labels))
    concept = body["concept"]
    assert concept["labelled"] == 60 and concept["accuracy"] == pytest.approx(correct / 60)
    assert concept["baseline_accuracy"] == pytest.approx(v1["metrics"]["accuracy"])
    assert concept["alarms"] == []
    assert {n: (d["n_seen"], d["applied"], d["version"]) for n, d in concept["detectors"].items()} == {
        "DDM": (60, 60, 1), "EDDM": (60, 60, 1), "ADWIN": (60, 60, 1)}
    assert body["retraining"]["retrain"] is False and body["retraining"]["started"] is None, body["retraining"]

    report = body["report"]
    assert report["bucket"] == artifacts(cloud) and report["json_key"].startswith("reports/drift/yield/")
    s3 = cloud.client("s3")
    document = json.loads(s3.get_object(Bucket=report["bucket"], Key=report["json_key"])["Body"].read())
    assert document["rows"] == 100 and document["drift"]["share"] == 0.0
    assert {n: f["score"] for n, f in document["drift"]["features"].items()} == {
        n: f["score"] for n, f in body["features"].items()}
    png = s3.get_object(Bucket=report["bucket"], Key=report["png_key"])
    assert png["ContentType"] == "image/png" and png["Body"].read().startswith(b"\x89PNG\r\n\x1a\n")

    items = detector_items(cloud)
    assert set(items) == {"DETECTOR#DDM#errors-v1", "DETECTOR#EDDM#errors-v1", "DETECTOR#ADWIN#errors-v1"}
    assert all(i["version"] == {"N": "1"} and i["n_seen"] == {"N": "60"} for i in items.values())

    [emf] = [d for d in logs.emf("DriftCheckFunction") if d.get("model") == "yield"][-1:]
    directive = emf["_aws"]["CloudWatchMetrics"][0]
    assert {m["Name"] for m in directive["Metrics"]} >= {"DriftShare", "MaxPSI", "FeaturesDrifted", "DetectorAlarms"}
    assert emf["version"] == "1" and one(emf["DriftShare"]) == 0.0 and one(emf["FeaturesDrifted"]) == 0.0
    assert one(emf["MaxPSI"]) == pytest.approx(max(f["psi"] for f in body["features"].values()))


def test_shifted_inputs_and_wrong_labels_flag_drift_and_the_decision(cloud, api, v1, baseline, logs) -> None:
    from mlops.rollout.lock import RolloutLock

    # a retraining run already holds the model's lease: the check decides, the launcher refuses
    RolloutLock(table(cloud, "DeploymentsTable"), dynamodb=cloud.client("dynamodb")).acquire(
        "yield", "retraining", "test-run", now=time.time(), ttl_s=3600)
    scored = predict_batch(api, seed=12, n=100, leakage_shift=60.0, fmax_shift=-250.0)
    give_feedback(cloud, [(p["request_id"], 1 - p["label"]) for _, p in scored[:50]])  # all wrong

    answer = call(api, "GET", "/drift/yield?window_hours=1", key=ADMIN)
    assert answer.status == 200, answer.raw
    body = answer.body
    assert body["rows"] == 200
    assert body["drifted_features"] == ["leakage_na", "fmax_mhz"]
    assert body["n_drifted"] == 2 and body["drift_share"] == pytest.approx(2 / 7) and body["dataset_drift"] is False
    for name in ("leakage_na", "fmax_mhz"):
        f = body["features"][name]
        assert f["drifted"] is True and f["p_value"] < 1e-10 and f["psi"] > 0.5
    assert body["worst_feature"] in ("leakage_na", "fmax_mhz")
    assert body["max_psi"] == max(body["features"][n]["psi"] for n in ("leakage_na", "fmax_mhz"))
    # the detectors continued from the first check: 60 + 50 values, the first 60 not fed again
    concept = body["concept"]
    assert {n: (d["n_seen"], d["applied"], d["version"]) for n, d in concept["detectors"].items()} == {
        "DDM": (110, 50, 2), "EDDM": (110, 50, 2), "ADWIN": (110, 50, 2)}
    assert "DDM" in concept["alarms"] and concept["labelled"] == 110
    retraining = body["retraining"]
    assert retraining["retrain"] is True and retraining["reasons"][0] == "drift"
    assert set(retraining["details"]["drift"]["features"]) == {"leakage_na", "fmax_mhz"}
    assert retraining["details"]["drift"]["detectors"] == concept["alarms"]
    assert retraining["started"] is None and "already running" in retraining["not_started"]
    items = detector_items(cloud)
    assert all(i["version"] == {"N": "2"} and i["n_seen"] == {"N": "110"} for i in items.values())
    emf = [d for d in logs.emf("DriftCheckFunction") if d.get("model") == "yield"][-1]
    assert one(emf["FeaturesDrifted"]) == 2.0 and one(emf["DetectorAlarms"]) == float(len(concept["alarms"]))


def test_the_hourly_schedule_runs_the_same_check_and_feeds_nothing_twice(cloud, api, v1, baseline) -> None:
    body = invoke_scheduled(cloud)
    assert body["status"] == 200 and body["trigger"] == "schedule" and body["window"]["hours"] == 24.0
    assert body["rows"] == 200 and body["drifted_features"] == ["leakage_na", "fmax_mhz"]
    assert {n: (d["n_seen"], d["applied"], d["version"]) for n, d in body["concept"]["detectors"].items()} == {
        "DDM": (110, 0, 2), "EDDM": (110, 0, 2), "ADWIN": (110, 0, 2)}
    keys = [o["Key"] for o in cloud.client("s3").list_objects_v2(
        Bucket=artifacts(cloud), Prefix="reports/drift/yield/")["Contents"]]
    assert body["report"]["json_key"] in keys and body["report"]["png_key"] in keys
    assert len(keys) == 6  # three checks, a JSON and a PNG each


def test_method_overrides_and_bad_requests(cloud, api, v1, baseline) -> None:
    answer = call(api, "GET", "/drift/yield?window_hours=1&methods=leakage_na:psi,vdd:wasserstein&version=1", key=ADMIN)
    assert answer.status == 200, answer.raw
    leakage, vdd = answer.body["features"]["leakage_na"], answer.body["features"]["vdd"]
    assert (leakage["method"], leakage["threshold"], leakage["p_value"]) == ("psi", 0.1, None)
    assert leakage["score"] == leakage["psi"] > 0.5 and leakage["drifted"] is True
    assert (vdd["method"], vdd["threshold"], vdd["p_value"]) == ("wasserstein", 0.1, None)
    bad = call(api, "GET", "/drift/yield?methods=tester:ks,idd:kl", key=ADMIN)
    assert bad.status == 400 and bad.fields() == {"query.methods.tester": "not a feature of version 1's baseline"}
    wrong = call(api, "GET", "/drift/Yield!?window_hours=x", key=ADMIN)
    assert wrong.status == 400 and set(wrong.fields()) == {"query.window_hours"}
    wrong = call(api, "GET", "/drift/Yield!?window_hours=1", key=ADMIN)
    assert wrong.status == 400 and set(wrong.fields()) == {"path.model"}

