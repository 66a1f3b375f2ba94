"""The rollout lease on moto's DynamoDB: one owner at a time, re-entrant, expiring, and a
release that only the owner can make."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from mlops.rollout.lock import LockHeld, RolloutLock

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "drift"))
from drift_moto import DEPLOYMENTS_TABLE, drift_aws  # noqa: E402  (moto tables shaped as the template's)


@pytest.fixture()
def lock():
    with drift_aws() as (dynamodb, _):
        yield RolloutLock(DEPLOYMENTS_TABLE, dynamodb=dynamodb)


def test_one_owner_at_a_time(lock: RolloutLock) -> None:
    lease = lock.acquire("yield", "rollout", "exec-1", now=1000, ttl_s=60)
    assert lease.expires_at == 1060 and lock.holder("yield", "rollout").owner == "exec-1"
    assert lock.acquire("yield", "rollout", "exec-1", now=1010, ttl_s=60).expires_at == 1070  # a retried step
    with pytest.raises(LockHeld, match="rollout of 'yield' is already running: held by exec-1"):
        lock.acquire("yield", "rollout", "exec-2", now=1020, ttl_s=60)
    lock.acquire("yield", "retraining", "exec-2", now=1020, ttl_s=60)  # another kind: its own lease
    lock.acquire("other", "rollout", "exec-2", now=1020, ttl_s=60)  # another model: its own lease
    assert not lock.release("yield", "rollout", "exec-2")  # not the owner: nothing happens
    assert lock.holder("yield", "rollout").owner == "exec-1"
    assert lock.release("yield", "rollout", "exec-1") and lock.holder("yield", "rollout") is None
    lock.acquire("yield", "rollout", "exec-2", now=1030, ttl_s=60)


def test_an_expired_lease_can_be_taken(lock: RolloutLock) -> None:
    lock.acquire("yield", "rollout", "dead-exec", now=1000, ttl_s=60)
    with pytest.raises(LockHeld):
        lock.acquire("yield", "rollout", "exec-2", now=1060, ttl_s=60)
    assert lock.acquire("yield", "rollout", "exec-2", now=1061, ttl_s=60).owner == "exec-2"
    with pytest.raises(ValueError, match="kind"):
        lock.acquire("yield", "deploy", "x", now=0, ttl_s=1)


def test_concurrent_acquires_have_one_winner(lock: RolloutLock) -> None:
    winners, refused = [], []
    barrier = threading.Barrier(8)

    def contend(i: int) -> None:
        barrier.wait()
        try:
            lock.acquire("yield", "retraining", f"exec-{i}", now=5000, ttl_s=600)
            winners.append(i)
        except LockHeld:
            refused.append(i)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1 and len(refused) == 7
    assert lock.holder("yield", "retraining").owner == f"exec-{winners[0]}"
