"""Shadow mode end to end through `LocalCloud` + `ApiServer` over real HTTP: two trained versions,
one champion and one shadow; predictions and feedback over the API; then the analysis, invoked
directly (as the canary state machine does) and through GET /models/{name}/shadow-analysis.
Its numbers must equal scipy's and statsmodels' on the pairs the inference function logged.

One cloud for the module (template.yaml as it is, the inference caches off so alias moves are
seen at once); tests run in file order on the state the fixtures built.
"""

from __future__ import annotations

import http.client
import json
import random
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint
from yield_models import explicit_features, training_event
from stack_env import product_cloud

from localcloud.apigw import ApiServer
from localcloud.cloud import LocalCloud

ROOT = Path(__file__).resolve().parents[2]
KEY = "shadow-test-key-0123456789"
ADMIN = "shadow-admin-key-0123456789"
TIGHT = {"rel": 1e-12, "abs": 1e-12}


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    overrides = {"InferenceFunction": {"DEPLOYMENT_CACHE_SECONDS": "0", "MODEL_RETRY_SECONDS": "0"}}
    with product_cloud({"ApiKey": KEY, "AdminApiKey": ADMIN}, env_vars=overrides) as c:
        yield c


def call(api: ApiServer, method: str, path: str, body: Any = None, key: str = KEY) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=60)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers={"Content-Type": "application/json", "x-api-key": key})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.fixture(scope="module")
def traffic(cloud: LocalCloud, api: ApiServer) -> dict[str, Any]:
    """Versions 1 (champion) and 2 (shadow); 80 predictions over HTTP, feedback on 27 of them."""
    for seed, trees in ((0, 20), (2, 8)):
        answer = cloud.runtime.invoke("TrainFunction", json.dumps(training_event(seed=seed, n_estimators=trees)))
        assert answer.function_error is None, answer.payload[:2000]
    assert call(api, "POST", "/models/yield/aliases/champion", {"version": 1}, key=ADMIN)[0] == 200
    assert call(api, "POST", "/models/yield/aliases/shadow", {"version": 2}, key=ADMIN)[0] == 200
    start = datetime.now(timezone.utc) - timedelta(seconds=1)
    ids = []
    for batch in range(2):
        rows = [{"features": explicit_features(100 + 40 * batch + i)} for i in range(40)]
        status, body = call(api, "POST", "/predict/batch", {"model": "yield", "rows": rows})
        assert status == 200, body
        assert {p["version"] for p in body["predictions"]} == {1}  # the shadow never answers
        ids += [p["request_id"] for p in body["predictions"]]
    rng = random.Random(7)
    for rid in ids[::3]:
        status, body = call(api, "POST", "/feedback", {"request_id": rid, "label": rng.randint(0, 1)})
        assert status == 200, body
    return {"start": iso(start), "end": iso(datetime.now(timezone.utc) + timedelta(seconds=1)), "ids": ids}


def test_sample_events_on_an_empty_stack(cloud) -> None:
    """events/ShadowAnalysisFunction*.json, which make sam-check runs, answer deterministically
    before anything is registered or logged."""
    events = ROOT / "events"
    direct = cloud.runtime.invoke("ShadowAnalysisFunction", (events / "ShadowAnalysisFunction.json").read_bytes())
    assert direct.function_error is None, direct.payload[:2000]
    body = direct.json()
    assert body["analysis"]["n"] == 0 and body["rows"]["pairs"] == 0 and body["production_versions"] == [1]
    assert body["verdict"] == {"ok": False, "reasons": ["only 0 paired predictions; the policy needs at least 50"]}
    get = cloud.runtime.invoke("ShadowAnalysisFunction", (events / "ShadowAnalysisFunction-get.json").read_bytes()).json()
    assert (get["statusCode"], json.loads(get["body"])["error"]) == (404, "model_not_found")
    bad = cloud.runtime.invoke("ShadowAnalysisFunction",
                               (events / "ShadowAnalysisFunction-bad-request.json").read_bytes()).json()
    assert bad["statusCode"] == 400
    assert [d["field"] for d in json.loads(bad["body"])["details"]] == ["query.hours", "query.min_agreement"]


