"""8 concurrent writers x 1000 events on one audit chain leave it intact: 8000 records, seq
1..8000 without a gap, every link right, every writer's every event stored exactly once.

The writers are threads, each with its own DynamoDB client and `AuditStore` (as 8 Lambda
functions would be), against moto in this process (`mock_aws`), on the AuditTable that
template.yaml declares. moto checks a condition and then writes in plain Python, so the test
gives it the atomicity DynamoDB has, with the same patch LocalCloud applies to its moto server
(`localcloud.cloud._serialize_dynamodb_writes`), and LocalCloud's `moto_speedups`. In-process
moto rather than LocalCloud's HTTP endpoint: the writes are what is under test, and each moto
call costs milliseconds of CPU either way; the run takes about a minute on 2 busy cores (it
prints its timings with -s).
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from localcloud import moto_speedups
from localcloud.cloud import _serialize_dynamodb_writes
from localcloud.provision import create_table
from localcloud.template import load_stack
from mlops.audit.chain import GENESIS
from mlops.audit.events import DEPLOYMENT_WEIGHTS, AuditEvent
from mlops.audit.store import AuditStore

ROOT = Path(__file__).resolve().parents[2]
WRITERS, EVENTS = 8, 1000

pytestmark = pytest.mark.timeout(1800)


class CountingClient:
    """A DynamoDB client that counts the conditional puts refused (the races lost)."""

    def __init__(self, client: Any, lost: Counter) -> None:
        self._client, self._lost = client, lost

    def put_item(self, **kwargs: Any) -> Any:
        try:
            return self._client.put_item(**kwargs)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                self._lost["puts"] += 1
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@pytest.fixture
def audit_table(monkeypatch: pytest.MonkeyPatch):
    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    _serialize_dynamodb_writes()
    moto_speedups.install()  # as LocalCloud does: the same answers, computed faster
    table = load_stack(ROOT / "template.yaml").tables["AuditTable"]
    with mock_aws():
        create_table(boto3.client("dynamodb"), table)
        yield table.name


def test_eight_concurrent_writers_never_fork_or_drop_the_chain(audit_table: str) -> None:
    lost: Counter = Counter()
    written: list[list] = [[] for _ in range(WRITERS)]
    errors: list[BaseException] = []
    start = threading.Barrier(WRITERS)

    def writer(w: int) -> None:
        store = AuditStore(audit_table, dynamodb=CountingClient(boto3.client("dynamodb"), lost), max_seconds=300)
        try:
            start.wait()
            for i in range(EVENTS):
                event = AuditEvent.create(DEPLOYMENT_WEIGHTS, f"writer-{w}", model="yield",
                                          details={"writer": w, "i": i}, at="2026-01-05T09:00:00Z")
                written[w].append(store.append(event))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    t1 = time.perf_counter()

    # No fork: no two writers were told they hold the same seq.
    told = [r.seq for records in written for r in records]
    assert len(told) == len(set(told)) == WRITERS * EVENTS
    assert lost["puts"] > 0  # the writers did race each other

    store = AuditStore(audit_table, dynamodb=boto3.client("dynamodb"))
    stored = list(store.records("model:yield"))
    t2 = time.perf_counter()
    # Nothing lost: exactly 8000 records, seq 1..8000, each link to the previous hash.
    assert [r.seq for r in stored] == list(range(1, WRITERS * EVENTS + 1))
    assert stored[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(stored, stored[1:]))
    from mlops.audit.chain import verify

    result = verify(stored, chain="model:yield")
    assert result.ok and result.records == WRITERS * EVENTS and result.head_seq == WRITERS * EVENTS
    # Every writer's every event is there once, as the writer was told.
    assert Counter((r.event.details["writer"], r.event.details["i"]) for r in stored) == Counter(
        {(w, i): 1 for w in range(WRITERS) for i in range(EVENTS)})
    by_seq = {r.seq: r for r in stored}
    assert all(by_seq[r.seq] == r for records in written for r in records)
    print(f"\n{WRITERS}x{EVENTS} appends in {t1 - t0:.1f} s ({lost['puts']} races lost); "
          f"read back in {t2 - t1:.1f} s", file=sys.stderr)
