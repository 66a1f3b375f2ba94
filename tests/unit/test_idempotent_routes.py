"""Idempotency-Key on a resolver route and on a proxy handler, against moto's DynamoDB in process.

The integration tests (tests/integration/test_idempotency.py) send concurrent duplicates over
HTTP to the real functions; here the mechanism's answers are checked one by one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any

import boto3
import pytest
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi.params import Body
from botocore.exceptions import ClientError
from moto import mock_aws
from pydantic import BaseModel

from mlops.api_errors import ApiError
from mlops.api_validation import api_resolver
from mlops.idempotent_routes import REPLAYED_HEADER, IdempotentRequests, header_value, request_hash
from mlops.rest_responses import answer_errors, json_response

TABLE = "idempotency-unit"


class Thing(BaseModel):
    size: int


class Context:
    function_name = "unit"
    aws_request_id = "r"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


@pytest.fixture()
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "unit-fn")
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
        yield client


def _event(path: str, body: Any, key: str | None, *, api_key: str = "k1") -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["idempotency-key"] = key  # names are case-insensitive
    return {"httpMethod": "POST", "resource": "/things/{name}", "path": path, "headers": headers,
            "body": json.dumps(body), "isBase64Encoded": False, "pathParameters": {"name": path.rsplit("/", 1)[1]},
            "requestContext": {"requestId": "req", "identity": {"apiKeyId": api_key}}}


def _app(dynamodb: Any, calls: list[Any]) -> APIGatewayRestResolver:
    app = APIGatewayRestResolver()
    answer_errors(app)
    app.use([IdempotentRequests(TABLE, dynamodb=dynamodb).middleware])

    @app.delete("/things/<name>")
    def remove(name: str):
        calls.append(name)
        return json_response(200, {"n": len(calls)})

    @app.post("/things/<name>")
    def create(name: str):
        body = app.current_event.json_body
        if body.get("fail") == "invalid":
            raise ApiError.invalid({"size": "too big"})
        if body.get("fail") == "throttled":
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}},
                              "PutItem")
        calls.append(body)
        return json_response(201, {"name": name, "n": len(calls)}, {"X-Thing": name})

    return app


def _resolve(app: APIGatewayRestResolver, event: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    answer = app.resolve(event, Context())
    headers = {k: v[-1] for k, v in (answer.get("multiValueHeaders") or {}).items()}
    return answer["statusCode"], headers, json.loads(answer["body"])


def test_a_retry_replays_the_first_answer_and_runs_nothing(dynamodb: Any) -> None:
    calls: list[Any] = []
    app = _app(dynamodb, calls)
    first = _resolve(app, _event("/things/a", {"size": 1}, "key-1"))
    again = _resolve(app, _event("/things/a", {"size": 1}, "key-1"))
    assert first[0] == again[0] == 201 and first[2] == again[2] == {"name": "a", "n": 1}
    assert list(again[2]) == ["name", "n"]  # the first answer's text, key order included
    assert again[1][REPLAYED_HEADER] == "true" and again[1]["X-Thing"] == "a"
    assert REPLAYED_HEADER not in first[1]
    assert len(calls) == 1
    # another caller (API key) with the same key is another request
    assert _resolve(app, _event("/things/a", {"size": 1}, "key-1", api_key="k2"))[2]["n"] == 2
    # no key: every request runs
    assert _resolve(app, _event("/things/a", {"size": 1}, None))[2]["n"] == 3
    # other methods are not made idempotent
    for _ in range(2):
        assert REPLAYED_HEADER not in _resolve(app, {**_event("/things/a", {}, "key-1"), "httpMethod": "DELETE"})[1]
    assert len(calls) == 5


def test_the_same_key_with_another_body_or_path_is_refused(dynamodb: Any) -> None:
    calls: list[Any] = []
    app = _app(dynamodb, calls)
    assert _resolve(app, _event("/things/a", {"size": 1}, "key-2"))[0] == 201
    for event in (_event("/things/a", {"size": 2}, "key-2"), _event("/things/b", {"size": 1}, "key-2")):
        status, _, body = _resolve(app, event)
        assert status == 422 and body["error"] == "idempotency_key_reused"
        assert body["details"] == [{"field": "Idempotency-Key",
                                    "problem": "already used with a different path or body"}]
    assert len(calls) == 1


def test_bad_keys_are_a_400_naming_the_header(dynamodb: Any) -> None:
    app = _app(dynamodb, [])
    for key in ("", "  ", "x" * 256, "tab\there"):
        status, _, body = _resolve(app, _event("/things/a", {}, key))
        assert status == 400 and body["details"][0]["field"] == "Idempotency-Key", key


def test_errors_are_not_stored_so_a_retry_runs_again(dynamodb: Any) -> None:
    calls: list[Any] = []
    app = _app(dynamodb, calls)
    status, _, body = _resolve(app, _event("/things/a", {"fail": "invalid"}, "key-3"))
    assert status == 400 and body["details"] == [{"field": "size", "problem": "too big"}]
    status, headers, body = _resolve(app, _event("/things/a", {"fail": "throttled"}, "key-4"))
    assert status == 503 and headers["Retry-After"] == "2" and body["error"] == "service_unavailable"
    assert dynamodb.scan(TableName=TABLE)["Items"] == []  # nothing left in progress
    assert _resolve(app, _event("/things/a", {"ok": 1}, "key-5"))[0] == 201


def test_a_proxy_handler_is_made_idempotent_and_5xx_answers_are_not_stored(dynamodb: Any) -> None:
    idempotency = IdempotentRequests(TABLE, dynamodb=dynamodb)
    runs: list[int] = []
    event = _event("/things/p", {"size": 1}, "key-6")

    def handle(status: int = 200) -> dict[str, Any]:
        runs.append(status)
        return {"statusCode": status, "headers": {"Content-Type": "application/json", "X-Request-Id": f"r{len(runs)}"},
                "body": json.dumps({"run": len(runs)}), "isBase64Encoded": False}

    first = idempotency.proxy(event, Context(), handle)
    again = idempotency.proxy(event, Context(), handle)
    assert json.loads(first["body"]) == json.loads(again["body"]) == {"run": 1} and len(runs) == 1
    assert again["headers"]["X-Request-Id"] == "r1" and again["headers"][REPLAYED_HEADER] == "true"
    failing = _event("/things/p", {"size": 1}, "key-7")
    assert idempotency.proxy(failing, Context(), lambda: handle(500))["statusCode"] == 500
    assert idempotency.proxy(failing, Context(), handle)["statusCode"] == 200 and len(runs) == 3
    assert idempotency.proxy(_event("/things/p", {}, None), Context(), handle)["statusCode"] == 200


def test_a_duplicate_while_the_first_runs_is_a_409_with_retry_after(dynamodb: Any) -> None:
    idempotency = IdempotentRequests(TABLE, dynamodb=dynamodb)
    event = _event("/things/q", {"size": 1}, "key-8")
    inner: list[dict[str, Any]] = []

    def handle() -> dict[str, Any]:
        inner.append(idempotency.proxy(event, Context(), lambda: pytest.fail("ran twice")))
        return {"statusCode": 201, "headers": {}, "body": "{}"}

    assert idempotency.proxy(event, Context(), handle)["statusCode"] == 201
    assert inner[0]["statusCode"] == 409 and inner[0]["headers"]["Retry-After"] == "1"
    assert json.loads(inner[0]["body"])["error"] == "request_in_progress"


def test_header_lookup_and_request_hash() -> None:
    assert header_value(None) is None and header_value({"Other": "x"}) is None
    assert header_value({"IDEMPOTENCY-KEY": "k"}) == "k" and header_value({"Idempotency-Key": "j"}) == "j"
    assert request_hash("POST", "/a", '{"x":1}') == request_hash("POST", "/a", b'{"x":1}')
    assert request_hash("POST", "/a", "") != request_hash("POST", "/b", "")


def test_with_request_validation_a_refused_body_is_not_stored(dynamodb: Any) -> None:
    app = api_resolver()
    app.use([IdempotentRequests(TABLE, dynamodb=dynamodb).middleware])
    made: list[int] = []

    @app.post("/things/<name>")
    def create(name: str, body: Annotated[Thing, Body()]):
        made.append(body.size)
        return json_response(201, {"name": name, "size": body.size})

    refused = _resolve(app, _event("/things/v", {"size": "big"}, "key-9"))
    assert refused[0] == 400 and refused[2]["details"][0]["field"] == "body.size"
    assert dynamodb.scan(TableName=TABLE)["Items"] == []
    assert _resolve(app, _event("/things/v", {"size": 3}, "key-10"))[0] == 201
    again = _resolve(app, _event("/things/v", {"size": 3}, "key-10"))
    assert again[0] == 201 and again[1][REPLAYED_HEADER] == "true" and made == [3]
