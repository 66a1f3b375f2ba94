"""Exactly-once experiment outcomes: the pure write parameters (totals ADD, versioned bandit put,
the prediction's "outcome counted" marker) and, on moto's DynamoDB, the one transaction
`ExperimentStore.apply_feedback` makes of them: counted once however often and however
concurrently it is called for one prediction, nothing written when the marker's condition
fails, a bandit version conflict retried without losing or doubling the reward.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from localcloud.cloud import _serialize_dynamodb_writes
from mlops.experiments.definition import ExperimentDefinition
from mlops.experiments.store import ExperimentStore, bandit_put, totals_update
from mlops.models.prediction_log import OUTCOME_MARKER, PredictionLog, outcome_marker

EXPERIMENTS = "test-ExperimentsTable"
PREDICTIONS = "test-PredictionsTable"
AT = "2026-03-02T09:00:00.000000Z"


def definition(bandit: dict | None = None) -> ExperimentDefinition:
    return ExperimentDefinition.from_dict({
        "experiment_id": "exp-1", "model": "yield", "mde": 0.05,
        "variants": [{"name": "control", "weight": 1, "model_version": "1"},
                     {"name": "treatment", "weight": 1, "model_version": "2"}],
        "primary_metric": {"name": "correct", "kind": "proportion", "baseline": 0.8},
        "guardrail_metrics": [{"name": "brier", "kind": "mean", "direction": "decrease"}], "bandit": bandit})


# ------------------------------------------------------------------------------ pure parts
def test_totals_update_adds_one_outcome_per_metric() -> None:
    params = totals_update("T", "exp-1", "control", {"correct": 1.0, "brier": 0.25})
    assert params["TableName"] == "T"
    assert params["Key"] == {"pk": {"S": "EXP#exp-1"}, "sk": {"S": "VARIANT#control"}}
    assert params["UpdateExpression"] == "ADD #f :one, #n0 :one, #s0 :v0, #q0 :q0, #n1 :one, #s1 :v1, #q1 :q1"
    assert params["ExpressionAttributeNames"] == {"#f": "feedback", "#n0": "n_correct", "#s0": "sum_correct",
                                                  "#q0": "sumsq_correct", "#n1": "n_brier", "#s1": "sum_brier",
                                                  "#q1": "sumsq_brier"}
    assert params["ExpressionAttributeValues"] == {":one": {"N": "1"}, ":v0": {"N": "1.0"}, ":q0": {"N": "1.0"},
                                                   ":v1": {"N": "0.25"}, ":q1": {"N": "0.0625"}}
    assert "ConditionExpression" not in params  # ADD never conflicts


def test_bandit_put_is_conditioned_on_the_version_read() -> None:
    item = {"pk": {"S": "EXP#exp-1"}, "sk": {"S": "BANDIT"}, "version": {"N": "8"}}
    params = bandit_put("T", item, 7)
    assert params == {"TableName": "T", "Item": item, "ConditionExpression": "#v = :old",
                      "ExpressionAttributeNames": {"#v": "version"}, "ExpressionAttributeValues": {":old": {"N": "7"}}}


def test_the_marker_is_set_once_and_only_over_the_measured_label() -> None:
    entry = outcome_marker("P", "req-1", 1, at=AT)
    assert entry == {"Update": {
        "TableName": "P", "Key": {"request_id": {"S": "req-1"}}, "UpdateExpression": "SET #m = :at",
        "ConditionExpression": "attribute_not_exists(#m) AND label = :l",
        "ExpressionAttributeNames": {"#m": "outcome_recorded_at"},
        "ExpressionAttributeValues": {":at": {"S": AT}, ":l": {"N": "1"}}}}


# ------------------------------------------------------------------------------ on moto
@pytest.fixture()
def dynamodb() -> Iterator[Any]:
    _serialize_dynamodb_writes()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=EXPERIMENTS, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
        client.create_table(
            TableName=PREDICTIONS, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "request_id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "request_id", "KeyType": "HASH"}])
        yield client


def labelled(dynamodb: Any, request_id: str, label: int) -> PredictionLog:
    log = PredictionLog(PREDICTIONS, dynamodb=dynamodb)
    dynamodb.put_item(TableName=PREDICTIONS, Item={
        "request_id": {"S": request_id}, "ts": {"S": AT}, "model": {"S": "yield"}, "version": {"N": "2"},
        "variant": {"S": "challenger"}, "probability": {"N": "0.9"}, "predicted_label": {"N": "1"},
        "threshold": {"N": "0.5"}, "experiment_id": {"S": "exp-1"}, "experiment_variant": {"S": "treatment"}})
    log.record_feedback(request_id, label, at=AT)
    return log


def feed(store: ExperimentStore, request_id: str, label: int) -> dict | None:
    return store.apply_feedback("exp-1", "treatment", probability=0.9, predicted_label=1, label=label,
                                marker=outcome_marker(PREDICTIONS, request_id, label, at=AT))


def test_an_outcome_counts_once_and_a_repeat_writes_nothing(dynamodb: Any) -> None:
    store = ExperimentStore(EXPERIMENTS, dynamodb=dynamodb)
    d = definition({"policy": "thompson_beta", "params": {}})
    store.create(d)
    log = labelled(dynamodb, "req-1", 1)
    first = feed(store, "req-1", 1)
    assert first == {"id": "exp-1", "variant": "treatment", "outcomes": {"correct": 1.0, "brier": pytest.approx(0.01)},
                     "reward": 1.0, "bandit_version": 1}
    assert log.get("req-1").outcome_recorded_at == AT
    assert feed(store, "req-1", 1) is None  # the marker is there: counted already
    assert store.totals(d)["metrics"]["correct"]["treatment"] == {"n": 1, "sum": 1.0, "sum_sq": 1.0}
    state = store.bandit_state("exp-1", consistent=True)
    assert state["version"] == 1 and state["arms"]["treatment"] == {"n": 1, "successes": 1.0}


def test_a_marker_over_another_label_cancels_the_whole_transaction(dynamodb: Any) -> None:
    store = ExperimentStore(EXPERIMENTS, dynamodb=dynamodb)
    d = definition({"policy": "thompson_beta", "params": {}})
    store.create(d)
    log = labelled(dynamodb, "req-2", 0)
    assert feed(store, "req-2", 1) is None
    assert store.totals(d)["metrics"]["correct"]["treatment"]["n"] == 0
    assert store.bandit_state("exp-1", consistent=True)["version"] == 0
    assert log.get("req-2").outcome_recorded_at is None


def test_concurrent_calls_for_one_prediction_count_once_and_others_still_count(dynamodb: Any) -> None:
    store = ExperimentStore(EXPERIMENTS, dynamodb=dynamodb)
    d = definition({"policy": "thompson_beta", "params": {}})
    store.create(d)
    for i in range(4):
        labelled(dynamodb, f"req-{i}", 1)
    results: list[dict | None] = []
    lock = threading.Lock()

    def run(request_id: str) -> None:
        out = feed(store, request_id, 1)
        with lock:
            results.append(out)

    pool = [threading.Thread(target=run, args=(f"req-{i % 4}",)) for i in range(16)]  # 4 calls per prediction
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert sum(r is not None for r in results) == 4
    assert sorted(r["bandit_version"] for r in results if r is not None) == [1, 2, 3, 4]
    assert store.totals(d)["metrics"]["correct"]["treatment"]["n"] == 4
    assert store.bandit_state("exp-1", consistent=True)["arms"]["treatment"] == {"n": 4, "successes": 4.0}


def test_a_bandit_conflict_is_retried_with_the_marker(dynamodb: Any) -> None:
    """Another reward lands between this call's read of the bandit state and its transaction:
    the transaction is cancelled on the version, re-read and re-applied; both rewards stay."""
    store = ExperimentStore(EXPERIMENTS, dynamodb=dynamodb)
    d = definition({"policy": "thompson_beta", "params": {}})
    store.create(d)
    log = labelled(dynamodb, "req-1", 1)
    other = ExperimentStore(EXPERIMENTS, dynamodb=dynamodb)
    calls = {"get": 0, "cancelled": 0}

    class Interleaving:
        def __getattr__(self, name: str) -> Any:
            return getattr(dynamodb, name)

        def get_item(self, **kwargs: Any) -> Any:
            answer = dynamodb.get_item(**kwargs)
            if kwargs["Key"]["sk"]["S"] != "BANDIT":
                return answer
            calls["get"] += 1
            if calls["get"] == 1:
                other.update_bandit("exp-1", [("control", 1.0)])  # lands after our read
            return answer

        def transact_write_items(self, **kwargs: Any) -> Any:
            try:
                return dynamodb.transact_write_items(**kwargs)
            except dynamodb.exceptions.TransactionCanceledException:
                calls["cancelled"] += 1
                raise

    out = feed(ExperimentStore(EXPERIMENTS, dynamodb=Interleaving()), "req-1", 1)
    assert calls == {"get": 2, "cancelled": 1}
    assert out is not None and out["bandit_version"] == 2
    assert store.bandit_state("exp-1", consistent=True)["arms"] == {"control": {"n": 1, "successes": 1.0},
                                                                    "treatment": {"n": 1, "successes": 1.0}}
    assert store.totals(d)["metrics"]["correct"]["treatment"]["n"] == 1
    assert log.get("req-1").outcome_recorded_at == AT and OUTCOME_MARKER == "outcome_recorded_at"
