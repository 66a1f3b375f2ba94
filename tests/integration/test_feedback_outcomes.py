"""Experiment outcomes from POST /feedback count exactly once, end to end over real HTTP
(`LocalCloud` + `ApiServer`): when the experiment's transaction is throttled the client gets a
503 with Retry-After (the label is stored, the totals and the bandit untouched), its retry - a
duplicate label - records the outcome once, a third identical call changes nothing; several
identical feedback calls at the same time count once; an experiment error is answered, not
dropped.

One cloud for the module: one trained version of "yield", served by both variants of a bandit
experiment (the outcome bookkeeping is what is under test, not the models' difference). Tests
run in file order: the last two run after the experiment is stopped.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from stack_env import http_json, product_cloud, table, train_champion
from yield_models import explicit_features, training_event

from localcloud.apigw import ApiServer
from localcloud.cloud import LocalCloud
from mlops.aws import MAX_ATTEMPTS

KEY = "outcome-test-key-0123456789"
ADMIN = "outcome-admin-key-0123456789"
EXPERIMENT = "once-1"


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    overrides = {"InferenceFunction": {"DEPLOYMENT_CACHE_SECONDS": "0", "EXPERIMENT_CACHE_SECONDS": "0",
                                       "AUDIT_PREDICTION_SAMPLE_RATE": "0"}}
    with product_cloud({"ApiKey": KEY, "AdminApiKey": ADMIN}, env_vars=overrides,
                       log_sink=lambda fid, line: None, max_concurrency=3) as c:
        yield c


@pytest.fixture(scope="module")
def experiment(cloud: LocalCloud, api: ApiServer) -> str:
    train_champion(cloud, api, ADMIN, training_event(seed=0, n=200, n_estimators=8))
    body = {"experiment_id": EXPERIMENT, "model": "yield", "mde": 0.05,
            "variants": [{"name": "control", "weight": 1, "model_version": "1"},
                         {"name": "treatment", "weight": 1, "model_version": "1"}],
            "primary_metric": {"name": "correct", "kind": "proportion", "baseline": 0.8},
            "guardrail_metrics": [{"name": "brier", "kind": "mean", "direction": "decrease"}],
            "bandit": {"policy": "thompson_beta", "params": {"floor": 0.05}}}
    created = call(api, "POST", "/experiments", body, key=ADMIN)
    assert created[0] == 201, created
    return EXPERIMENT


def call(api: ApiServer, method: str, path: str, body: Any = None, *, key: str = KEY,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    return http_json(api, method, path, body, key=key, headers=headers)


def predict(api: ApiServer, entity: str, seed: int) -> dict:
    status, _, answer = call(api, "POST", "/predict", {"model": "yield", "entity_id": entity,
                                                       "features": explicit_features(seed)})
    assert status == 200, answer
    assert answer["experiment"]["id"] == EXPERIMENT, answer
    return answer


def logged(cloud: LocalCloud, request_id: str) -> dict:
    return cloud.client("dynamodb").get_item(TableName=table(cloud, "PredictionsTable"),
                                             Key={"request_id": {"S": request_id}}, ConsistentRead=True)["Item"]


def totals(cloud: LocalCloud, variant: str) -> dict[str, float]:
    """The variant's totals item as numbers (feedback, n_correct, sum_brier ...; exposures)."""
    item = cloud.client("dynamodb").get_item(
        TableName=table(cloud, "ExperimentsTable"), Key={"pk": {"S": f"EXP#{EXPERIMENT}"},
                                                         "sk": {"S": f"VARIANT#{variant}"}},
        ConsistentRead=True).get("Item", {})
    return {k: float(v["N"]) for k, v in item.items() if "N" in v}


def bandit(api: ApiServer) -> dict:
    status, _, body = call(api, "GET", f"/experiments/{EXPERIMENT}", key=ADMIN)
    assert status == 200, body
    return body["bandit"]


