"""Experiments end to end through `LocalCloud` + `ApiServer` over real HTTP: create (and bad
input), predictions routed by the experiment and logged with it, feedback -> outcome totals
and bandit rewards (once per prediction), the analysis equal to scipy/statsmodels on the
logged data, the SRM check blocking a conclusion, stop, and a bandit steering traffic.

One cloud for the module (caches off: DEPLOYMENT/EXPERIMENT_CACHE_SECONDS 0). Two versions of
"yield" are trained once; tests run in file order and build on each other where noted.
"""

from __future__ import annotations

import http.client
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest
from yield_models import START, STORED, device_row, fails, training_event
from stack_env import product_cloud

from localcloud.apigw import ApiServer
from localcloud.cloud import LocalCloud

ROOT = Path(__file__).resolve().parents[2]
KEY = "experiments-test-key-0123456789"
ADMIN = "experiments-admin-key-0123456789"


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    overrides = {"InferenceFunction": {"DEPLOYMENT_CACHE_SECONDS": "0", "MODEL_RETRY_SECONDS": "0",
                                       "EXPERIMENT_CACHE_SECONDS": "0"}}
    with product_cloud({"ApiKey": KEY, "AdminApiKey": ADMIN}, env_vars=overrides,
                       log_sink=lambda fid, line: None) as c:
        yield c


@pytest.fixture(scope="module")
def versions(cloud: LocalCloud, api: ApiServer) -> list[int]:
    """Versions 1 and 2 of "yield" (different data), version 1 the champion."""
    out = []
    for seed, trees in ((0, 20), (2, 12)):
        answer = cloud.runtime.invoke("TrainFunction", json.dumps(training_event(seed=seed, n=300, n_estimators=trees)))
        assert answer.function_error is None, answer.payload[:2000]
        out.append(answer.json()["version"])
    assert call(api, "POST", "/models/yield/aliases/champion", {"version": out[0]}).status == 200
    return out


class Answer:
    def __init__(self, status: int, body: bytes) -> None:
        self.status, self.raw = status, body

    @property
    def body(self) -> Any:
        return json.loads(self.raw)

    def fields(self) -> dict[str, str]:
        return {d["field"]: d["problem"] for d in self.body["details"]}


def call(api: ApiServer, method: str, path: str, body: Any = None, *, key: str = ADMIN) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=60)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body).encode(),
                     headers={"Content-Type": "application/json", "x-api-key": key})
        resp = conn.getresponse()
        return Answer(resp.status, resp.read())
    finally:
        conn.close()


def experiment(experiment_id: str, versions: list[int], **extra: Any) -> dict[str, Any]:
    return {"experiment_id": experiment_id, "model": "yield", "mde": 0.05,
            "variants": [{"name": "control", "weight": 1, "model_version": str(versions[0])},
                         {"name": "treatment", "weight": 1, "model_version": str(versions[1])}],
            "primary_metric": {"name": "correct", "kind": "proportion", "baseline": 0.8},
            "guardrail_metrics": [{"name": "brier", "kind": "mean", "direction": "decrease"},
                                  {"name": "log_loss", "kind": "mean", "direction": "decrease"}], **extra}


