"""AWS faults on demand (tests): the local endpoint answers chosen calls with throttling errors.

`LocalCloud.aws_faults` sits in front of moto's WSGI app. A test arms a rule, e.g.
``cloud.aws_faults.throttle("dynamodb", "PutItem", resource=table)``, and every matching call
from any function gets what AWS answers when it throttles - DynamoDB's 400
``ProvisionedThroughputExceededException``, S3's 503 ``SlowDown`` - so the functions' real SDK
retries, timeouts and error handling run, exactly as against AWS. A rule counts the calls it
refused (``rule.hits``: the SDK's attempts); `clear` disarms every rule. With no rule armed a
request goes straight to moto.

A call is matched by service (from the SigV4 credential scope), operation (DynamoDB's
``X-Amz-Target``; for S3 ``GetObject``/``PutObject``/``HeadObject``/``ListObjects`` from the
method and path) and, optionally, a resource name found in the request's path or body (a
table or bucket name).
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

_S3_OPERATIONS = {"PUT": "PutObject", "HEAD": "HeadObject", "DELETE": "DeleteObject", "POST": "PostObject"}
_CREDENTIAL = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/")

# What AWS answers when it throttles, per service: (HTTP status, content type, body).
_ANSWERS: dict[str, tuple[str, str, bytes]] = {
    "dynamodb": ("400 Bad Request", "application/x-amz-json-1.0", json.dumps({
        "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "message": "The level of configured provisioned throughput for the table was exceeded (localcloud fault)",
    }).encode()),
    "s3": ("503 Slow Down", "application/xml",
           b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>"
           b"<Message>Please reduce your request rate. (localcloud fault)</Message></Error>"),
}


@dataclass
class FaultRule:
    """Throttle the calls of ``service`` (and of ``operations``, and naming ``resource``)."""

    service: str
    operations: frozenset[str] | None = None
    resource: str | None = None
    hits: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def matches(self, service: str, operation: str, path: str, body: bytes) -> bool:
        if service != self.service or (self.operations is not None and operation not in self.operations):
            return False
        return self.resource is None or self.resource in path or self.resource.encode() in body

    def hit(self) -> None:
        with self._lock:
            self.hits += 1


def _operation(service: str, environ: dict[str, Any]) -> str:
    target = environ.get("HTTP_X_AMZ_TARGET") or ""
    if target:
        return target.rsplit(".", 1)[-1]
    if service == "s3":
        method = environ.get("REQUEST_METHOD", "GET")
        has_key = "/" in (environ.get("PATH_INFO") or "/").strip("/")  # path style: /bucket/key
        if method == "GET":
            return "GetObject" if has_key else "ListObjects"
        return _S3_OPERATIONS.get(method, method)
    return ""


class AwsFaults:
    """The rules armed on one LocalCloud's endpoint; `wsgi` wraps moto's app."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def throttle(self, service: str, operations: str | Iterable[str] | None = None, *,
                 resource: str | None = None) -> FaultRule:
        """Arm a rule: matching calls are throttled until `clear` (or `remove`)."""
        if service not in _ANSWERS:
            raise ValueError(f"no throttling answer for {service!r}; known: {sorted(_ANSWERS)}")
        ops = frozenset([operations] if isinstance(operations, str) else operations) if operations else None
        rule = FaultRule(service, ops, resource)
        with self._lock:
            self._rules.append(rule)
        return rule

    def remove(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules = [r for r in self._rules if r is not rule]

    def clear(self) -> None:
        with self._lock:
            self._rules = []

    def _match(self, environ: dict[str, Any]) -> FaultRule | None:
        rules = self._rules
        if not rules:
            return None
        found = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION") or "")
        if not found:
            return None
        service = found.group(1)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)  # moto reads it again
        operation = _operation(service, environ)
        path = (environ.get("HTTP_HOST") or "") + (environ.get("PATH_INFO") or "")
        for rule in rules:
            if rule.matches(service, operation, path, body):
                return rule
        return None

    def wsgi(self, app: Callable[..., Any]) -> Callable[..., Any]:
        """moto's WSGI app with the armed rules in front of it."""

        def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            rule = self._match(environ)
            if rule is None:
                return app(environ, start_response)
            rule.hit()
            status, content_type, body = _ANSWERS[rule.service]
            start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body))),
                                    ("x-amzn-RequestId", "localcloud-fault")])
            return [body]

        return application
