"""``Idempotency-Key`` for the API's POST routes: a retried request is applied once.

A client that sends ``Idempotency-Key: <1-255 printable characters>`` with a POST may send the
same request again (a timeout, a dropped connection) without applying it twice:

- the first request runs and its answer (status, headers, body) is stored in the idempotency
  table (Powertools idempotency on DynamoDB, records kept `EXPIRES_AFTER_S`);
- a retry with the same key and the same request gets that answer again, with the header
  ``Idempotent-Replayed: true``, and changes nothing;
- the same key with a different request (another path or body) is a 422
  ``idempotency_key_reused``; a retry while the first is still running is a 409
  ``request_in_progress`` with ``Retry-After``;
- without the header the route runs as before, and costs one header lookup.

Records are keyed on (function, route, caller's API key, key) and validated on a hash of the
method, path and body. Only answers below 500 are stored: after a 5xx, an error the route
raised, or a 503 because AWS was throttling, the record is removed and a retry runs again.
The machinery (Powertools' idempotency, which imports boto3) is loaded on the first request
that carries a key, so that a function's cold start does not pay for it.

Two ways in, one mechanism: :meth:`IdempotentRequests.middleware` is a Powertools middleware
for a resolver's POST routes (``app.use([idempotency.middleware])``); :meth:`IdempotentRequests.proxy`
wraps a handler that answers API Gateway proxy events itself (the inference function's dict
router). A function with POST routes that must not be idempotent (read-only ones, like
``POST /explain``) simply does not use it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from mlops.api_errors import ApiError
from mlops.config import Resources
from mlops.unavailable import transient_cause, unavailable_error

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
EXPIRES_AFTER_S = 24 * 3600
IN_PROGRESS_RETRY_AFTER_S = 1
_HEADER_LOWER = HEADER.lower()


def header_value(headers: Mapping[str, str] | None) -> str | None:
    """The ``Idempotency-Key`` of a proxy event's headers (names are case-insensitive)."""
    if not headers:
        return None
    value = headers.get(HEADER)
    if value is not None:
        return value
    for name, value in headers.items():
        if name.lower() == _HEADER_LOWER:
            return value
    return None


def key_problem(key: str) -> str | None:
    """What is wrong with a key, or None."""
    if not key.strip() or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        return f"must be 1 to {MAX_KEY_LENGTH} printable characters"
    return None


def request_hash(method: str, path: str, body: str | bytes | None) -> str:
    """What a retry must repeat exactly: method, path and body."""
    digest = hashlib.sha256(f"{method} {path}\n".encode())
    digest.update(body.encode() if isinstance(body, str) else (body or b""))
    return digest.hexdigest()


class _NotStored(Exception):
    """Carries an answer that must not be stored (a 5xx) out of Powertools' wrapper, which
    then removes the in-progress record."""

    def __init__(self, answer: dict[str, Any]) -> None:
        super().__init__(answer.get("status"))
        self.answer = answer


def _error(error: ApiError, retry_after: int | None = None) -> dict[str, Any]:
    headers = {"Retry-After": str(retry_after)} if retry_after else {}
    return {"status": error.status, "headers": headers, "body": error.body(), "error": True}


def invalid_key(problem: str) -> ApiError:
    return ApiError(400, "invalid_header", f"the {HEADER} header {problem}", [{"field": HEADER, "problem": problem}])


def in_progress() -> ApiError:
    return ApiError(409, "request_in_progress", f"a request with this {HEADER} is still being processed; retry "
                    f"after {IN_PROGRESS_RETRY_AFTER_S} s",
                    [{"field": HEADER, "problem": "a request with this key is in progress"}])


def key_reused() -> ApiError:
    return ApiError(422, "idempotency_key_reused", f"this {HEADER} was used with a different request",
                    [{"field": HEADER, "problem": "already used with a different path or body"}])