def test_a_throttled_outcome_is_recorded_once_by_the_retry(cloud, api, experiment, faults) -> None:
    served = predict(api, "ONCE-A", 31)
    rid, variant = served["request_id"], served["variant"]
    label = served["label"]  # the prediction is right: outcome correct = 1, reward 1
    before, state = totals(cloud, variant), bandit(api)

    rule = faults.throttle("dynamodb", "TransactWriteItems", resource=table(cloud, "ExperimentsTable"))
    status, headers, body = call(api, "POST", "/feedback", {"request_id": rid, "label": label})
    assert status == 503 and headers["retry-after"] == "2", body
    assert body["error"] == "service_unavailable"
    assert rule.hits == MAX_ATTEMPTS
    item = logged(cloud, rid)
    assert int(item["label"]["N"]) == label and "outcome_recorded_at" not in item  # label in, outcome not
    assert totals(cloud, variant) == before and bandit(api) == state
    faults.clear()

    status, _, body = call(api, "POST", "/feedback", {"request_id": rid, "label": label})
    assert status == 200, body
    assert body["duplicate"] is True and body["outcome_recorded"] is True
    assert body["experiment"]["variant"] == variant and body["experiment"]["reward"] == 1.0
    assert body["experiment"]["bandit_version"] == state["version"] + 1
    after = totals(cloud, variant)
    assert after.get("feedback", 0) == before.get("feedback", 0) + 1
    assert after.get("n_correct", 0) == before.get("n_correct", 0) + 1
    assert after.get("sum_correct", 0) == before.get("sum_correct", 0) + 1
    assert after.get("n_brier", 0) == before.get("n_brier", 0) + 1
    assert after["sum_brier"] - before.get("sum_brier", 0) == pytest.approx((served["probability"] - label) ** 2)
    arms = bandit(api)
    assert arms["version"] == state["version"] + 1
    assert arms["arms"][variant]["n"] == state["arms"][variant]["n"] + 1
    assert arms["arms"][variant]["successes"] == state["arms"][variant]["successes"] + 1
    assert "outcome_recorded_at" in logged(cloud, rid)

    status, _, body = call(api, "POST", "/feedback", {"request_id": rid, "label": label})
    assert status == 200 and body["duplicate"] is True and body["outcome_recorded"] is False
    assert "experiment" not in body
    assert totals(cloud, variant) == after and bandit(api) == arms


def test_concurrent_identical_feedback_counts_once(cloud, api, experiment) -> None:
    served = predict(api, "ONCE-B", 32)
    rid, variant, label = served["request_id"], served["variant"], 1 - served["label"]  # wrong: reward 0
    before, state = totals(cloud, variant), bandit(api)
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: call(api, "POST", "/feedback", {"request_id": rid, "label": label}),
                                range(6)))
    assert [a[0] for a in answers] == [200] * 6, answers
    assert sum(a[2]["duplicate"] is False for a in answers) == 1
    assert sum(a[2]["outcome_recorded"] for a in answers) == 1
    [recorded] = [a[2]["experiment"] for a in answers if a[2]["outcome_recorded"]]
    assert recorded["reward"] == 0.0 and recorded["bandit_version"] == state["version"] + 1
    after = totals(cloud, variant)
    assert after.get("feedback", 0) == before.get("feedback", 0) + 1
    assert after.get("n_correct", 0) == before.get("n_correct", 0) + 1
    assert after.get("sum_correct", 0) == before.get("sum_correct", 0)  # wrong: adds 0
    arms = bandit(api)
    assert arms["version"] == state["version"] + 1
    assert arms["arms"][variant]["n"] == state["arms"][variant]["n"] + 1
    assert arms["arms"][variant]["successes"] == state["arms"][variant]["successes"]


def test_feedback_without_an_experiment_records_no_outcome(cloud, api, experiment) -> None:
    assert call(api, "POST", f"/experiments/{EXPERIMENT}/stop", key=ADMIN)[0] == 200
    served = predict_after_stop(api, "ONCE-C", 33)
    status, _, body = call(api, "POST", "/feedback", {"request_id": served["request_id"], "label": 1})
    assert status == 200 and body["outcome_recorded"] is False and "experiment" not in body
    assert "outcome_recorded_at" not in logged(cloud, served["request_id"])


def test_an_experiment_error_is_answered_not_dropped(cloud, api, experiment) -> None:
    """A prediction logged under an experiment the store lacks: the label is stored, the answer
    names the problem (no silent loss), and nothing is marked as counted."""
    served = predict_after_stop(api, "ONCE-D", 34)
    ddb = cloud.client("dynamodb")
    ddb.update_item(TableName=table(cloud, "PredictionsTable"), Key={"request_id": {"S": served["request_id"]}},
                    UpdateExpression="SET experiment_id = :e, experiment_variant = :v",
                    ExpressionAttributeValues={":e": {"S": "ghost"}, ":v": {"S": "control"}})
    status, _, body = call(api, "POST", "/feedback", {"request_id": served["request_id"], "label": 1})
    assert status == 404 and body["error"] == "experiment_not_found", body
    assert body["details"] == [{"field": "experiment_id", "problem": "no experiment 'ghost'"}]
    assert "the label is stored" in body["message"]
    item = logged(cloud, served["request_id"])
    assert item["label"] == {"N": "1"} and "outcome_recorded_at" not in item


def predict_after_stop(api: ApiServer, entity: str, seed: int) -> dict:
    status, _, served = call(api, "POST", "/predict", {"model": "yield", "entity_id": entity,
                                                       "features": explicit_features(seed)})
    assert status == 200 and served.get("experiment") is None, served
    return served
