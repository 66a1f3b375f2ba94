"""The experiment store on moto's DynamoDB (in-process): create without overwrite, get, list,
stop, the one running experiment per model, bandit state under concurrent rewards (nothing
lost), outcome totals with ADD, and feedback outcomes.

moto checks a condition and writes in plain Python; DynamoDB does both atomically. Like
localcloud, the tests serialize moto's writes (`localcloud.cloud._serialize_dynamodb_writes`) so
that a conditional write behaves as on AWS; the store's own retry logic is what is under test.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
import numpy as np
import pytest
from moto import mock_aws

from localcloud.cloud import _serialize_dynamodb_writes
from mlops.experiments import bandits
from mlops.experiments.definition import ExperimentDefinition
from mlops.experiments.errors import ExperimentError, UnknownExperiment
from mlops.experiments.store import ExperimentConflict, ExperimentStore

TABLE = "test-ExperimentsTable"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def definition(experiment_id: str = "exp-1", *, model: str | None = "yield", bandit: dict | None = None,
               **extra: Any) -> ExperimentDefinition:
    body = {"experiment_id": experiment_id, "model": model, "mde": 0.05,
            "variants": [{"name": "control", "weight": 1, "model_version": "1"},
                         {"name": "treatment", "weight": 1, "model_version": "2"}],
            "primary_metric": {"name": "correct", "kind": "proportion", "baseline": 0.8},
            "guardrail_metrics": [{"name": "brier", "kind": "mean", "direction": "decrease"}],
            "bandit": bandit, **extra}
    return ExperimentDefinition.from_dict(body)


@pytest.fixture()
def dynamodb() -> Iterator[Any]:
    _serialize_dynamodb_writes()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
        yield client


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def store(dynamodb: Any, clock: Clock) -> ExperimentStore:
    return ExperimentStore(TABLE, dynamodb=dynamodb, clock=clock)


def test_create_get_list_and_no_overwrite(store: ExperimentStore, dynamodb: Any) -> None:
    created = store.create(definition(), by="api-key:admin")
    assert created.status == "running" and created.created_at == "2026-03-02T09:00:00.000000Z"
    got = ExperimentStore(TABLE, dynamodb=dynamodb).get("exp-1")  # a fresh store: read from the table
    assert got == created and got.definition == definition()
    with pytest.raises(ExperimentConflict) as info:
        store.create(definition(model=None, mde=0.1))
    assert info.value.status == 409 and info.value.field == "experiment_id"
    assert store.get("exp-1").definition.mde == 0.05  # nothing overwritten
    store.create(definition("exp-0", model=None))
    assert [r.experiment_id for r in store.list()] == ["exp-0", "exp-1"]
    with pytest.raises(UnknownExperiment) as missing:
        store.get("nope")
    assert missing.value.status == 404 and missing.value.field == "experiment_id"


def test_one_running_experiment_per_model_until_stopped(store: ExperimentStore, clock: Clock) -> None:
    store.create(definition("exp-1"))
    with pytest.raises(ExperimentConflict) as info:
        store.create(definition("exp-2"))
    assert info.value.field == "model" and "'exp-1'" in info.value.message
    with pytest.raises(UnknownExperiment):
        store.get("exp-2")  # the failed create left nothing behind
    assert store.live("yield").experiment_id == "exp-1"

    clock.now = T0 + timedelta(hours=1)
    stopped = store.stop("exp-1", by="me", reason="done")
    assert (stopped.status, stopped.stopped_at, stopped.stopped_by, stopped.stop_reason) == (
        "stopped", "2026-03-02T10:00:00.000000Z", "me", "done")
    assert stopped.state(clock.now) == "stopped" and store.live("yield") is None
    assert store.stop("exp-1") == stopped  # stopping again changes nothing
    assert stopped.analysed_definition().stop == "2026-03-02T10:00:00Z"
    store.create(definition("exp-2"))
    assert store.live("yield").experiment_id == "exp-2"


def test_an_experiment_past_its_stop_time_releases_the_model(store: ExperimentStore, clock: Clock) -> None:
    store.create(definition("exp-1", stop="2026-03-03T00:00:00Z"))
    with pytest.raises(ExperimentConflict):
        store.create(definition("exp-2"))
    clock.now = datetime(2026, 3, 3, 0, 0, 1, tzinfo=timezone.utc)
    assert store.get("exp-1").state(clock.now) == "ended"
    store.create(definition("exp-2"))
    assert store.live("yield").experiment_id == "exp-2"
    assert store.stop("exp-1").status == "stopped"  # the ended one stops without touching exp-2's lock
    assert store.live("yield").experiment_id == "exp-2" and store.get("exp-2").status == "running"


def test_live_experiment_has_the_bandit_state(store: ExperimentStore) -> None:
    store.create(definition(bandit={"policy": "thompson_beta", "params": {"floor": 0.05}}))
    live = store.live("yield")
    assert live.bandit_state == bandits.new_state("thompson_beta", ["control", "treatment"], floor=0.05)
    assert {live.pick(f"e{i}").variant for i in range(200)} == {"control", "treatment"}
    assert store.live("other-model") is None


@pytest.mark.parametrize("policy", ["thompson_beta", "thompson_gaussian"])
def test_concurrent_rewards_are_never_lost(store: ExperimentStore, policy: str) -> None:
    store.create(definition(bandit={"policy": policy, "params": {}}))
    threads, per_thread = 5, 10
    rng = np.random.default_rng(7)
    work = [[("control" if rng.random() < 0.5 else "treatment", float(rng.random() < 0.7)) for _ in range(per_thread)]
            for _ in range(threads)]
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def run(rewards: list[tuple[str, float]]) -> None:
        try:
            start.wait()
            for arm, reward in rewards:
                store.update_bandit("exp-1", [(arm, reward)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    pool = [threading.Thread(target=run, args=(w,)) for w in work]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert errors == []
    state = store.bandit_state("exp-1", consistent=True)
    flat = [x for w in work for x in w]
    assert state["version"] == threads * per_thread
    for arm in ("control", "treatment"):
        rewards = [r for a, r in flat if a == arm]
        assert state["arms"][arm]["n"] == len(rewards)
        if policy == "thompson_beta":
            assert state["arms"][arm]["successes"] == sum(rewards)
        else:
            assert state["arms"][arm]["mean"] == pytest.approx(np.mean(rewards), abs=1e-12)


def test_concurrent_outcomes_add_up_exactly(store: ExperimentStore) -> None:
    d = definition()
    store.create(d)
    rng = np.random.default_rng(3)
    rows = [("control" if rng.random() < 0.5 else "treatment", float(rng.random()), int(rng.random() < 0.5),
             int(rng.random() < 0.6)) for _ in range(72)]
    chunks = [rows[i::6] for i in range(6)]

    def run(chunk: list) -> None:
        for variant, p, predicted, label in chunk:
            store.apply_feedback("exp-1", variant, probability=p, predicted_label=predicted, label=label)

    pool = [threading.Thread(target=run, args=(c,)) for c in chunks]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    store.record_exposures({("exp-1", "control"): 3, ("exp-1", "treatment"): 2})
    store.record_exposures({("exp-1", "control"): 1})
    totals = store.totals(d)
    assert totals["assignments"] == {"control": 4, "treatment": 2}
    for variant in ("control", "treatment"):
        mine = [r for r in rows if r[0] == variant]
        correct = np.array([float(pred == label) for _, _, pred, label in mine])
        brier = np.array([(p - label) ** 2 for _, p, _, label in mine])
        assert totals["metrics"]["correct"][variant] == {"n": len(mine), "sum": correct.sum(), "sum_sq": correct.sum()}
        got = totals["metrics"]["brier"][variant]
        assert got["n"] == len(mine)
        assert got["sum"] == pytest.approx(brier.sum(), rel=1e-12)
        assert got["sum_sq"] == pytest.approx((brier ** 2).sum(), rel=1e-12)


def test_feedback_outcome_and_reward(store: ExperimentStore) -> None:
    store.create(definition(bandit={"policy": "thompson_beta", "params": {"floor": 0.0}}))
    out = store.apply_feedback("exp-1", "treatment", probability=0.9, predicted_label=1, label=0)
    assert out["outcomes"] == {"correct": 0.0, "brier": pytest.approx(0.81)}
    assert (out["reward"], out["bandit_version"]) == (0.0, 1)
    out = store.apply_feedback("exp-1", "treatment", probability=0.9, predicted_label=1, label=1)
    assert out["reward"] == 1.0 and out["bandit_version"] == 2
    assert store.bandit_state("exp-1")["arms"]["treatment"] == {"n": 2, "successes": 1.0}
    assert store.totals(definition())["metrics"]["correct"]["treatment"]["n"] == 2


def test_a_bandit_reward_for_an_unknown_arm_is_refused(store: ExperimentStore) -> None:
    store.create(definition(bandit={"policy": "thompson_beta", "params": {}}))
    with pytest.raises(ExperimentError) as info:
        store.update_bandit("exp-1", [("nope", 1.0)])
    assert info.value.field == "arm"
    assert store.bandit_state("exp-1")["version"] == 0  # nothing written


def test_a_write_between_read_and_write_is_not_overwritten(store: ExperimentStore, dynamodb: Any) -> None:
    """Deterministic interleaving: another writer updates the state after this writer read it;
    the conditional write fails, the update is re-applied to the fresh state, both rewards stay."""
    store.create(definition(bandit={"policy": "thompson_beta", "params": {}}))
    other = ExperimentStore(TABLE, dynamodb=dynamodb)
    calls = {"get": 0, "put_failed": 0}

    class Interleaving:
        def __getattr__(self, name: str) -> Any:
            return getattr(dynamodb, name)

        def get_item(self, **kwargs: Any) -> Any:
            answer = dynamodb.get_item(**kwargs)
            calls["get"] += 1
            if calls["get"] == 1:
                other.update_bandit("exp-1", [("control", 1.0)])  # lands after our read
            return answer

        def put_item(self, **kwargs: Any) -> Any:
            try:
                return dynamodb.put_item(**kwargs)
            except dynamodb.exceptions.ConditionalCheckFailedException:
                calls["put_failed"] += 1
                raise

    racing = ExperimentStore(TABLE, dynamodb=Interleaving())
    state = racing.update_bandit("exp-1", [("treatment", 1.0)])
    assert calls == {"get": 2, "put_failed": 1}
    assert state["version"] == 2
    assert state["arms"] == {"control": {"n": 1, "successes": 1.0}, "treatment": {"n": 1, "successes": 1.0}}
    assert store.bandit_state("exp-1", consistent=True) == state