class IdempotentRequests:
    """The idempotency of one function's POST routes (one instance per function module)."""

    def __init__(self, table_name: str | None = None, *, expires_after_s: int = EXPIRES_AFTER_S,
                 methods: tuple[str, ...] = ("POST",), dynamodb: Any = None) -> None:
        self.methods = methods
        self.table_name = table_name or Resources.from_env().tables.get("idempotency")
        self.expires_after_s = expires_after_s
        self._dynamodb = dynamodb  # default: mlops.aws's client, created on first use
        self._once: Callable[..., dict[str, Any]] | None = None
        self._config: Any = None

    # ------------------------------------------------------------------------ the mechanism
    def _machinery(self) -> Callable[..., dict[str, Any]]:
        if self._once is None:
            if not self.table_name:
                raise RuntimeError("IDEMPOTENCY_TABLE is not set: give the function the idempotency table")
            from aws_lambda_powertools.utilities.idempotency import (
                DynamoDBPersistenceLayer,
                IdempotencyConfig,
                idempotent_function,
            )

            from mlops import aws

            self._config = IdempotencyConfig(event_key_jmespath="key", payload_validation_jmespath="request_sha256",
                                             expires_after_seconds=self.expires_after_s,
                                             response_hook=lambda answer, _record: {**answer, "replayed": True})
            persistence = DynamoDBPersistenceLayer(table_name=self.table_name,
                                                   boto3_client=self._dynamodb or aws.client("dynamodb"))

            @idempotent_function(data_keyword_argument="request", persistence_store=persistence, config=self._config)
            def once(request: dict[str, str], compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
                answer = compute()
                if answer["status"] >= 500:
                    raise _NotStored(answer)
                return answer

            self._once = once
        return self._once

    def run(self, key: str, *, scope: str, caller: str, fingerprint: str, context: Any,
            compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """``compute()`` once per (scope, caller, key): its answer ``{"status", "headers",
        "body"}``, or the stored one (``"replayed": True``), or an error answer
        (``"error": True``: 400 bad key, 409 in progress, 422 key reused, 503 throttled)."""
        problem = key_problem(key)
        if problem:
            return _error(invalid_key(problem))
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyPersistenceLayerError,
            IdempotencyValidationError,
        )

        once = self._machinery()
        if context is not None:
            self._config.register_lambda_context(context)  # an interrupted run's record expires with it
        request = {"key": f"{scope}|{caller}|{key}", "request_sha256": fingerprint}
        try:
            return once(request=request, compute=compute)
        except _NotStored as exc:
            return exc.answer
        except IdempotencyAlreadyInProgressError:
            return _error(in_progress(), IN_PROGRESS_RETRY_AFTER_S)
        except IdempotencyValidationError:
            return _error(key_reused())
        except IdempotencyPersistenceLayerError as exc:
            cause = transient_cause(exc)
            if cause is None:
                raise
            error = unavailable_error(cause)
            return _error(error, error.extra["retry_after_seconds"])

    # ------------------------------------------------------------ Powertools resolver routes
    def middleware(self, app: Any, next_middleware: Callable[[Any], Any]) -> Any:
        """Powertools middleware for a resolver's POST routes: ``app.use([requests.middleware])``.

        It runs after request validation (a refused request is not stored) and around the
        route and its response validation; other methods pass through."""
        event = app.current_event
        raw = event.raw_event
        key = header_value(raw.get("headers")) if raw.get("httpMethod") in self.methods else None
        if key is None:
            return next_middleware(app)
        first: list[Any] = []

        def compute() -> dict[str, Any]:
            response = next_middleware(app)
            first.append(response)
            return {"status": int(response.status_code), "headers": dict(response.headers or {}),
                    "body": _json_text(app, response.body)}

        identity = (raw.get("requestContext") or {}).get("identity") or {}
        answer = self.run(key, scope=f"{event.http_method} {raw.get('resource') or event.path}",
                          caller=identity.get("apiKeyId") or "", context=app.lambda_context,
                          fingerprint=request_hash(event.http_method, event.path, event.decoded_body),
                          compute=compute)
        if first and not answer.get("replayed"):
            return first[0]  # this request ran: its own response, untouched
        from aws_lambda_powertools.event_handler import Response, content_types

        headers = {k: v for k, v in answer["headers"].items() if k.lower() != "content-type"}
        if answer.get("replayed"):
            headers[REPLAYED_HEADER] = "true"
        body = answer["body"] if answer.get("error") else _json_value(answer["body"])
        return Response(status_code=answer["status"], content_type=content_types.APPLICATION_JSON,
                        body=body, headers=headers)

    # ----------------------------------------------------------- handlers of raw proxy events
    def proxy(self, event: Mapping[str, Any], context: Any,
              handle: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """``handle()`` (which answers ``event`` as an API Gateway proxy response) made
        idempotent when the event carries the header; without it, just ``handle()``."""
        key = header_value(event.get("headers"))
        if key is None:
            return handle()

        def compute() -> dict[str, Any]:
            response = handle()
            return {"status": int(response["statusCode"]), "headers": dict(response.get("headers") or {}),
                    "body": response.get("body"), "base64": bool(response.get("isBase64Encoded"))}

        body = event.get("body")
        if body is not None and event.get("isBase64Encoded"):
            import base64

            body = base64.b64decode(body)
        identity = (event.get("requestContext") or {}).get("identity") or {}
        method, path = str(event.get("httpMethod")), str(event.get("path"))
        answer = self.run(key, scope=f"{method} {event.get('resource') or path}", caller=identity.get("apiKeyId") or "",
                          fingerprint=request_hash(method, path, body), context=context, compute=compute)
        headers = dict(answer["headers"])
        if answer.get("error"):
            headers["Content-Type"] = "application/json"
            text = json.dumps(answer["body"], separators=(",", ":"))
            return {"statusCode": answer["status"], "headers": headers, "body": text, "isBase64Encoded": False}
        if answer.get("replayed"):
            headers[REPLAYED_HEADER] = "true"
        return {"statusCode": answer["status"], "headers": headers, "body": answer["body"],
                "isBase64Encoded": answer.get("base64", False)}


def _json_text(app: Any, body: Any) -> str:
    """A response body as JSON text, as the resolver would send it (the record stores the text,
    so that a replay keeps the first answer's key order)."""
    if isinstance(body, bytes):
        return body.decode()
    return body if isinstance(body, str) else app._serializer(body)


def _json_value(text: str) -> Any:
    """The stored text back as a value for a `Response` (which serializes it again)."""
    try:
        return json.loads(text)
    except ValueError:
        return text