def logged_pairs(cloud: LocalCloud, ids: list[str]) -> dict[str, np.ndarray]:
    """The pairs as the log holds them (read from the base table, not through the function)."""
    client = cloud.client("dynamodb")
    table = cloud.stack.tables["PredictionsTable"].name
    items = [client.get_item(TableName=table, Key={"request_id": {"S": rid}})["Item"] for rid in ids]
    assert all(item["shadow"]["M"]["version"] == {"N": "2"} for item in items)
    labels = [int(item["label"]["N"]) if "label" in item else -1 for item in items]
    return {
        "prod_p": np.array([float(i["probability"]["N"]) for i in items]),
        "shadow_p": np.array([float(i["shadow"]["M"]["probability"]["N"]) for i in items]),
        "prod_l": np.array([int(i["predicted_label"]["N"]) for i in items]),
        "shadow_l": np.array([int(i["shadow"]["M"]["predicted_label"]["N"]) for i in items]),
        "truth": np.array(labels),
    }


def check_against_references(analysis: dict[str, Any], pairs: dict[str, np.ndarray]) -> None:
    prod_p, shadow_p, prod_l, shadow_l, truth = (pairs[k] for k in ("prod_p", "shadow_p", "prod_l", "shadow_l", "truth"))
    n = len(prod_p)
    agree = int(np.sum(prod_l == shadow_l))
    assert (analysis["n"], analysis["agreements"]) == (n, agree)
    low, high = proportion_confint(agree, n, alpha=0.05, method="wilson")
    assert analysis["agreement_ci"] == {"low": pytest.approx(low, **TIGHT), "high": pytest.approx(high, **TIGHT)}
    assert analysis["mean_difference"] == pytest.approx(np.mean(shadow_p - prod_p), **TIGHT)
    t = stats.ttest_rel(shadow_p, prod_p)
    assert analysis["paired_t"]["statistic"] == pytest.approx(t.statistic, **TIGHT)
    assert analysis["paired_t"]["p_value"] == pytest.approx(t.pvalue, **TIGHT)
    w = stats.wilcoxon(shadow_p, prod_p)
    assert analysis["wilcoxon"]["statistic"] == pytest.approx(w.statistic, **TIGHT)
    assert analysis["wilcoxon"]["p_value"] == pytest.approx(w.pvalue, **TIGHT)
    has = truth >= 0
    prod_ok, shadow_ok = prod_l[has] == truth[has], shadow_l[has] == truth[has]
    table = [[np.sum(prod_ok & shadow_ok), np.sum(prod_ok & ~shadow_ok)],
             [np.sum(~prod_ok & shadow_ok), np.sum(~prod_ok & ~shadow_ok)]]
    discordant = int(table[0][1] + table[1][0])
    ref = mcnemar(table, exact=discordant < 25, correction=True)
    assert analysis["labeled"] == int(has.sum()) == 27
    assert analysis["mcnemar"]["discordant"] == discordant
    assert analysis["mcnemar"]["statistic"] == pytest.approx(ref.statistic, **TIGHT)
    assert analysis["mcnemar"]["p_value"] == pytest.approx(ref.pvalue, **TIGHT)
    assert analysis["production_accuracy"] == pytest.approx(prod_ok.mean(), **TIGHT)
    assert analysis["shadow_accuracy"] == pytest.approx(shadow_ok.mean(), **TIGHT)


