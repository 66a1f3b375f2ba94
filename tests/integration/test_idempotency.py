"""Idempotency-Key end to end: concurrent duplicates over real HTTP are applied exactly once.

template.yaml in a LocalCloud, the API on 127.0.0.1; each test fires the same request with the
same key from several threads at once (each its own connection; two environments of a
function run side by side, the other requests wait for one as Lambda's reserved concurrency
would make them, which keeps cold starts on a loaded two-core machine under the init
timeout) and checks what a client and the stores see: every answer is the first answer (``Idempotent-Replayed: true`` on replays) or a 409 ``request_in_progress``
with ``Retry-After``, and the change was made once - one prediction log row, one feedback
join, one alias move in the audit trail. Then a sequential retry replays, and the same key
with another body is a 422 that changes nothing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from stack_env import http_json, product_cloud, train_champion
from yield_models import explicit_features, training_event

from localcloud.apigw import ApiServer
from localcloud.cloud import LocalCloud

KEY = "idempotency-test-key-0123456789"
ADMIN = "idempotency-admin-key-0123456789"
COPIES = 5


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    overrides = {"InferenceFunction": {"DEPLOYMENT_CACHE_SECONDS": "0", "AUDIT_PREDICTION_SAMPLE_RATE": "0"}}
    with product_cloud({"ApiKey": KEY, "AdminApiKey": ADMIN}, env_vars=overrides, log_sink=lambda f, line: None,
                       max_concurrency=2) as c:
        yield c


@pytest.fixture(scope="module")
def champion(cloud: LocalCloud, api: ApiServer) -> dict:
    return train_champion(cloud, api, ADMIN, training_event(seed=0, n_estimators=8))


def call(api: ApiServer, method: str, path: str, body: Any = None, *, key: str = KEY,
         idempotency_key: str | None = None) -> tuple[int, dict[str, str], Any]:
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else None
    return http_json(api, method, path, body, key=key, headers=headers)


def concurrently(api: ApiServer, method: str, path: str, body: Any, idempotency_key: str, *,
                 key: str = KEY) -> list[tuple[int, dict[str, str], Any]]:
    answers: list[tuple[int, dict[str, str], Any]] = []
    lock = threading.Lock()
    start = threading.Barrier(COPIES)

    def send() -> None:
        start.wait()
        answer = call(api, method, path, body, key=key, idempotency_key=idempotency_key)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=send) for _ in range(COPIES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def first_answer(answers: list[tuple[int, dict[str, str], Any]], status: int) -> Any:
    """Every answer is the same first answer, or a 409 in progress with Retry-After."""
    done = [a for a in answers if a[0] != 409]
    assert done and {a[0] for a in done} == {status}, answers
    assert len({json.dumps(a[2], sort_keys=True) for a in done}) == 1, done
    assert sum(a[1].get("idempotent-replayed") != "true" for a in done) <= 1  # one ran, the others replayed
    for status_code, headers, body in answers:
        if status_code == 409:
            assert body["error"] == "request_in_progress" and headers["retry-after"] == "1"
            assert body["details"][0]["field"] == "Idempotency-Key"
    return done[0][2]


def scan(cloud: LocalCloud, logical_id: str, **filters: str) -> list[dict]:
    items = cloud.client("dynamodb").scan(TableName=cloud.stack.tables[logical_id].name)["Items"]
    return [i for i in items if all(i.get(k, {}).get("S") == v for k, v in filters.items())]


def test_concurrent_predictions_with_one_key_are_scored_and_logged_once(cloud, api, champion) -> None:
    body = {"model": "yield", "entity_id": "IDEM-P1", "features": explicit_features(11)}
    answers = concurrently(api, "POST", "/predict", body, "predict-1")
    prediction = first_answer(answers, 200)
    assert prediction["version"] == 1
    rows = scan(cloud, "PredictionsTable", entity_id="IDEM-P1")
    assert [r["request_id"]["S"] for r in rows] == [prediction["request_id"]]
    again = call(api, "POST", "/predict", body, idempotency_key="predict-1")
    assert again[0] == 200 and again[2] == prediction and again[1]["idempotent-replayed"] == "true"
    assert again[1]["x-request-id"] == prediction["request_id"]
    other = call(api, "POST", "/predict", {**body, "features": explicit_features(12)}, idempotency_key="predict-1")
    assert other[0] == 422 and other[2]["error"] == "idempotency_key_reused"
    assert other[2]["details"][0]["field"] == "Idempotency-Key"
    # without a key a retry is a new prediction, logged again
    assert call(api, "POST", "/predict", body)[0] == 200
    assert len(scan(cloud, "PredictionsTable", entity_id="IDEM-P1")) == 2


def test_concurrent_feedback_with_one_key_joins_once_and_every_answer_is_the_first(cloud, api, champion) -> None:
    predicted = call(api, "POST", "/predict", {"model": "yield", "entity_id": "IDEM-F1",
                                               "features": explicit_features(13)})
    rid = predicted[2]["request_id"]
    answers = concurrently(api, "POST", "/feedback", {"request_id": rid, "label": 1}, "feedback-1")
    joined = first_answer(answers, 200)
    # the first join's answer, never the "duplicate" answer a second join would give
    assert joined["duplicate"] is False and joined["request_id"] == rid
    item = scan(cloud, "PredictionsTable", request_id=rid)[0]
    assert item["label"] == {"N": "1"} and item["feedback_at"]["S"] == joined["prediction"]["feedback_at"]
    # a new key is a new request: the join itself is idempotent and says so
    assert call(api, "POST", "/feedback", {"request_id": rid, "label": 1}, idempotency_key="feedback-2")[2]["duplicate"]


def test_concurrent_alias_moves_with_one_key_are_audited_once(cloud, api, champion) -> None:
    body = {"version": 1, "reason": "idempotency test"}
    answers = concurrently(api, "POST", "/models/yield/aliases/candidate", body, "alias-1", key=ADMIN)
    moved = first_answer(answers, 200)
    assert moved["version"] == 1 and moved["alias"] == "candidate"
    audit = call(api, "GET", "/audit?entity=alias:yield/candidate", key=ADMIN)
    assert audit[0] == 200, audit
    actions = [r["action"] for r in audit[2]["records"]]
    assert actions == ["alias.moved"], audit[2]
    history = call(api, "GET", "/models/yield/aliases/candidate", key=ADMIN)
    assert history[0] == 200 and history[2]["version"] == 1
    # the same key for another move is refused and moves nothing
    other = call(api, "POST", "/models/yield/aliases/candidate", {"version": 1, "reason": "other"}, key=ADMIN,
                 idempotency_key="alias-1")
    assert other[0] == 422 and other[2]["error"] == "idempotency_key_reused"
    assert [r["action"] for r in call(api, "GET", "/audit?entity=alias:yield/candidate", key=ADMIN)[2]["records"]] \
        == ["alias.moved"]


def test_keys_are_scoped_per_caller_and_bad_keys_are_refused(cloud, api, champion) -> None:
    body = {"request_id": "no-such-prediction", "label": 1}
    assert call(api, "POST", "/feedback", body, idempotency_key="x" * 256)[2]["details"] == [
        {"field": "Idempotency-Key", "problem": "must be 1 to 255 printable characters"}]
    assert call(api, "POST", "/predict", {"model": "yield", "features": explicit_features()},
                idempotency_key=" ")[0] == 400
    # errors (here a 404) are not stored: the same key may be used again once the request is fixed
    assert call(api, "POST", "/feedback", body, idempotency_key="scoped-1")[0] == 404
    rid = call(api, "POST", "/predict", {"model": "yield", "features": explicit_features(14)})[2]["request_id"]
    fixed = call(api, "POST", "/feedback", {"request_id": rid, "label": 0}, idempotency_key="scoped-2")
    assert fixed[0] == 200 and "idempotent-replayed" not in fixed[1]
    # the admin key's "scoped-2" is another key than the caller's
    admin = call(api, "POST", "/feedback", {"request_id": rid, "label": 0}, key=ADMIN, idempotency_key="scoped-2")
    assert admin[0] == 200 and admin[2]["duplicate"] is True and "idempotent-replayed" not in admin[1]
