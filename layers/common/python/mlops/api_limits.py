"""The API's request limits, checked before any route runs: JSON bodies only, at most 1 MiB.

A request with a body must say ``Content-Type: application/json`` (parameters such as
``; charset=utf-8`` are fine; a request that sends no Content-Type at all is read as JSON, as
API Gateway's console and ``curl -d`` clients often omit it) - any other media type is a 415
``unsupported_media_type``. A body over `MAX_BODY_BYTES` (after base64 decoding) is a 413
``payload_too_large``. Batch limits stay with the routes that take batches
(``POST /predict/batch``: `mlops.models.predict_request.MAX_BATCH_ROWS` rows, more is a 400
``batch_too_large``).

Pure and dependency-free: the resolver-based handlers (`mlops.api_validation`) and the
InferenceFunction's dict router (its cold start must stay small) both call `request_refusal`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from mlops.api_errors import ApiError

#: The largest request body the API reads (1 MiB); API Gateway's own limit is 10 MB.
MAX_BODY_BYTES = 1024 * 1024
JSON_MEDIA_TYPE = "application/json"


def _header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value
    return None


def body_bytes(event: Mapping[str, Any]) -> int:
    """The size of a proxy event's body in bytes (decoded when base64-encoded)."""
    raw = event.get("body")
    if not raw:
        return 0
    if event.get("isBase64Encoded"):
        try:
            return len(base64.b64decode(raw))
        except (binascii.Error, ValueError):
            return len(raw)
    return len(raw.encode("utf-8")) if isinstance(raw, str) else len(raw)


LOCATIONS = ("body", "query", "path", "header")
_HEAD = re.compile(r"[.\[]")


def locate_fields(details: list[dict[str, Any]], event: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Name each field of a 400/422 by where the request had it, as validation does:
    ``label`` -> ``body.label``, ``hours`` -> ``query.hours``, ``version`` -> ``path.version``.

    Domain checks (run after the pydantic models) name fields bare; this gives every error of
    the API the same names. A field that is already located, names a header, or was nowhere in
    the request (a missing query parameter) is left as it is; a field missing from a body is
    in the body. Feature rows' rejections (``{"row": 2, "field": "humidity"}``, as in a 207)
    keep their shape.

    >>> event = {"pathParameters": {"name": "m"}, "queryStringParameters": {"hours": "x"}, "body": "{}"}
    >>> [d["field"] for d in locate_fields([{"field": "name"}, {"field": "hours"}, {"field": "rows[2].id"},
    ...                                     {"field": "query.at"}, {"field": "body"}], event)]
    ['path.name', 'query.hours', 'body.rows[2].id', 'query.at', 'body']
    """
    path = event.get("pathParameters") or {}
    query = event.get("queryStringParameters") or {}
    headers = {str(k).lower() for k in (event.get("headers") or {})}
    has_body = bool(event.get("body"))
    located = []
    for detail in details:
        name = detail.get("field")
        if "row" not in detail and isinstance(name, str) and name not in LOCATIONS and name.split(".")[0] not in LOCATIONS \
                and name.lower() not in headers:
            head = _HEAD.split(name, maxsplit=1)[0]
            where = "path" if head in path else "query" if head in query else "body" if has_body else None
            if where is not None:
                detail = {**detail, "field": f"{where}.{name}"}
        located.append(detail)
    return located


def locate_body(body: dict[str, Any], event: Mapping[str, Any]) -> dict[str, Any]:
    """A 400/422 error body with its fields located (`locate_fields`); a message that was the
    default list of ``field: problem`` (`ApiError.invalid`) names the located fields too.

    >>> locate_body({"error": "invalid_request", "message": "label: expected 0 or 1",
    ...              "details": [{"field": "label", "problem": "expected 0 or 1"}]}, {"body": "{}"})["message"]
    'body.label: expected 0 or 1'
    """
    details = body.get("details")
    if not isinstance(details, list):
        return body
    located = locate_fields(details, event)

    def listed(items: list[dict[str, Any]]) -> str:
        return "; ".join(f"{d.get('field')}: {d.get('problem')}" for d in items)

    out = {**body, "details": located}
    if details and body.get("message") == listed(details):
        out["message"] = listed(located)
    return out


def located_body(error: ApiError, event: Mapping[str, Any]) -> dict[str, Any]:
    """An error's body with its 400/422 fields located (`locate_body`)."""
    body = error.body()
    return locate_body(body, event) if error.status in (400, 422) else body


def request_refusal(event: Mapping[str, Any], max_body_bytes: int = MAX_BODY_BYTES) -> ApiError | None:
    """Why a proxy event is refused before routing (415 or 413), or None.

    >>> request_refusal({"body": '{"a": 1}', "headers": {"content-type": "application/json; charset=utf-8"}})
    >>> request_refusal({"body": "a=1", "headers": {"Content-Type": "text/plain"}}).status
    415
    >>> request_refusal({"body": "x" * 11, "headers": {}}, max_body_bytes=10).body()["error"]
    'payload_too_large'
    """
    if not event.get("body"):
        return None
    content_type = _header(event.get("headers"), "content-type")
    if content_type is not None and content_type.split(";")[0].strip().lower() != JSON_MEDIA_TYPE:
        return ApiError(415, "unsupported_media_type",
                        f"request bodies must be {JSON_MEDIA_TYPE}, got {content_type!r}",
                        [{"field": "Content-Type", "problem": f"expected {JSON_MEDIA_TYPE}"}])
    size = body_bytes(event)
    if size > max_body_bytes:
        return ApiError(413, "payload_too_large",
                        f"the request body is {size} bytes; the maximum is {max_body_bytes}",
                        [{"field": "body", "problem": f"larger than {max_body_bytes} bytes"}])
    return None
