"""The compliance report command against a LocalCloud: two trainings (v1, then v2 with v1 as
parent), v2 approved and made champion through the admin API, then
``python -m mlops.governance.compliance_report`` (in process, `main`) with the functions'
environment. The report holds v2's card, lineage, the approval and the alias move with their
actor, and the verified chain with its record count; after one audit record is tampered with in
DynamoDB, the report says the chain FAILED and names that record.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from stack_env import api_server, product_cloud
from yield_models import training_event

from localcloud.cloud import LocalCloud
from mlops.audit.store import AuditStore
from mlops.governance.compliance_report import main

KEY = "compliance-test-key-0123456789"
ADMIN = "compliance-admin-key-0123456789"


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with product_cloud({"ApiKey": KEY, "AdminApiKey": ADMIN}, log_sink=lambda fid, line: None) as c:
        yield c


def admin_post(port: int, path: str, body: dict[str, Any]) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", path, body=json.dumps(body).encode(),
                     headers={"Content-Type": "application/json", "x-api-key": ADMIN})
        resp = conn.getresponse()
        raw = resp.read()
        assert resp.status == 200, raw
        return json.loads(raw)
    finally:
        conn.close()


@pytest.fixture(scope="module")
def promoted(cloud: LocalCloud) -> dict[str, Any]:
    """v1 and v2 trained; v2 approved and moved to champion by the admin key."""
    versions = []
    for event in (training_event(seed=0), {**training_event(seed=1), "parent_version": 1}):
        answer = cloud.runtime.invoke("TrainFunction", json.dumps(event))
        assert answer.function_error is None, answer.payload[:2000]
        versions.append(answer.json())
    assert [v["version"] for v in versions] == [1, 2]
    with api_server(cloud) as api:
        admin_post(api.port, "/models/yield/versions/2/approval", {"status": "approved", "reason": "reviewed by QA"})
        admin_post(api.port, "/models/yield/aliases/champion", {"version": 2, "reason": "go live"})
    return versions[1]


def audit(cloud: LocalCloud) -> AuditStore:
    return AuditStore(cloud.stack.tables["AuditTable"].name, dynamodb=cloud.client("dynamodb"))


def report(cloud: LocalCloud, out: Path) -> tuple[int, str]:
    env = cloud.runtime.environment_of("AuditFunction")  # REGISTRY_TABLE, ARTIFACTS_BUCKET, AUDIT_*
    status = main(["--model", "yield", "--version", "2", "--out", str(out)], env=env,
                  dynamodb=cloud.client("dynamodb"), s3=cloud.client("s3"))
    return status, out.read_text(encoding="utf-8")


def test_the_report_holds_the_card_the_approval_and_the_verified_chain(cloud, promoted, tmp_path) -> None:
    status, text = report(cloud, tmp_path / "yield-v2.md")
    assert status == 0
    records = list(audit(cloud).records("model:yield"))
    approval = next(r for r in records if r.event.action == "approval.set")
    move = next(r for r in records if r.event.action == "alias.moved")
    assert approval.event.actor.startswith("api-key:") and move.event.actor == approval.event.actor
    assert text.startswith("# Compliance report: yield version 2\n")
    assert "### Model card: yield version 2" in text and promoted["sha256"] in text
    assert "Rank devices by their risk of failing final test (integration tests)." in text  # the card's intended use
    assert "- Parent version: 1" in text and "- Champion now: version 2 (this version)" in text
    assert f"**approved** by {approval.event.actor}" in text and "reason: reviewed by QA." in text
    assert f"| champion | 2 | n/a | {move.event.actor} | go live |" in text  # the registry's history of the move
    assert f"| approval.set | {approval.event.actor} | version:yield/2 |" in text
    assert "No rollout recorded for this version" in text and "No drift report stored for model yield." in text
    assert "### tester_id: the 80% rule" in text  # the training's fairness audit per slice column
    assert f"Audit chain: verified (model:yield: {len(records)} records checked)" in text
    assert f"| model:yield | yes | {len(records)} | {records[-1].seq} | {records[-1].hash} |" in text
    for r in (approval, move):
        assert f"| {r.prev_hash} | {r.hash} |" in text  # cited with its hashes


def test_a_tampered_record_makes_the_report_say_the_chain_failed(cloud, promoted, tmp_path) -> None:
    table = cloud.stack.tables["AuditTable"].name
    db = cloud.client("dynamodb")
    approval = next(r for r in audit(cloud).records("model:yield") if r.event.action == "approval.set")
    key = {"chain": {"S": "model:yield"}, "seq": {"N": str(approval.seq)}}
    item = db.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    db.put_item(TableName=table, Item={**item, "actor": {"S": "api-key:somebody-else"}})
    try:
        status, text = report(cloud, tmp_path / "tampered.md")
    finally:
        db.put_item(TableName=table, Item=item)
    assert status == 1
    assert (f"Audit chain: FAILED (model:yield: first bad record seq {approval.seq}, modified: "
            "the record's content does not match its hash)") in text
    assert "Audit chain: verified" not in text
