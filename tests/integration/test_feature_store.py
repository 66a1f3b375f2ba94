"""The feature store end to end through localcloud: the product template's feature functions
in worker processes, the API over real HTTP with API keys, DynamoDB and S3 in moto, and the
batch loader triggered by a real S3 put (moto's notification, routed to the local runtime).

Every test uses its own entity ids, so that the tests share one stack (one LocalCloud per
process) without seeing each other's rows.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from localcloud.apigw import ApiServer
from localcloud.cloud import LocalCloud
from localcloud.template import Stack, load_stack
from mlops.features.definitions import Field, FeatureView
from mlops.features.registry_store import RegistryStore
from mlops.features.yield_example import device_parametrics, tester_health

ROOT = Path(__file__).resolve().parents[2]


class LogSink:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, function_id: str, line: str) -> None:
        with self._lock:
            self.lines.append((function_id, line))

    def of(self, function_id: str) -> list[str]:
        with self._lock:
            return [line for fid, line in self.lines if fid == function_id]


@dataclass
class Env:
    cloud: LocalCloud
    api: ApiServer
    stack: Stack
    key: str
    sink: LogSink

    @property
    def bucket(self) -> str:
        return self.stack.buckets["DataBucket"].name

    def table(self, logical_id: str) -> str:
        return self.stack.tables[logical_id].name

    def call(self, method: str, path: str, body: Any = None, headers: dict | None = None,
             raw: bytes | None = None, key: bool = True) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.api.port, timeout=120)
        try:
            sent = {"x-api-key": self.key} if key else {}
            sent.update(headers or {})
            data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
            conn.request(method, path, body=data, headers=sent)
            response = conn.getresponse()
            text = response.read()
            return response.status, json.loads(text) if text else None
        finally:
            conn.close()

    def post(self, body: Any, **kwargs: Any) -> tuple[int, Any]:
        return self.call("POST", "/features", body, **kwargs)

    def get(self, path: str) -> tuple[int, Any]:
        return self.call("GET", path)

    def objects(self, prefix: str = "") -> dict[str, str]:
        s3 = self.cloud.client("s3")
        out = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            out.update({o["Key"]: o["ETag"] for o in page.get("Contents", [])})
        return out

    def scan(self, logical_id: str) -> list[dict]:
        return self.cloud.client("dynamodb").scan(TableName=self.table(logical_id), ConsistentRead=True)["Items"]

    def snapshot(self) -> tuple:
        """Everything the feature store keeps: the bucket, the online table, the registry."""
        def items(logical_id: str) -> list[str]:
            return sorted(json.dumps(i, sort_keys=True) for i in self.scan(logical_id))
        return self.objects(), items("FeaturesTable"), items("RegistryTable")

    def online_item(self, entity_key: str, view: str) -> dict | None:
        return self.cloud.client("dynamodb").get_item(
            TableName=self.table("FeaturesTable"), ConsistentRead=True,
            Key={"entity_key": {"S": entity_key}, "view": {"S": view}},
        ).get("Item")

    def offline_rows(self, view: str, **match: Any) -> list[dict]:
        s3 = self.cloud.client("s3")
        rows = []
        for key in sorted(self.objects(f"features/view={view}/")):
            body = s3.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode()
            rows += [r for r in map(json.loads, body.splitlines()) if all(r.get(k) == v for k, v in match.items())]
        return rows

    def parts_with(self, view: str, entity: str) -> int:
        s3 = self.cloud.client("s3")
        return sum(1 for key in self.objects(f"features/view={view}/")
                   if f'"{entity}"' in s3.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode())

    def state(self, view: str) -> dict:
        item = self.cloud.client("dynamodb").get_item(
            TableName=self.table("RegistryTable"), ConsistentRead=True,
            Key={"pk": {"S": "fs#catalog"}, "sk": {"S": f"state#{view}"}}).get("Item") or {}
        return {k: int(v["N"]) for k, v in item.items() if "N" in v}


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    stack = load_stack(ROOT / "template.yaml")
    keys = {logical_id: f"local-{logical_id.lower()}-0123456789abcdef" for logical_id in stack.api_keys}
    sink = LogSink()
    with LocalCloud(stack, api_keys=keys, log_sink=sink) as cloud:
        with ApiServer(cloud.runtime, stack, keys, port=0, quiet=True) as api:
            yield Env(cloud, api, stack, keys["AdminApiKey"], sink)  # POST /features is an admin route


def now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def health(tester: str, at: datetime, contact: float = 1.0, **extra: Any) -> dict:
    return {"tester_id": tester, "event_timestamp": iso(at), "contact_res_ohm": contact, "calibration_age_h": 5.0,
            "alarms_24h": 0, "status": "ok", "in_calibration": False, **extra}


def micros(moment: datetime) -> int:
    return round(moment.timestamp() * 1_000_000)


# ------------------------------------------------------------------------------------ ingest


def test_ingestion_writes_offline_partitions_online_items_and_statistics(env: Env) -> None:
    t = now() - timedelta(minutes=1)
    status, body = env.post({"view": "tester_health", "rows": [health("IT-A1", t, 1.5), health("IT-A2", t, 2.5)]})
    assert status == 200, body
    assert (body["accepted"], body["rejected"], body["online"]["written"]) == (2, [], 2)
    day = t.date().isoformat()
    assert body["offline"] == {"rows": 2, "partitions": [f"date={day}"]} and body["stats_days"] == [day]
    assert [r["contact_res_ohm"] for r in env.offline_rows("tester_health", tester_id="IT-A2")] == [2.5]
    assert any(k.startswith(f"features/view=tester_health/date={day}/part-") for k in env.objects("features/"))
    assert any(k.startswith(f"stats/view=tester_health/date={day}/batch-") for k in env.objects("stats/"))
    item = env.online_item("tester_id=IT-A1", "tester_health")
    assert int(item["event_ts"]["N"]) == micros(t)
    assert int(item["expires_at"]["N"]) == int((t + tester_health.ttl).timestamp()) + 1  # seconds, rounded up
    status, answer = env.get("/features/IT-A1?views=tester_health")
    assert status == 200
    view = answer["views"]["tester_health"]
    assert view["status"] == "ok" and view["values"]["contact_res_ohm"] == 1.5
    assert view["event_timestamp"] == iso(t) and 55 < view["freshness_seconds"] < 600


def test_a_late_row_never_overwrites_a_newer_one(env: Env) -> None:
    t = now()
    assert env.post({"view": "tester_health", "rows": [health("IT-L1", t - timedelta(minutes=1), 2.0)]})[0] == 200
    status, body = env.post({"view": "tester_health", "rows": [health("IT-L1", t - timedelta(minutes=10), 9.0)]})
    assert status == 200 and body["online"] == {"rows": 1, "written": 0, "stale": 1, "expired": 0}
    assert env.get("/features/IT-L1?views=tester_health")[1]["views"]["tester_health"]["values"]["contact_res_ohm"] == 2.0
    # the offline store keeps both (append-only): the late row is history, not the current value
    assert sorted(r["contact_res_ohm"] for r in env.offline_rows("tester_health", tester_id="IT-L1")) == [2.0, 9.0]


def test_expiry_is_flagged_at_read_time_before_dynamodb_deletes_anything(env: Env) -> None:
    ttl = tester_health.ttl
    t = now() - ttl + timedelta(seconds=3)  # expires three seconds from now
    status, body = env.post({"view": "tester_health", "rows": [health("IT-X1", t, 4.0)]})
    assert status == 200 and body["online"]["written"] == 1
    assert env.get("/features/IT-X1?views=tester_health")[1]["views"]["tester_health"]["status"] == "ok"
    time.sleep(max(0.0, (t + ttl - now()).total_seconds()) + 0.3)
    view = env.get("/features/IT-X1?views=tester_health")[1]["views"]["tester_health"]
    assert view["status"] == "expired" and set(view["values"].values()) == {None}
    assert view["event_timestamp"] == iso(t) and view["freshness_seconds"] > ttl.total_seconds()
    item = env.online_item("tester_id=IT-X1", "tester_health")  # still stored: the read decided
    assert item is not None and json.loads(item["values"]["S"])["contact_res_ohm"] == 4.0


@pytest.mark.parametrize(("request_body", "code", "detail"), [
    ({"view": "humidity", "rows": [{}]}, "unknown_view", {"field": "body.view"}),
    ({"view": "tester_health", "rows": [{"tester_id": "IT-B1", "event_timestamp": "2024-05-01T00:00:00Z",
                                         "humidity": 3}]}, "invalid_rows", {"row": 0, "field": "humidity",
                                                                            "problem": "unknown feature"}),
    ({"view": "tester_health", "rows": [{"tester_id": "IT-B1", "event_timestamp": "2024-05-01T00:00:00Z",
                                         "alarms_24h": 1.5}]}, "invalid_rows",
     {"row": 0, "field": "alarms_24h", "problem": "expected int, got float"}),
    ({"view": "tester_health", "rows": [{"event_timestamp": "2024-05-01T00:00:00Z"}]}, "invalid_rows",
     {"row": 0, "field": "tester_id", "problem": "missing entity key"}),
    ({"view": "tester_health", "rows": [{"tester_id": "IT-B1", "event_timestamp": "2999-01-01T00:00:00Z"}]},
     "invalid_rows", {"row": 0, "field": "event_timestamp"}),
    ({"view": "tester_health", "rows": []}, "invalid_request",  # the IngestBody model: named by location
     {"field": "body.rows", "problem": "List should have at least 1 item after validation, not 0"}),
    ({"rows": [{}]}, "invalid_request", {"field": "body.view", "problem": "required"}),
])
def test_bad_input_is_a_400_with_field_level_errors_and_changes_nothing(
        env: Env, request_body: dict, code: str, detail: dict) -> None:
    before = env.snapshot()
    status, body = env.post(request_body)
    assert status == 400 and body["error"] == code and body["message"]
    assert any(detail.items() <= d.items() for d in body["details"]), body["details"]
    assert all("field" in d and "problem" in d for d in body["details"])
    if detail.get("field") == "event_timestamp":
        assert "clock skew" in body["details"][0]["problem"]
    assert env.snapshot() == before


def test_a_body_that_is_not_json_is_a_400(env: Env) -> None:
    before = env.snapshot()
    status, body = env.post(None, raw=b"{not json", headers={"Content-Type": "application/json"})
    assert status == 400 and body["error"] == "invalid_request"
    assert body["details"] == [{"field": "body", "problem": "not valid JSON"}]
    assert env.snapshot() == before


def test_a_bad_row_rejects_only_that_row_unless_all_or_nothing(env: Env) -> None:
    t = now() - timedelta(minutes=2)
    rows = [health("IT-P1", t), health("IT-P2", t, alarms_24h="many"), health("IT-P3", t, status="on fire")]
    before = env.snapshot()
    status, body = env.post({"view": "tester_health", "rows": rows, "all_or_nothing": True})
    assert status == 400 and body["error"] == "batch_rejected"
    assert {(d["row"], d["field"]) for d in body["details"]} == {(1, "alarms_24h"), (2, "status")}
    assert env.snapshot() == before  # the good row was not stored either
    status, body = env.post({"view": "tester_health", "rows": rows})
    assert status == 207 and body["accepted"] == 1
    assert body["rejected"] == [
        {"row": 1, "errors": [{"field": "alarms_24h", "problem": "expected int, got str"}]},
        {"row": 2, "errors": [{"field": "status", "problem": "not one of the allowed values ['degraded', 'down', 'ok']"}]},
    ]
    assert env.get("/features/IT-P1?views=tester_health")[1]["views"]["tester_health"]["status"] == "ok"
    assert env.online_item("tester_id=IT-P2", "tester_health") is None
    assert env.offline_rows("tester_health", tester_id="IT-P3") == []


# ------------------------------------------------------------------------------ idempotency


def test_a_retry_with_the_same_key_gets_the_same_answer_and_is_applied_once(env: Env) -> None:
    request = {"view": "tester_health", "rows": [health("IT-I1", now() - timedelta(minutes=3)),
                                                 health("IT-I2", now() - timedelta(minutes=3), alarms_24h="x")]}
    rows_before = env.state("tester_health").get("rows_ingested", 0)
    first = env.post(request, headers={"Idempotency-Key": "it-retry-1"})
    second = env.post(request, headers={"Idempotency-Key": "it-retry-1"})
    assert first[0] == second[0] == 207 and first[1] == second[1]
    assert env.parts_with("tester_health", "IT-I1") == 1
    assert env.state("tester_health")["rows_ingested"] == rows_before + 1
    # the same key with another body is refused, and applies nothing
    other = {"view": "tester_health", "rows": [health("IT-I3", now())]}
    status, body = env.post(other, headers={"Idempotency-Key": "it-retry-1"})
    assert status == 422 and body["error"] == "idempotency_key_reused"
    assert env.offline_rows("tester_health", tester_id="IT-I3") == []
    # without a key a retry is a new request, but the same rows are the same data: their
    # content-addressed part is rewritten, not added (mlops.features.offline_store)
    assert env.post(request)[0] == 207 and env.parts_with("tester_health", "IT-I1") == 1
    assert env.state("tester_health")["rows_ingested"] == rows_before + 2  # requests are still counted


def test_concurrent_duplicates_are_applied_once(env: Env) -> None:
    request = {"view": "tester_health", "rows": [health("IT-C1", now() - timedelta(minutes=1))]}
    answers: list[tuple[int, Any]] = []
    lock = threading.Lock()

    def send() -> None:
        answer = env.post(request, headers={"Idempotency-Key": "it-concurrent-1"})
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(status for status, _ in answers)
    assert set(statuses) <= {200, 409} and 200 in statuses, answers
    assert len({json.dumps(body, sort_keys=True) for status, body in answers if status == 200}) == 1
    assert all(body["error"] == "request_in_progress" for status, body in answers if status == 409)
    assert env.parts_with("tester_health", "IT-C1") == 1
    # once done, a retry replays the answer
    assert env.post(request, headers={"Idempotency-Key": "it-concurrent-1"})[0] == 200
    assert env.parts_with("tester_health", "IT-C1") == 1


# ----------------------------------------------------------------------------------- lookup


def test_lookup_reads_several_views_and_computes_on_demand_features(env: Env) -> None:
    t = now() - timedelta(minutes=5)
    device = {"device_id": "IT-D1", "event_timestamp": iso(t), "vdd": 1.2, "idd": 400.0, "p042": 0.25}
    assert env.post({"view": "device_parametrics", "rows": [device]})[0] == 200
    assert env.post({"view": "tester_health", "rows": [health("IT-T1", t, 3.5)]})[0] == 200
    status, answer = env.get("/features/IT-D1?views=device_parametrics,tester_health,vdd_idd_ratio"
                             "&tester_id=IT-T1&vdd_setpoint=1.0")
    assert status == 200
    assert answer["entity"] == {"device_id": "IT-D1", "tester_id": "IT-T1"}
    params = answer["views"]["device_parametrics"]
    assert params["values"]["p042"] == 0.25 and params["values"]["p041"] is None
    assert len(params["values"]) == len(device_parametrics.feature_names)
    assert answer["views"]["tester_health"]["values"]["contact_res_ohm"] == 3.5
    ratio = answer["views"]["vdd_idd_ratio"]
    assert ratio["status"] == "computed" and ratio["missing_inputs"] == []
    assert ratio["values"]["vdd_idd_ratio"] == pytest.approx(0.003)
    assert ratio["values"]["vdd_margin"] == pytest.approx(0.2)
    status, unknown = env.get("/features/IT-NOBODY?views=tester_health")
    assert status == 200 and unknown["views"]["tester_health"]["status"] == "missing"


def test_lookup_bad_requests(env: Env) -> None:
    status, body = env.get("/features/IT-D1")
    assert status == 400 and body["details"] == [{"field": "query.views", "problem": "required"}]
    status, body = env.get("/features/IT-D1?views=tester_health,nope")
    assert status == 400 and body["error"] == "unknown_view" and body["details"][0]["field"] == "query.views"
    assert env.call("GET", "/features/IT-D1?views=tester_health", key=False)[0] == 403


def test_feature_views_lists_the_registry_with_versions_and_freshness(env: Env) -> None:
    env.post({"view": "tester_health", "rows": [health("IT-V1", now() - timedelta(minutes=1))]})
    status, listing = env.get("/feature-views")
    assert status == 200
    views = {v["name"]: v for v in listing["feature_views"]}
    assert set(views) == {"device_parametrics", "tester_health", "device_outcomes"}
    health_view = views["tester_health"]
    assert health_view["version"] == 1 and len(health_view["versions"]) == 1
    assert health_view["join_keys"] == ["tester_id"] and health_view["ttl_seconds"] == 86400
    assert {"name": "alarms_24h", "dtype": "int"} in health_view["features"]
    assert health_view["freshness"]["stale"] is False and health_view["freshness"]["freshness_seconds"] < 600
    assert [v["name"] for v in listing["on_demand_feature_views"]] == ["vdd_idd_ratio"]
    assert {e["name"] for e in listing["entities"]} >= {"device", "tester"}


# ------------------------------------------------------------------------------ the loader


def test_a_file_dropped_in_s3_is_loaded_by_the_loader(env: Env) -> None:
    s3 = env.cloud.client("s3")
    t = iso(now() - timedelta(minutes=4))
    csv = (f"tester_id,event_timestamp,contact_res_ohm,alarms_24h,status\n"
           f"IT-F1,{t},1.25,2,ok\nIT-F2,{t},oops,1,ok\nIT-F3,{t},0.5,,down\n")
    s3.put_object(Bucket=env.bucket, Key="incoming/tester_health/batch 1.csv", Body=csv.encode())
    [run] = env.cloud.wait_async()
    assert run.function_error is None, run.payload
    [summary] = run.json()["files"]
    assert summary["status"] == "loaded" and (summary["rows"], summary["accepted"]) == (3, 2)
    assert summary["rejected"] == [{"row": 1, "field": "contact_res_ohm", "problem": "expected float, got str"}]
    report = json.loads(s3.get_object(Bucket=env.bucket, Key="reports/feature-loader/incoming/tester_health/batch 1.csv.json")
                        ["Body"].read())
    assert report["rejected"] == summary["rejected"] and report["view"] == "tester_health"
    values = env.get("/features/IT-F3?views=tester_health")[1]["views"]["tester_health"]["values"]
    assert values == {"contact_res_ohm": 0.5, "calibration_age_h": None, "alarms_24h": None, "status": "down",
                      "in_calibration": None}
    sources = {s3.head_object(Bucket=env.bucket, Key=k)["Metadata"].get("source")
               for k in env.objects("features/view=tester_health/")}
    assert f"s3://{env.bucket}/incoming/tester_health/batch 1.csv" in sources
    # a duplicate delivery of the same event is not loaded twice
    event = {"Records": [{"s3": {"bucket": {"name": env.bucket}, "object": {
        "key": "incoming/tester_health/batch+1.csv", "eTag": s3.head_object(
            Bucket=env.bucket, Key="incoming/tester_health/batch 1.csv")["ETag"].strip('"')}}}]}
    assert env.cloud.invoke("FeatureLoaderFunction", event)["files"][0] == summary
    assert env.parts_with("tester_health", "IT-F1") == 1


def test_json_lines_with_a_broken_line_and_files_for_unknown_views(env: Env) -> None:
    s3 = env.cloud.client("s3")
    t = iso(now() - timedelta(minutes=4))
    lines = json.dumps(health("IT-J1", now() - timedelta(minutes=4))) + "\n{broken\n"
    s3.put_object(Bucket=env.bucket, Key="incoming/tester_health/j.jsonl", Body=lines.encode())
    s3.put_object(Bucket=env.bucket, Key="incoming/humidity/h.csv", Body=f"sensor,event_timestamp\nS1,{t}\n".encode())
    s3.put_object(Bucket=env.bucket, Key="elsewhere/tester_health/k.jsonl", Body=lines.encode())  # not incoming/
    runs = sorted((r.json()["files"][0] for r in env.cloud.wait_async()), key=lambda s: s["key"])
    assert [s["key"] for s in runs] == ["incoming/humidity/h.csv", "incoming/tester_health/j.jsonl"]
    unknown, jsonl = runs
    assert unknown["status"] == "rejected" and unknown["error"]["error"] == "unknown_view"
    assert not env.objects("features/view=humidity/")
    assert jsonl["accepted"] == 1 and jsonl["rejected"][0]["row"] == 1
    assert jsonl["rejected"][0]["problem"].startswith("not valid JSON")


# ---------------------------------------------------------------------- materialization


def test_materialize_restores_the_online_store_from_the_offline_store(env: Env) -> None:
    t = now() - timedelta(minutes=2)
    env.post({"view": "tester_health", "rows": [health("IT-M1", t, 6.5)]})
    env.cloud.client("dynamodb").delete_item(TableName=env.table("FeaturesTable"),
                                             Key={"entity_key": {"S": "tester_id=IT-M1"}, "view": {"S": "tester_health"}})
    assert env.get("/features/IT-M1?views=tester_health")[1]["views"]["tester_health"]["status"] == "missing"
    answer = env.cloud.invoke("FeatureMaterializeFunction", {
        "start": iso(t - timedelta(seconds=1)), "end": iso(t + timedelta(seconds=1)), "views": ["tester_health"]})
    [done] = answer["materialized"]
    assert done["view"] == "tester_health" and done["rows"] == 1 and done["online"]["written"] == 1
    assert env.get("/features/IT-M1?views=tester_health")[1]["views"]["tester_health"]["values"]["contact_res_ohm"] == 6.5


def test_materialize_incremental_and_the_freshness_alert(env: Env) -> None:
    end = iso(now())
    first = env.cloud.invoke("FeatureMaterializeFunction", {"end": end, "freshness_thresholds": {"tester_health": 86400}})
    assert {m["view"]: m["status"] for m in first["materialized"]} == {
        "device_parametrics": "materialized", "tester_health": "materialized", "device_outcomes": "materialized"}
    assert "tester_health" not in first["stale"]
    again = env.cloud.invoke("FeatureMaterializeFunction", {"end": end, "freshness_thresholds": {"tester_health": 0.5}})
    assert {m["status"] for m in again["materialized"]} == {"up_to_date"}
    # the newest tester_health row is minutes old: over a half-second threshold it is stale
    assert "tester_health" in again["stale"]
    status = next(f for f in again["freshness"] if f["view"] == "tester_health")
    assert status["stale"] and status["threshold_seconds"] == 0.5 and status["freshness_seconds"] > 0.5
    assert any("feature view is stale" in line and "tester_health" in line
               for line in env.sink.of("FeatureMaterializeFunction"))
    # an EventBridge schedule's event materializes up to its scheduled time
    later = iso(now() + timedelta(minutes=1))
    scheduled = env.cloud.invoke("FeatureMaterializeFunction", {
        "source": "aws.events", "detail-type": "Scheduled Event", "time": later, "detail": {}})
    assert {m["end"] for m in scheduled["materialized"]} == {later}
    assert {m["start"] for m in scheduled["materialized"]} == {end}


# ------------------------------------------------------------------------- registry versions


def test_a_newer_schema_is_a_new_version_that_an_older_deployment_does_not_overwrite(env: Env) -> None:
    """Another deployment registers tester_health with a new field: version 2. This stack's
    functions still run the version-1 code; applying it does not flip the registry back."""
    data = tester_health.to_dict()
    data["schema"] = [*data["schema"], Field("humidity_pct", "float").to_dict()]
    newer = FeatureView.from_dict(data)
    registry = RegistryStore(env.table("RegistryTable"), client=env.cloud.client("dynamodb"))
    [result] = registry.apply([newer], now=now())
    assert (result.status, result.version, result.changes["added"]) == ("updated", 2, ["humidity_pct"])
    assert registry.apply([tester_health], now=now())[0].status == "outdated"
    views = {v["name"]: v for v in env.get("/feature-views")[1]["feature_views"]}
    assert views["tester_health"]["version"] == 2
    assert [v["version"] for v in views["tester_health"]["versions"]] == [1, 2]
    assert {"name": "humidity_pct", "dtype": "float"} in views["tester_health"]["features"]
    # the ingest function keeps working with its (older) code
    assert env.post({"view": "tester_health", "rows": [health("IT-R1", now() - timedelta(minutes=1))]})[0] == 200
    assert registry.get("feature_view", "tester_health").version == 2
