"""Powertools side of the API's answers: JSON responses and `ApiError` handling for a resolver.

`mlops.api_errors` holds the error shape and stays framework-free; this module turns it into
Powertools `Response` objects, so each handler wires its errors with one call.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from botocore.exceptions import BotoCoreError, ClientError

from mlops.api_errors import ApiError
from mlops.unavailable import retry_after_headers, transient_cause, unavailable_error

_log = logging.getLogger(__name__)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer with the given status."""
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers)


def error_response(exc: ApiError) -> Response:
    """An `ApiError` as its answer; a 503 (try again) carries ``Retry-After``."""
    return json_response(exc.status, exc.body(), retry_after_headers() if exc.status == 503 else None)


def answer_errors(app: APIGatewayRestResolver,
                  converters: dict[type[Exception], Callable[[Any], ApiError]] | None = None) -> None:
    """Answer `ApiError` with its status and body; other listed exception types are first
    converted to an `ApiError` (e.g. a store's domain errors). AWS throttling and connection
    errors are answered too (`answer_unavailable`)."""
    answer_unavailable(app)

    app.exception_handler(ApiError)(error_response)
    for exc_type, convert in (converters or {}).items():
        app.exception_handler(exc_type)(lambda exc, convert=convert: error_response(convert(exc)))


def unavailable(exc: Exception) -> Response:
    """The 503 (with ``Retry-After``) for a throttling or connection error, possibly wrapped;
    any other exception is raised again, as if no handler had caught it."""
    cause = transient_cause(exc)
    if cause is None:
        raise exc
    _log.warning("AWS throttling or unavailable: answering 503", exc_info=cause)
    error = unavailable_error(cause)
    return json_response(error.status, error.body(), retry_after_headers())


def answer_unavailable(app: APIGatewayRestResolver) -> None:
    """Answer AWS throttling, 5xx and connection errors that outlived botocore's retries with
    a 503 ``service_unavailable`` (`mlops.unavailable`). pynamodb's errors wrap botocore's:
    they are handled too when the function uses pynamodb (imported before this call)."""
    types: list[type[Exception]] = [ClientError, BotoCoreError]
    pynamodb_errors = sys.modules.get("pynamodb.exceptions")
    if pynamodb_errors is not None:
        types.append(pynamodb_errors.PynamoDBException)
    for exc_type in types:
        app.exception_handler(exc_type)(unavailable)