def test_direct_invoke_equals_scipy_on_the_logged_pairs(cloud, traffic) -> None:
    event = {"model": "yield", "shadow_version": 2, "start": traffic["start"], "end": traffic["end"],
             "policy": {"min_pairs": 50, "min_agreement": 0.5, "max_mean_shift": 1.0}}
    answer = cloud.runtime.invoke("ShadowAnalysisFunction", json.dumps(event))
    assert answer.function_error is None, answer.payload[:2000]
    body = answer.json()
    assert body["production_versions"] == [1]  # every registered version but the shadow
    assert body["rows"] == {"pairs": 80, "by_production_version": {"1": 80}, "shadow_errors": 0,
                            "error_samples": [], "truncated": False}
    pairs = logged_pairs(cloud, traffic["ids"])
    assert not np.array_equal(pairs["prod_p"], pairs["shadow_p"])  # two different models
    check_against_references(body["analysis"], pairs)
    assert body["verdict"] == {"ok": True, "reasons": []}
    assert body["policy"]["min_pairs"] == 50 and body["policy"]["alpha"] == 0.05

    strict = {**event, "policy": {"min_pairs": 81, "min_agreement": 0.5, "max_mean_shift": 1.0}}
    body = cloud.runtime.invoke("ShadowAnalysisFunction", json.dumps(strict)).json()
    assert body["verdict"] == {"ok": False, "reasons": ["only 80 paired predictions; the policy needs at least 81"]}

    before = {**event, "end": traffic["start"], "start": "2026-01-01T00:00:00Z"}
    body = cloud.runtime.invoke("ShadowAnalysisFunction", json.dumps(before)).json()
    assert body["analysis"]["n"] == 0 and body["verdict"]["ok"] is False


def test_the_route_reads_the_same_pairs(cloud, api, traffic) -> None:
    status, body = call(api, "GET", "/models/yield/shadow-analysis?hours=1&min_pairs=50&min_agreement=0.5"
                                    "&max_mean_shift=1")
    assert status == 200, body
    assert body["shadow_version"] == 2 and body["production_versions"] == [1]  # the shadow alias
    check_against_references(body["analysis"], logged_pairs(cloud, traffic["ids"]))
    assert body["verdict"]["ok"] is True and body["policy"]["min_pairs"] == 50
    assert body["analysis"]["n"] == 80
    status, strict = call(api, "GET", "/models/yield/shadow-analysis?shadow_version=2&hours=1&min_agreement=1")
    assert status == 200
    reasons = strict["verdict"]["reasons"]
    assert strict["verdict"]["ok"] is False and reasons[0] == "only 80 paired predictions; the policy needs at least 100"
    # min_agreement=1: any disagreement puts the Wilson upper bound below 1
    disagree = strict["analysis"]["agreements"] < 80
    assert any(r.startswith("label agreement") for r in reasons) is disagree


def test_bad_requests_name_the_field(cloud, api, traffic) -> None:
    status, body = call(api, "GET", "/models/yield/shadow-analysis?shadow_version=x&hours=0&min_agreement=2&colour=red")
    assert status == 400  # the query's shape first (pydantic), named by location
    assert {d["field"]: d["problem"] for d in body["details"]} == {
        "query.hours": "Input should be greater than 0", "query.min_agreement": "Input should be less than or equal to 1"}
    status, body = call(api, "GET", "/models/yield/shadow-analysis?shadow_version=x&hours=1&colour=red")
    assert status == 400  # then the domain checks
    assert {d["field"]: d["problem"] for d in body["details"]} == {
        "query.shadow_version": "expected a positive integer version", "query.colour": "unknown field"}
    status, body = call(api, "GET", "/models/nope/shadow-analysis?shadow_version=2")
    assert (status, body["error"]) == (404, "model_not_found")
    status, body = call(api, "GET", "/models/yield/shadow-analysis?shadow_version=9")
    assert (status, body["error"], body["details"]) == (404, "version_not_found",
                                                        [{"field": "shadow_version", "problem": "not found"}])

    answer = cloud.runtime.invoke("ShadowAnalysisFunction", json.dumps(
        {"model": "yield", "shadow_version": 0, "start": "yesterday", "policy": {"alpha": 2}}))
    assert answer.function_error == "Unhandled"
    error = answer.json()
    assert error["errorType"] == "ShadowInputError"
    for text in ("shadow_version: expected a positive integer version", "start:", "end: required",
                 "policy.alpha: expected a number strictly between 0 and 0.5"):
        assert text in error["errorMessage"]

    assert call(api, "DELETE", "/models/yield/aliases/shadow", key=ADMIN)[0] == 200
    status, body = call(api, "GET", "/models/yield/shadow-analysis")
    assert status == 400 and body["details"] == [{"field": "shadow_version",
                                                  "problem": "required: model 'yield' has no shadow alias"}]