def devices(prefix: str, n: int, seed: int) -> list[tuple[str, dict[str, float], int]]:
    """(entity id, explicit features, true label) for ``n`` devices."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        row = device_row(rng, f"{prefix}{i}", START)
        out.append((f"{prefix}{i}", {k: row[k] for k in STORED}, fails(rng, row)))
    return out


def predict_batch(api: ApiServer, rows: list[tuple[str, dict[str, float], int]]) -> list[dict]:
    answer = call(api, "POST", "/predict/batch", {"model": "yield", "rows": [
        {"entity_id": e, "features": f, "request": {"vdd_setpoint": 1.2}} for e, f, _ in rows]}, key=KEY)
    assert answer.status == 200, answer.raw
    return answer.body["predictions"]


def logged_experiment_rows(cloud: LocalCloud, experiment_id: str) -> list[dict]:
    ddb = cloud.client("dynamodb")
    table = cloud.stack.tables["PredictionsTable"].name
    items, kwargs = [], {"TableName": table}
    while True:
        page = ddb.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return [i for i in items if i.get("experiment_id", {}).get("S") == experiment_id]


def comparison(analysis: dict, metric: str) -> dict:
    [row] = [r for r in analysis["comparisons"] if r["metric"] == metric]
    return row


# ------------------------------------------------------------------------------ bad input
def test_bad_definitions_are_refused_naming_the_field(api: ApiServer, versions: list[int]) -> None:
    bad = call(api, "POST", "/experiments", {
        **experiment("bad", versions, alpha=0.9, power=1.5, colour="red"),
        "variants": [{"name": "control", "weight": 1, "model_version": "1"},
                     {"name": "treatment", "weight": 0, "model_version": "2"}]})
    # the static shape is the pydantic model's (ExperimentBody): every problem at once, named by location
    assert bad.status == 400 and bad.body["error"] == "invalid_request"
    assert set(bad.fields()) == {"body.colour", "body.variants[1].weight", "body.alpha", "body.power"}
    assert bad.fields()["body.variants[1].weight"] == "Input should be greater than 0"
    no_model = call(api, "POST", "/experiments", {k: v for k, v in experiment("bad", versions).items() if k != "model"})
    assert no_model.status == 400 and no_model.fields() == {"body.model": "required"}
    cross_field = call(api, "POST", "/experiments", experiment("bad", versions, control="nobody"))
    assert cross_field.status == 400 and cross_field.body["error"] == "invalid_experiment"  # the domain check
    missing_version = call(api, "POST", "/experiments", {
        **experiment("bad", versions), "variants": [{"name": "control", "weight": 1, "model_version": "1"},
                                                    {"name": "treatment", "weight": 1, "model_version": "99"}]})
    assert missing_version.status == 400 and set(missing_version.fields()) == {"body.variants[1].model_version"}
    bad_bandit = call(api, "POST", "/experiments", experiment("bad", versions, bandit={"policy": "ucb1",
                                                                                      "params": {"floor": 0.9}}))
    assert bad_bandit.status == 400 and set(bad_bandit.fields()) == {"body.bandit.params.floor"}
    not_json = call(api, "POST", "/experiments", "[1, 2]")
    assert not_json.status == 400
    for path in ("/experiments/nope", "/experiments/nope/analysis"):
        missing = call(api, "GET", path)
        assert missing.status == 404 and missing.fields() == {"experiment_id": "no experiment 'nope'"}
    assert call(api, "POST", "/experiments/nope/stop").status == 404
    assert call(api, "GET", "/experiments/-bad-").status == 400
    assert call(api, "GET", "/experiments").body == {"experiments": []}  # nothing was half-written


# ------------------------------------------------------------------------------ A/B
def test_ab_experiment_routes_logs_and_analyses_like_scipy(cloud: LocalCloud, api: ApiServer,
                                                           versions: list[int]) -> None:
    created = call(api, "POST", "/experiments", experiment("ab-1", versions, sequential=False))
    assert created.status == 201, created.raw
    assert created.body["experiment"]["state"] == "running"
    assert created.body["plan"]["required"]["treatment"] > 0 and created.body["plan"]["duration"] is None
    assert call(api, "POST", "/experiments", experiment("ab-1", versions)).status == 409
    busy = call(api, "POST", "/experiments", experiment("ab-2", versions))
    assert busy.status == 409 and set(busy.fields()) == {"model"}

    data = devices("AB-", 80, seed=11)
    answers = predict_batch(api, data[:40]) + predict_batch(api, data[40:])
    assert {a["experiment"]["id"] for a in answers} == {"ab-1"}
    variants = {a["entity_id"]: a["variant"] for a in answers}
    assert set(variants.values()) == {"control", "treatment"}
    assert all(a["version"] == versions[0 if a["variant"] == "control" else 1] for a in answers)
    again = predict_batch(api, data[:10])
    assert all(variants[a["entity_id"]] == a["variant"] for a in again)  # sticky per entity

    for answer, (_, _, label) in zip(answers, data):
        fed = call(api, "POST", "/feedback", {"request_id": answer["request_id"], "label": label}, key=KEY)
        assert fed.status == 200 and fed.body["experiment"]["variant"] == answer["variant"], fed.raw
    retry = call(api, "POST", "/feedback", {"request_id": answers[0]["request_id"], "label": data[0][2]}, key=KEY)
    assert retry.body["duplicate"] is True and "experiment" not in retry.body  # counted once

    # The reference: the same numbers computed from the prediction log.
    served = logged_experiment_rows(cloud, "ab-1")
    logged = [i for i in served if "label" in i]
    assert len(logged) == 80
    arrays: dict[str, dict[str, np.ndarray]] = {}
    for v in ("control", "treatment"):
        mine = [i for i in logged if i["experiment_variant"]["S"] == v]
        p = np.array([float(i["probability"]["N"]) for i in mine])
        y = np.array([int(i["label"]["N"]) for i in mine])
        pred = np.array([int(i["predicted_label"]["N"]) for i in mine])
        q = np.clip(p, 1e-15, 1 - 1e-15)
        arrays[v] = {"correct": (pred == y).astype(float), "brier": (p - y) ** 2,
                     "log_loss": -(y * np.log(q) + (1 - y) * np.log(1 - q))}
    exposures = {v: sum(1 for i in served if i["experiment_variant"]["S"] == v) for v in ("control", "treatment")}
    assert sum(exposures.values()) == 90  # 80 + the 10 repeated entities

    analysis = call(api, "GET", "/experiments/ab-1/analysis")
    assert analysis.status == 200, analysis.raw
    result = analysis.body
    assert result["totals"]["assignments"] == exposures
    srm = stats.chisquare([exposures["control"], exposures["treatment"]])
    assert result["srm"]["p_value"] == pytest.approx(srm.pvalue, rel=1e-9) and result["srm"]["alert"] is False

    c, t = arrays["control"], arrays["treatment"]
    prop = comparison(result, "correct")
    level = prop["ci_level"]
    assert level == pytest.approx(1 - 0.05 / 3)
    x = [int(t["correct"].sum()), int(c["correct"].sum())]
    n = [len(t["correct"]), len(c["correct"])]
    z, pz = proportions_ztest(x, n)
    low, high = confint_proportions_2indep(x[0], n[0], x[1], n[1], compare="diff", method="newcomb",
                                           alpha=1 - level)
    assert (prop["n_control"], prop["n_variant"]) == (n[1], n[0])
    assert prop["statistic"] == pytest.approx(z, rel=1e-9) and prop["p_value"] == pytest.approx(pz, rel=1e-9)
    assert prop["ci"] == pytest.approx([low, high], rel=1e-9)
    assert prop["lift"] == pytest.approx((x[0] / n[0]) / (x[1] / n[1]) - 1, rel=1e-12)

    p_values = [prop["p_value"]]
    for metric in ("brier", "log_loss"):
        row = comparison(result, metric)
        ref = stats.ttest_ind(t[metric], c[metric], equal_var=False)
        ci = ref.confidence_interval(confidence_level=level)
        assert row["statistic"] == pytest.approx(ref.statistic, rel=1e-8)
        assert row["p_value"] == pytest.approx(ref.pvalue, rel=1e-8)
        assert row["df"] == pytest.approx(ref.df, rel=1e-8)
        assert row["ci"] == pytest.approx([ci.low, ci.high], rel=1e-8)
        assert row["control_value"] == pytest.approx(c[metric].mean(), rel=1e-12)
        assert row["lift"] == pytest.approx(t[metric].mean() / c[metric].mean() - 1, rel=1e-9)
        p_values.append(row["p_value"])
    holm = multipletests(p_values, method="holm")[1]
    adjusted = [comparison(result, m)["p_value_adjusted"] for m in ("correct", "brier", "log_loss")]
    assert adjusted == pytest.approx(list(holm), rel=1e-12)
    # a fixed-horizon test before its planned size concludes nothing
    assert all(r["significant"] is None for r in result["comparisons"])
    assert result["decision"]["status"] == "keep_running"

    detail = call(api, "GET", "/experiments/ab-1")
    assert detail.body["traffic"]["exposures"] == exposures and detail.body["traffic"]["source"] == "observed"
    assert detail.body["plan"]["duration"]["days"] > 0
    planned = call(api, "GET", "/experiments/ab-1?daily_entities=1000").body["plan"]["duration"]
    required = detail.body["plan"]["required"]
    assert planned["days"] == pytest.approx(max(required.values()) / 500)
    assert call(api, "GET", "/experiments/ab-1?daily_entities=-3").fields() == {
        "query.daily_entities": "Input should be greater than 0"}
    assert call(api, "GET", "/experiments/ab-1?daily_entities=inf").fields() == {
        "query.daily_entities": "expected a finite positive number of entities per day"}


def test_stop_ends_routing(api: ApiServer, versions: list[int]) -> None:
    stopped = call(api, "POST", "/experiments/ab-1/stop", {"reason": "enough"})
    assert stopped.status == 200 and stopped.body["status"] == "stopped" and stopped.body["stop_reason"] == "enough"
    assert call(api, "POST", "/experiments/ab-1/stop").body["stopped_at"] == stopped.body["stopped_at"]
    after = predict_batch(api, devices("AB-", 10, seed=11))
    assert {(a["variant"], a["version"]) for a in after} == {("champion", versions[0])}
    assert all("experiment" not in a for a in after)
    listed = call(api, "GET", "/experiments").body["experiments"]
    assert [(e["experiment_id"], e["state"]) for e in listed] == [("ab-1", "stopped")]


def test_sample_ratio_mismatch_blocks_a_conclusion(cloud: LocalCloud, api: ApiServer, versions: list[int]) -> None:
    """A month of totals in which the treatment clearly wins: the analysis ships it; then a
    logging bug shows as 10% extra treatment exposures, and the same data conclude nothing."""
    assert call(api, "POST", "/experiments", experiment("srm-1", versions, sequential=False)).status == 201
    ddb = cloud.client("dynamodb")
    table = cloud.stack.tables["ExperimentsTable"].name
    for variant, correct in (("control", 8000), ("treatment", 8600)):
        ddb.put_item(TableName=table, Item={
            "pk": {"S": "EXP#srm-1"}, "sk": {"S": f"VARIANT#{variant}"}, "exposures": {"N": "10000"},
            "n_correct": {"N": "10000"}, "sum_correct": {"N": str(correct)}, "sumsq_correct": {"N": str(correct)},
            **{f"{k}_{m}": {"N": v} for m in ("brier", "log_loss") for k, v in
               (("n", "10000"), ("sum", "1500"), ("sumsq", "400"))}})
    clean = call(api, "GET", "/experiments/srm-1/analysis").body
    assert clean["srm"]["alert"] is False
    assert clean["decision"]["status"] == "ship" and clean["decision"]["winner"] == "treatment"
    assert comparison(clean, "correct")["significant"] is True

    ddb.update_item(TableName=table, Key={"pk": {"S": "EXP#srm-1"}, "sk": {"S": "VARIANT#treatment"}},
                    UpdateExpression="ADD exposures :n", ExpressionAttributeValues={":n": {"N": "1000"}})
    blocked = call(api, "GET", "/experiments/srm-1/analysis").body
    ref = stats.chisquare([10000, 11000])
    assert blocked["srm"]["alert"] is True and blocked["srm"]["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)
    assert blocked["decision"]["status"] == "blocked" and blocked["decision"]["winner"] is None
    assert all(r["significant"] is None and r["outcome"] == "blocked" for r in blocked["comparisons"])
    assert comparison(blocked, "correct")["p_value"] == comparison(clean, "correct")["p_value"]  # numbers still shown
    assert call(api, "POST", "/experiments/srm-1/stop").status == 200


# ------------------------------------------------------------------------------ bandit
def test_bandit_rewards_from_feedback_steer_the_router(cloud: LocalCloud, api: ApiServer, versions: list[int]) -> None:
    body = experiment("bandit-1", versions, bandit={"policy": "thompson_beta", "params": {"floor": 0.05}})
    created = call(api, "POST", "/experiments", body)
    assert created.status == 201, created.raw
    assert created.body["bandit"]["version"] == 0 and created.body["bandit"]["probabilities"] == pytest.approx(
        {"control": 0.5, "treatment": 0.5}, abs=0.02)

    data = devices("BANDIT-", 40, seed=5)
    answers = predict_batch(api, data)
    assert {a["experiment"]["id"] for a in answers} == {"bandit-1"}
    assert {a["variant"] for a in answers} == {"control", "treatment"}
    # Feedback that makes the treatment always right and the control always wrong.
    expected = {"control": [0, 0], "treatment": [0, 0]}  # [n, successes]
    version = 0
    for a in answers:
        right = a["variant"] == "treatment"
        label = a["label"] if right else 1 - a["label"]
        fed = call(api, "POST", "/feedback", {"request_id": a["request_id"], "label": label}, key=KEY)
        assert fed.status == 200, fed.raw
        assert fed.body["experiment"]["reward"] == float(right)
        assert fed.body["experiment"]["bandit_version"] == version + 1  # one update per feedback
        version += 1
        expected[a["variant"]][0] += 1
        expected[a["variant"]][1] += int(right)
        if version <= 3:
            again = call(api, "POST", "/feedback", {"request_id": a["request_id"], "label": label}, key=KEY)
            assert again.body["duplicate"] is True and "experiment" not in again.body
    state = call(api, "GET", "/experiments/bandit-1").body["bandit"]
    assert state["version"] == 40
    assert {v: [arm["n"], arm["successes"]] for v, arm in state["arms"].items()} == expected
    assert state["probabilities"]["treatment"] > 0.9

    steered = predict_batch(api, devices("LATER-", 80, seed=6))
    on_control = sum(a["variant"] == "control" for a in steered)
    # control now gets about the floor (5%): P(more than 16 of 80) < 1e-6
    assert on_control <= 16 and stats.binomtest(on_control, 80, 0.5).pvalue < 1e-6
    logged = {i["request_id"]["S"]: i["experiment_variant"]["S"] for i in logged_experiment_rows(cloud, "bandit-1")}
    assert logged == {a["request_id"]: a["variant"] for a in answers + steered}
    analysis = call(api, "GET", "/experiments/bandit-1/analysis").body
    assert analysis["srm"]["applicable"] is False and analysis["srm"]["alert"] is False
    assert analysis["bandit"]["arms"] == state["arms"]
    assert analysis["totals"]["assignments"]["treatment"] == sum(a["variant"] == "treatment" for a in answers + steered)
    assert comparison(analysis, "correct")["treatment_value"] == 1.0


def test_aa_mode_serves_one_version_in_every_variant(api: ApiServer, versions: list[int]) -> None:
    assert call(api, "POST", "/experiments/bandit-1/stop").status == 200
    two = experiment("aa-1", versions, mode="aa")
    refused = call(api, "POST", "/experiments", two)
    assert refused.status == 400 and set(refused.fields()) == {"body.variants[1].model_version"}
    same = {**two, "variants": [{"name": "a1", "weight": 1, "model_version": str(versions[0])},
                                {"name": "a2", "weight": 1, "model_version": str(versions[0])}]}
    assert call(api, "POST", "/experiments", same).status == 201
    answers = predict_batch(api, devices("AA-", 30, seed=9))
    assert {a["variant"] for a in answers} == {"a1", "a2"} and {a["version"] for a in answers} == {versions[0]}
    for a, (_, _, label) in zip(answers, devices("AA-", 30, seed=9)):
        assert call(api, "POST", "/feedback", {"request_id": a["request_id"], "label": label}, key=KEY).status == 200
    analysis = call(api, "GET", "/experiments/aa-1/analysis").body
    assert analysis["mode"] == "aa" and analysis["srm"]["applicable"] is True
    assert analysis["decision"]["status"] == "keep_running"  # nothing differs; a pass needs the planned size
    assert "A/A check" in analysis["decision"]["reasons"][0]
    assert comparison(analysis, "correct")["n_control"] + comparison(analysis, "correct")["n_variant"] == 30
