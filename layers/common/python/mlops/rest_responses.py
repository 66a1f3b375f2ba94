"""Powertools side of the API's answers: JSON responses and `ApiError` handling for a resolver.

`mlops.api_errors` holds the error shape and stays framework-free; this module turns it into
Powertools `Response` objects, so each handler wires its errors with one call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types

from mlops.api_errors import ApiError


def json_response(status: int, body: Any) -> Response:
    """A JSON answer with the given status."""
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def answer_errors(app: APIGatewayRestResolver,
                  converters: dict[type[Exception], Callable[[Any], ApiError]] | None = None) -> None:
    """Answer `ApiError` with its status and body; other listed exception types are first
    converted to an `ApiError` (e.g. a store's domain errors)."""

    def api_error(exc: ApiError) -> Response:
        return json_response(exc.status, exc.body())

    app.exception_handler(ApiError)(api_error)
    for exc_type, convert in (converters or {}).items():
        app.exception_handler(exc_type)(lambda exc, convert=convert: api_error(convert(exc)))
