"""Which AWS errors are "throttled or unreachable", and the 503 every handler answers for them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyPersistenceLayerError
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from pynamodb.exceptions import GetError

from mlops.rest_responses import answer_errors, json_response
from mlops.unavailable import proxy_response, transient_cause, unavailable_error


def client_error(code: str, status: int = 400, **extra: Any) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status},
                        **extra}, "PutItem")


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "ThrottlingException",
                                  "RequestLimitExceeded", "SlowDown", "ServiceUnavailable", "InternalServerError"])
def test_throttling_codes_are_transient(code: str) -> None:
    exc = client_error(code)
    assert transient_cause(exc) is exc


def test_client_mistakes_and_conflicts_are_not_transient() -> None:
    for code in ("ConditionalCheckFailedException", "ValidationException", "ResourceNotFoundException",
                 "AccessDeniedException", "NoSuchKey"):
        assert transient_cause(client_error(code)) is None, code
    assert transient_cause(ValueError("x")) is None and transient_cause(None) is None


def test_5xx_connection_errors_and_throttled_transactions_are_transient() -> None:
    assert transient_cause(client_error("Whatever", 503)) is not None
    assert transient_cause(EndpointConnectionError(endpoint_url="http://x")) is not None
    assert transient_cause(ReadTimeoutError(endpoint_url="http://x")) is not None
    throttled = client_error("TransactionCanceledException", CancellationReasons=[{"Code": "None"},
                                                                                 {"Code": "ThrottlingError"}])
    conflicted = client_error("TransactionCanceledException", CancellationReasons=[{"Code": "ConditionalCheckFailed"}])
    assert transient_cause(throttled) is throttled and transient_cause(conflicted) is None


def test_wrapped_errors_are_found() -> None:
    cause = client_error("ProvisionedThroughputExceededException")
    assert transient_cause(GetError("Failed to get item", cause)) is cause  # pynamodb keeps it in .cause
    try:
        try:
            raise cause
        except ClientError as exc:
            raise IdempotencyPersistenceLayerError("Failed to save in progress record", exc) from exc
    except IdempotencyPersistenceLayerError as wrapped:
        assert transient_cause(wrapped) is cause


def test_the_503_answer() -> None:
    error = unavailable_error(client_error("SlowDown", 503))
    assert (error.status, error.code, error.details) == (503, "service_unavailable", [])
    assert "SlowDown on PutItem" in error.message
    answer = proxy_response(client_error("SlowDown", 503), {"X-Request-Id": "r1"})
    assert answer["statusCode"] == 503 and answer["headers"]["Retry-After"] == "2"
    assert answer["headers"]["X-Request-Id"] == "r1"
    assert json.loads(answer["body"])["error"] == "service_unavailable"


def _app(raised: Exception) -> APIGatewayRestResolver:
    app = APIGatewayRestResolver()
    answer_errors(app)

    @app.get("/thing")
    def thing():
        if raised is not None:
            raise raised
        return json_response(200, {})

    return app


EVENT = {"httpMethod": "GET", "path": "/thing", "resource": "/thing", "headers": {}, "requestContext": {}}


def test_a_resolver_answers_503_for_transient_errors_and_lets_others_through() -> None:
    answer = _app(GetError("Failed", client_error("ProvisionedThroughputExceededException"))).resolve(EVENT, None)
    assert answer["statusCode"] == 503 and answer["multiValueHeaders"]["Retry-After"] == ["2"]
    assert json.loads(answer["body"])["error"] == "service_unavailable"
    with pytest.raises(ClientError):  # as if no handler were registered: Lambda reports the error
        _app(client_error("ConditionalCheckFailedException")).resolve(EVENT, None)
