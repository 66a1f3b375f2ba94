"""Request validation for every resolver-based handler: one resolver factory, one error shape.

`api_resolver()` is the `APIGatewayRestResolver` each function's ``app`` is: Powertools'
OpenAPI validation is on (routes declare their path, query and body parameters with pydantic
models from `mlops.api_models`, which is also what `GET /openapi.json` documents), and

- a request Powertools refuses (`RequestValidationError`) is answered 400 ``invalid_request``
  in the API's one error shape (`mlops.api_errors.ApiError`), each field named by where it
  was: ``body.label``, ``body.rows[2].entity_id``, ``query.hours``, ``path.version``
  (``body`` alone when the body is missing, not JSON or not an object);
- `mlops.api_limits.request_refusal` runs before routing: a non-JSON body is a 415, a body
  over 1 MiB a 413.

Domain checks pydantic cannot express (per-feature-view schemas, a model's registered
features) stay in the domain parsers the routes call after validation.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from mlops.api_errors import ApiError
from mlops.api_limits import locate_body, request_refusal

_LOCATIONS = {"body": "body", "query": "query", "path": "path", "header": "header"}
_PROBLEMS = {
    "missing": "required",
    "extra_forbidden": "unknown field",
    "json_invalid": "not valid JSON",
}


def field_name(loc: Sequence[Any]) -> str:
    """``("body", "rows", 2, "entity_id")`` -> ``body.rows[2].entity_id``.

    >>> field_name(("query", "from"))
    'query.from'
    >>> field_name(("body", "rows", 2, "entity_id"))
    'body.rows[2].entity_id'
    >>> field_name(("body", 0))
    'body'
    """
    parts = list(loc)
    if parts and parts[0] == "body" and len(parts) == 2 and isinstance(parts[1], int):
        return "body"  # Powertools' json_invalid points at a character offset
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += ("." if name else "") + str(part)
    return name or "body"


def validation_error(errors: Sequence[dict[str, Any]]) -> ApiError:
    """Pydantic/Powertools validation errors as the API's 400 ``invalid_request``."""
    problems: list[tuple[str, str]] = []
    for err in errors:
        name = field_name(err.get("loc") or ())
        problem = _PROBLEMS.get(err.get("type", ""), err.get("msg") or "invalid")
        if name == "body" and err.get("type") in ("model_attributes_type", "dict_type", "model_type"):
            problem = "expected a JSON object"
        if (name, problem) not in problems:
            problems.append((name, problem))
    return ApiError.invalid(problems)


def _proxy(error: ApiError) -> dict[str, Any]:
    return {"statusCode": error.status, "headers": {"Content-Type": content_types.APPLICATION_JSON},
            "body": json.dumps(error.body(), separators=(",", ":")), "isBase64Encoded": False}


def _located(response: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """A 400/422 answer with each field named by its location (`mlops.api_limits.locate_body`),
    whichever check (pydantic or a domain parser) found it."""
    if response.get("statusCode") not in (400, 422) or response.get("isBase64Encoded"):
        return response
    try:
        body = json.loads(response.get("body") or "")
    except ValueError:
        return response
    if isinstance(body, dict) and isinstance(body.get("details"), list):
        response["body"] = json.dumps(locate_body(body, event), separators=(",", ":"))
    return response


def _lower_media_type(event: dict[str, Any]) -> None:
    """``Application/JSON`` -> ``application/json``: media types are case-insensitive, Powertools'
    body parser compares them case-sensitively."""
    for key in ("headers", "multiValueHeaders"):
        headers = event.get(key) or {}
        for name, value in headers.items():
            if name.lower() == "content-type":
                headers[name] = [v.lower() for v in value] if isinstance(value, list) else str(value).lower()


class ApiResolver(APIGatewayRestResolver):
    """`APIGatewayRestResolver` with validation on, the API's limits and its error shape."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(enable_validation=True, **kwargs)

        @self.exception_handler(RequestValidationError)
        def _invalid(exc: RequestValidationError) -> Response:
            error = validation_error(exc.errors())
            return Response(status_code=error.status, content_type=content_types.APPLICATION_JSON, body=error.body())

    def resolve(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        if isinstance(event, dict) and "httpMethod" in event:
            refused = request_refusal(event)
            if refused is not None:
                return _proxy(refused)
            _lower_media_type(event)
            return _located(super().resolve(event, context), event)
        return super().resolve(event, context)


def api_resolver(**kwargs: Any) -> ApiResolver:
    """The resolver every HTTP function uses (``app = api_resolver()``)."""
    return ApiResolver(**kwargs)
