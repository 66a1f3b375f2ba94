"""The audit trail end to end through `LocalCloud` + `ApiServer` over real HTTP: GET /audit's
filters and pages, GET /audit/verify on intact chains and on chains tampered with directly in
DynamoDB (a record modified, deleted, two swapped, a hash rewritten), bad query parameters,
the direct invokes (append, archive to the Object Lock bucket), and what the other functions
write there: the model admin's alias moves, refusals and approvals, a training's registration,
and predictions (sample rate 1 here).

One cloud for the module; each test writes to chains of its own (named for it), so tests do
not depend on each other's records.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from stack_env import product_cloud

from localcloud.apigw import ApiServer
from localcloud.cloud import LocalCloud
from mlops.audit.chain import AuditRecord, record_hash
from mlops.audit.events import AuditEvent, alias_entity
from mlops.audit.store import AuditStore, record_from_item, record_item

ROOT = Path(__file__).resolve().parents[2]
KEY = "audit-test-key-0123456789"
ADMIN = "audit-admin-key-0123456789"


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    overrides = {"InferenceFunction": {"AUDIT_PREDICTION_SAMPLE_RATE": "1", "DEPLOYMENT_CACHE_SECONDS": "0"}}
    with product_cloud({"ApiKey": KEY, "AdminApiKey": ADMIN}, env_vars=overrides,
                       log_sink=lambda fid, line: None) as c:
        yield c


class Answer:
    def __init__(self, status: int, body: bytes) -> None:
        self.status, self.raw = status, body

    @property
    def body(self) -> Any:
        return json.loads(self.raw)

    def fields(self) -> dict[str, str]:
        return {d["field"]: d["problem"] for d in self.body["details"]}


def call(api: ApiServer, method: str, path: str, body: Any = None, params: dict | None = None) -> Answer:
    if params:
        path += "?" + urllib.parse.urlencode(params)
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=60)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body).encode(),
                     headers={"Content-Type": "application/json", "x-api-key": ADMIN})  # /audit is an admin route
        resp = conn.getresponse()
        return Answer(resp.status, resp.read())
    finally:
        conn.close()


def table(cloud: LocalCloud) -> str:
    return cloud.stack.tables["AuditTable"].name


def bucket(cloud: LocalCloud) -> str:
    return cloud.stack.buckets["AuditArchiveBucket"].name


def store(cloud: LocalCloud) -> AuditStore:
    return AuditStore(table(cloud), archive_bucket=bucket(cloud), dynamodb=cloud.client("dynamodb"),
                      s3=cloud.client("s3"))


def seed(cloud: LocalCloud, model: str, n: int, *, entity: str | None = None, minute: int = 0) -> list[AuditRecord]:
    s = store(cloud)
    return [s.append(AuditEvent.create("deployment.weights", "seeder", model=model,
                                       entity=entity or f"deployment:{model}", details={"i": i, "percent": 0.5 * i},
                                       at=f"2026-01-05T09:{minute + i:02d}:00Z"))
            for i in range(n)]


def item(cloud: LocalCloud, chain: str, seq: int) -> dict:
    return cloud.client("dynamodb").get_item(TableName=table(cloud), Key={"chain": {"S": chain}, "seq": {"N": str(seq)}},
                                             ConsistentRead=True)["Item"]


def put(cloud: LocalCloud, it: dict) -> None:
    cloud.client("dynamodb").put_item(TableName=table(cloud), Item=it)


def verify(api: ApiServer, chain: str, **params: str) -> dict:
    answer = call(api, "GET", "/audit/verify", params={"chain": chain, **params})
    assert answer.status == 200, answer.raw
    return answer.body


# ----------------------------------------------------------------------------- empty
def test_an_empty_trail_answers_empty_and_intact(api) -> None:
    assert call(api, "GET", "/audit", params={"model": "nothing-here"}).body == {"records": [], "next": None}
    missing = call(api, "GET", "/audit/verify", params={"chain": "model:nothing-here"})
    assert missing.status == 404 and missing.fields() == {"chain": "not found"}


# ----------------------------------------------------------------------------- direct invokes
def test_a_state_machine_step_is_appended_by_direct_invoke(cloud) -> None:
    event = {"action": "retraining.run", "actor": "arn:aws:states:us-east-1:123456789012:execution:r:1",
             "model": "direct", "entity": "run:1", "details": {"reason": "schedule"}, "at": "2026-01-05T03:00:00Z"}
    first = cloud.invoke("AuditFunction", {"record": event})
    second = cloud.invoke("AuditFunction", {"record": {**event, "entity": "run:2"}})
    assert (first["chain"], first["seq"], second["seq"]) == ("model:direct", 1, 2)
    assert second["prev_hash"] == first["hash"]
    assert first["hash"] == record_hash("model:direct", 1, first["prev_hash"],
                                        AuditEvent.from_api(event).content())
    assert record_from_item(item(cloud, "model:direct", 2)).to_api() == second
    bad = cloud.invoke("AuditFunction", {"record": {"action": "Nope", "actor": "", "colour": 1}})
    assert bad["errorType"] == "AuditEventError"
    assert {"record.action", "record.actor", "record.colour"} <= {p.split(":")[0] for p in bad["errorMessage"].split("; ")}
    assert len(list(store(cloud).records("model:direct"))) == 2  # nothing stored for the refused one


# ----------------------------------------------------------------------------- GET /audit
def test_query_filters_by_model_entity_chain_and_time(cloud, api) -> None:
    seed(cloud, "qa", 6, entity="alias:qa/champion")
    seed(cloud, "qa", 3, entity="alias:qa/shadow", minute=30)
    seed(cloud, "qb", 2, entity="alias:qa/champion")  # another model, same entity text
    by_model = call(api, "GET", "/audit", params={"model": "qa"}).body["records"]
    assert len(by_model) == 9 and {r["model"] for r in by_model} == {"qa"}
    assert [r["at"] for r in by_model] == sorted(r["at"] for r in by_model)  # time order
    by_entity = call(api, "GET", "/audit", params={"entity": "alias:qa/champion"}).body["records"]
    assert len(by_entity) == 8 and {r["model"] for r in by_entity} == {"qa", "qb"}
    both = call(api, "GET", "/audit", params={"entity": "alias:qa/champion", "model": "qb"}).body["records"]
    assert [(r["chain"], r["seq"]) for r in both] == [("model:qb", 1), ("model:qb", 2)]
    window = call(api, "GET", "/audit", params={"model": "qa", "from": "2026-01-05T09:02:00Z",
                                               "to": "2026-01-05T10:31:00+01:00"}).body["records"]
    assert [r["details"]["i"] for r in window] == [2, 3, 4, 5, 0, 1]
    chain = call(api, "GET", "/audit", params={"chain": "model:qa", "entity": "alias:qa/shadow"}).body["records"]
    assert [r["seq"] for r in chain] == [7, 8, 9]
    everything = call(api, "GET", "/audit", params={"from": "2026-01-05T09:00:00Z", "to": "2026-01-05T09:00:00Z",
                                                   "limit": "1000"}).body["records"]
    assert {(r["chain"], r["seq"]) for r in everything} >= {("model:qa", 1), ("model:qb", 1)}
    assert all(r["at"] == "2026-01-05T09:00:00.000000Z" for r in everything)


def test_query_pages_with_next_tokens(cloud, api) -> None:
    seed(cloud, "pages", 7)
    seen, token, pages = [], None, 0
    while True:
        params = {"model": "pages", "limit": "3", **({"next": token} if token else {})}
        body = call(api, "GET", "/audit", params=params).body
        seen += [r["seq"] for r in body["records"]]
        pages += 1
        token = body["next"]
        if not token:
            break
    assert seen == [1, 2, 3, 4, 5, 6, 7] and pages == 3


@pytest.mark.parametrize(("params", "field"), [
    ({"limit": "0"}, "limit"), ({"limit": "1001"}, "limit"), ({"limit": "ten"}, "limit"),
    ({"from": "yesterday"}, "from"), ({"to": "2026-13-40"}, "to"),
    ({"from": "2026-01-06T00:00:00Z", "to": "2026-01-05T00:00:00Z"}, "from"),
    ({"model": "Not A Model"}, "model"), ({"chain": "model#yield"}, "chain"), ({"entity": "x" * 300}, "entity"),
    ({"colour": "red"}, "colour"), ({"next": "not-a-token"}, "next"),
])
def test_bad_query_parameters_are_400_naming_the_field(api, params, field) -> None:
    answer = call(api, "GET", "/audit", params=params)
    assert answer.status == 400 and answer.body["error"] == "invalid_request"
    assert f"query.{field}" in answer.fields()  # named by location, whichever check found it


def test_a_token_of_another_query_is_refused(cloud, api) -> None:
    seed(cloud, "tokens", 3)
    token = call(api, "GET", "/audit", params={"model": "tokens", "limit": "1"}).body["next"]
    answer = call(api, "GET", "/audit", params={"entity": "deployment:tokens", "next": token})
    assert answer.status == 400 and "query.next" in answer.fields()


@pytest.mark.parametrize(("params", "field"), [({"chain": "models:x"}, "chain"), ({"archive": "maybe"}, "archive"),
                                              ({"verbose": "1"}, "verbose")])
def test_bad_verify_parameters_are_400_naming_the_field(api, params, field) -> None:
    answer = call(api, "GET", "/audit/verify", params=params)
    assert answer.status == 400 and f"query.{field}" in answer.fields()


# ----------------------------------------------------------------------------- GET /audit/verify
def test_intact_chains_verify(cloud, api) -> None:
    records = seed(cloud, "intact", 5)
    body = verify(api, "model:intact")
    assert body["ok"] is True and body["first_bad"] is None
    assert body["chains"] == [{"chain": "model:intact", "ok": True, "records": 5,
                               "head": {"seq": 5, "hash": records[-1].hash}, "first_bad": None}]


def tampered(api, chain: str) -> dict:
    body = verify(api, chain)
    assert body["ok"] is False
    assert body["first_bad"]["chain"] == chain
    everything = call(api, "GET", "/audit/verify").body  # all chains: this one is reported too
    assert everything["ok"] is False
    assert [c["first_bad"] for c in everything["chains"] if c["chain"] == chain] == [
        {k: v for k, v in body["first_bad"].items() if k != "chain"}]
    return body["first_bad"]


def test_a_modified_record_is_named(cloud, api) -> None:
    seed(cloud, "t-modify", 6)
    it = item(cloud, "model:t-modify", 3)
    it["actor"] = {"S": "mallory"}
    put(cloud, it)
    assert tampered(api, "model:t-modify") == {"chain": "model:t-modify", "seq": 3, "kind": "modified",
                                               "detail": "the record's content does not match its hash"}


def test_modified_details_are_named(cloud, api) -> None:
    seed(cloud, "t-details", 6)
    it = item(cloud, "model:t-details", 2)
    it["details"] = {"S": it["details"]["S"].replace('"percent":0.5', '"percent":50')}
    put(cloud, it)
    assert (tampered(api, "model:t-details")["seq"], tampered(api, "model:t-details")["kind"]) == (2, "modified")


def test_a_deleted_record_is_named(cloud, api) -> None:
    seed(cloud, "t-delete", 6)
    cloud.client("dynamodb").delete_item(TableName=table(cloud), Key={"chain": {"S": "model:t-delete"}, "seq": {"N": "4"}})
    bad = tampered(api, "model:t-delete")
    assert (bad["seq"], bad["kind"], bad["detail"]) == (4, "missing", "record 4 is missing")


def test_two_swapped_records_are_named(cloud, api) -> None:
    seed(cloud, "t-swap", 6)
    a, b = item(cloud, "model:t-swap", 3), item(cloud, "model:t-swap", 4)
    put(cloud, {**b, "seq": {"N": "3"}})
    put(cloud, {**a, "seq": {"N": "4"}})
    bad = tampered(api, "model:t-swap")
    assert (bad["seq"], bad["kind"]) == (3, "reordered")


def test_a_rewritten_hash_is_named(cloud, api) -> None:
    seed(cloud, "t-hash", 6)
    it = item(cloud, "model:t-hash", 5)
    it["hash"] = {"S": hashlib.sha256(b"forged").hexdigest()}
    put(cloud, it)
    assert (tampered(api, "model:t-hash")["seq"], tampered(api, "model:t-hash")["kind"]) == (5, "modified")


def test_a_modified_record_with_a_recomputed_hash_is_named(cloud, api) -> None:
    seed(cloud, "t-rehash", 6)
    record = record_from_item(item(cloud, "model:t-rehash", 2))
    forged = AuditRecord(record.chain, record.seq, record.prev_hash, "", AuditEvent.create(
        "deployment.weights", "mallory", model="t-rehash", details={"percent": 100}, at=record.event.at))
    put(cloud, record_item(AuditRecord(forged.chain, forged.seq, forged.prev_hash, forged.computed_hash(), forged.event)))
    bad = tampered(api, "model:t-rehash")
    assert (bad["seq"], bad["kind"]) == (2, "modified") and "hash was rewritten" in bad["detail"]


# ----------------------------------------------------------------------------- archive
def test_archive_is_incremental_locked_and_anchors_verification(cloud, api) -> None:
    records = seed(cloud, "arch", 5)
    s3 = cloud.client("s3")
    first = cloud.invoke("AuditFunction", {"archive": {"chain": "model:arch"}})
    key = "audit/model/arch/000000000001-000000000005.jsonl"
    assert first == {"chains": [{"chain": "model:arch", "archived": 5, "objects": [key], "archived_to": 5}]}
    lines = s3.get_object(Bucket=bucket(cloud), Key=key)["Body"].read().decode().splitlines()
    assert [json.loads(line) for line in lines] == [r.to_api() for r in records]
    head = s3.head_object(Bucket=bucket(cloud), Key=key)
    assert head["ObjectLockMode"] == "GOVERNANCE" and head["ObjectLockRetainUntilDate"].year >= 2032
    again = cloud.invoke("AuditFunction", {"archive": {"chain": "model:arch"}})
    assert again["chains"][0]["archived"] == 0 and again["chains"][0]["objects"] == []
    seed(cloud, "arch", 2, minute=10)
    more = cloud.invoke("AuditFunction", {"archive": {"chain": "model:arch"}})
    assert more["chains"][0]["objects"] == ["audit/model/arch/000000000006-000000000007.jsonl"]
    assert verify(api, "model:arch", archive="true")["ok"] is True
    # The chain alone cannot show that its last record was deleted; the archive can.
    cloud.client("dynamodb").delete_item(TableName=table(cloud), Key={"chain": {"S": "model:arch"}, "seq": {"N": "7"}})
    assert verify(api, "model:arch")["ok"] is True
    bad = verify(api, "model:arch", archive="true")["first_bad"]
    assert (bad["seq"], bad["kind"]) == (7, "missing")


def test_a_broken_chain_is_not_archived(cloud) -> None:
    seed(cloud, "arch-bad", 4)
    it = item(cloud, "model:arch-bad", 2)
    it["actor"] = {"S": "mallory"}
    put(cloud, it)
    answer = cloud.invoke("AuditFunction", {"archive": {"chain": "model:arch-bad"}})
    assert answer["errorType"] == "AuditChainBroken" and "seq 2 (modified)" in answer["errorMessage"]
    listed = cloud.client("s3").list_objects_v2(Bucket=bucket(cloud), Prefix="audit/model/arch-bad/")
    assert listed.get("KeyCount", 0) == 0


# ----------------------------------------------------------------------------- model admin
def register(cloud: LocalCloud, name: str) -> int:
    from mlops.models.registry_store import RegistryStore

    registry = RegistryStore(cloud.stack.tables["RegistryTable"].name, cloud.stack.buckets["ArtifactsBucket"].name,
                             deployments_table=cloud.stack.tables["DeploymentsTable"].name,
                             dynamodb=cloud.client("dynamodb"), s3=cloud.client("s3"))
    artifact = b"not really onnx"
    record = {"sha256": hashlib.sha256(artifact).hexdigest(), "threshold": {"threshold": 0.5},
              "signature": {"features": []}}
    return registry.register_version(name, artifact=artifact, record=record).version


def test_model_admin_changes_and_refusals_are_audited(cloud, api) -> None:
    version = register(cloud, "audited")
    moved = call(api, "POST", "/models/audited/aliases/champion", {"version": version, "reason": "first"})
    assert moved.status == 200
    [record] = call(api, "GET", "/audit", params={"entity": alias_entity("audited", "champion")}).body["records"]
    assert (record["action"], record["chain"], record["model"], record["at"]) == (
        "alias.moved", "model:audited", "audited", moved.body["at"])
    assert record["actor"] == moved.body["by"] and record["actor"].startswith("api-key:")
    assert record["details"]["version"] == version and record["details"]["reason"] == "first"
    assert record["details"]["previous_version"] is None
    assert record["details"]["request"]["path"].endswith("/models/audited/aliases/champion")

    refused = call(api, "POST", "/models/audited/aliases/champion", {"version": 99})
    assert refused.status == 404
    approved = call(api, "POST", f"/models/audited/versions/{version}/approval", {"status": "approved"})
    assert approved.status == 200
    removed = call(api, "DELETE", "/models/audited/aliases/champion")
    assert removed.status == 200
    trail = call(api, "GET", "/audit", params={"chain": "model:audited"}).body["records"]
    assert [r["action"] for r in trail] == ["alias.moved", "admin.api_call", "approval.set", "alias.removed"]
    assert trail[1]["details"] | {"request_id": None} == {
        "method": "POST", "path": trail[1]["details"]["path"], "request_id": None, "status": 404,
        "error": "version_not_found"}
    assert (trail[2]["entity"], trail[2]["details"]["status"]) == (f"version:audited/{version}", "approved")
    assert verify(api, "model:audited")["ok"] is True


def test_the_canary_rollouts_direct_moves_are_audited(cloud, api) -> None:
    version = register(cloud, "canaried")
    cloud.invoke("ModelAdminFunction", {"action": "move_alias", "model": "canaried", "alias": "challenger",
                                        "version": version, "actor": "canary-rollout", "reason": "stage 1"})
    [record] = call(api, "GET", "/audit", params={"model": "canaried"}).body["records"]
    assert (record["action"], record["actor"], record["details"]["request"]) == ("alias.moved", "canary-rollout", None)


# ----------------------------------------------------------------------------- training and predictions
def test_a_training_and_the_predictions_of_its_version_are_audited(cloud, api) -> None:
    from yield_models import explicit_features, training_event

    trained = cloud.runtime.invoke("TrainFunction", json.dumps(training_event(seed=0)))
    assert trained.function_error is None, trained.payload[:2000]
    version = trained.json()
    [registered] = call(api, "GET", "/audit", params={"entity": f"version:yield/{version['version']}"}).body["records"]
    assert (registered["action"], registered["chain"]) == ("registry.version_registered", "model:yield")
    assert registered["actor"].endswith(":function:mlops-TrainFunction")
    assert registered["details"]["sha256"] == version["sha256"]
    assert registered["details"]["metrics"] == json.loads(json.dumps(version["metrics"]))

    assert call(api, "POST", "/models/yield/aliases/champion", {"version": version["version"]}).status == 200
    answer = call(api, "POST", "/predict", {"model": "yield", "features": explicit_features()})
    assert answer.status == 200, answer.raw
    request_id = answer.body["request_id"]
    [audited] = call(api, "GET", "/audit", params={"entity": f"prediction:{request_id}"}).body["records"]
    assert (audited["action"], audited["chain"], audited["actor"]) == ("prediction", "predictions:yield", "inference")
    assert audited["details"]["probability"] == answer.body["probability"]
    assert audited["details"]["version"] == version["version"]
    assert verify(api, "predictions:yield")["ok"] and verify(api, "model:yield")["ok"]
