"""When AWS is throttling or unreachable: which errors those are, and the 503 a client gets.

A store call that DynamoDB or S3 throttles, or that cannot reach them, is retried by botocore
(standard mode, `mlops.aws.MAX_ATTEMPTS` attempts with backoff); when the retries are spent the
error reaches the handler. It is not the client's fault and not a bug, so the answer is a 503
``service_unavailable`` with a ``Retry-After`` header and the standard error body
(`mlops.api_errors`), never a 500 or a hang. :func:`transient_cause` recognises such an error,
also when another library wrapped it (pynamodb's ``GetError``, Powertools idempotency's
persistence error, ...: their ``cause``/``__cause__`` chain is followed).

Handlers write their changes in one conditional write or transaction, or write last, so that a
request refused this way has changed nothing and can be sent again.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError, ConnectionError as BotoConnectionError, HTTPClientError

from mlops.api_errors import ApiError

RETRY_AFTER_S = 2
#: Error codes that mean "too many requests" or "the service is briefly unwell", across
#: DynamoDB, S3, Step Functions and the other services the functions call.
TRANSIENT_CODES = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "Throttling", "ThrottledException",
    "RequestLimitExceeded", "RequestThrottled", "RequestThrottledException", "TooManyRequestsException",
    "SlowDown", "ServiceUnavailable", "ServiceUnavailableException", "InternalServerError",
    "InternalError", "InternalFailure", "TransactionInProgressException", "LimitExceededException",
})
_THROTTLED_REASONS = ("ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded")


def _code(exc: ClientError) -> str:
    return str((exc.response or {}).get("Error", {}).get("Code") or "")


def is_transient(exc: BaseException) -> bool:
    """Throttling, a service-side 5xx, or no connection (after botocore's own retries)."""
    if isinstance(exc, ClientError):
        status = (exc.response or {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
        if _code(exc) == "TransactionCanceledException":  # a transaction cancelled for throttling
            reasons = (exc.response or {}).get("CancellationReasons") or []
            return any(r.get("Code") in _THROTTLED_REASONS for r in reasons if isinstance(r, dict))
        return _code(exc) in TRANSIENT_CODES or status in (500, 502, 503, 504)
    return isinstance(exc, (BotoConnectionError, HTTPClientError))


def transient_cause(exc: BaseException | None) -> BaseException | None:
    """``exc`` or the error it wraps when that is transient (see :func:`is_transient`), else None."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if is_transient(exc):
            return exc
        wrapped = getattr(exc, "cause", None)
        exc = wrapped if isinstance(wrapped, BaseException) else (exc.__cause__ or exc.__context__)
    return None


def unavailable_error(cause: BaseException) -> ApiError:
    """The 503 for a transient error (``cause`` as returned by :func:`transient_cause`)."""
    if isinstance(cause, ClientError):
        what = f"AWS is throttling or unavailable ({_code(cause) or 'error'} on {cause.operation_name})"
    else:
        what = f"an AWS service could not be reached ({type(cause).__name__})"
    return ApiError(503, "service_unavailable", f"{what}; nothing was changed, retry after {RETRY_AFTER_S} s",
                    [], {"retry_after_seconds": RETRY_AFTER_S})


def retry_after_headers() -> dict[str, str]:
    """The headers of a 503 answer."""
    return {"Retry-After": str(RETRY_AFTER_S)}


def proxy_response(cause: BaseException, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The 503 as an API Gateway proxy answer (for handlers without a resolver)."""
    return {"statusCode": 503,
            "headers": {"Content-Type": "application/json", **(headers or {}), **retry_after_headers()},
            "body": json.dumps(unavailable_error(cause).body(), separators=(",", ":")),
            "isBase64Encoded": False}
