"""The Lambda Invoke API behind `localcloud start-lambda`.

What: `LambdaEndpoint` serves ``POST /2015-03-31/functions/{FunctionName}/invocations`` on
127.0.0.1, so that ``boto3.client("lambda", endpoint_url=...).invoke(...)``, the AWS CLI and
the AWS SDKs in other processes (tests, Step Functions, a notebook) run the template's
functions in `LambdaRuntime`, as `sam local start-lambda` lets them do with containers.

Why these details: SDK code written against this endpoint must behave the same against
Lambda, so the answers are Lambda's: ``RequestResponse`` is 200 with the payload,
``X-Amz-Executed-Version``, ``X-Amz-Function-Error: Unhandled`` with the error payload, and
the base64 log tail in ``X-Amz-Log-Result`` when ``X-Amz-Log-Type: Tail`` is asked;
``Event`` is 202 and runs in the background; ``DryRun`` is 204; a function that does not exist
(by name, logical id, full or partial ARN, with or without ``:$LATEST``) is 404
``ResourceNotFoundException``; a payload that is not JSON is 400
``InvalidRequestContentException``; errors carry ``x-amzn-ErrorType`` and a JSON body
``{"Type", "message"}`` so that botocore raises the named exception class.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import sys
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, unquote

from .apigw import FastHandler, HttpResponse, HttpService, LogWriter, stderr_writer
from .errors import LocalCloudError
from .runtime import Invocation, LambdaRuntime
from .template import ACCOUNT_ID, Function, Stack

API_VERSION = "2015-03-31"
SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024  # 6 MB for RequestResponse, requests and responses
ASYNC_PAYLOAD_LIMIT = 1024 * 1024  # 1 MB for Event
INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")
_INVOKE_PATH = re.compile(rf"^/{API_VERSION}/functions/(?P<name>[^/]+)/invocations/?$")


def lambda_error(status: int, error_type: str, message: str, kind: str = "User") -> HttpResponse:
    """An error answer of the Lambda service, as botocore parses it."""
    return HttpResponse(status, [
        ("Content-Type", "application/json"),
        ("x-amzn-RequestId", str(uuid.uuid4())),
        ("x-amzn-ErrorType", error_type),
    ], json.dumps({"Type": kind, "message": message}).encode())


def resolve_function(stack: Stack, name: str) -> tuple[Function | None, str, str | None]:
    """Find a function by name, logical id, full or partial ARN, each optionally qualified.

    Returns (the function or None, the unqualified ARN Lambda would report, the qualifier).
    """
    prefix = f"arn:aws:lambda:{stack.region}:{ACCOUNT_ID}:function:"
    if ":function:" in name:
        if name.startswith("arn:") and not name.startswith(prefix):
            head, _, rest = name.partition(":function:")
            short, _, qualifier = rest.partition(":")
            return None, f"{head}:function:{short}", qualifier or None
        rest = name.split(":function:", 1)[1]
    else:
        rest = name
    short, _, qualifier = rest.partition(":")
    found = next((fn for fn in stack.functions.values() if short in (fn.logical_id, fn.name)), None)
    arn = found.arn if found else f"{prefix}{short}"
    return found, arn, qualifier or None


def _parse_client_context(value: str | None) -> dict | None:
    if not value:
        return None
    try:
        data = json.loads(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"Client context must be a valid Base64-encoded JSON object: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("Client context must be a valid Base64-encoded JSON object")
    return data


def _check_payload(body: bytes) -> str | None:
    """None when the payload is JSON (or empty), else Lambda's parse error message."""
    if not body:
        return None
    try:
        json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return f"Could not parse request body into json: Could not parse payload into json: {exc}"
    return None


def _invocation_response(result: Invocation, tail: bool) -> HttpResponse:
    """The 200 answer of a RequestResponse invoke."""
    payload, function_error = result.payload, result.function_error
    if len(payload) > SYNC_PAYLOAD_LIMIT:
        function_error = "Unhandled"
        payload = json.dumps({
            "errorMessage": f"Response payload size ({len(payload)} bytes) exceeded maximum allowed "
                            f"payload size ({SYNC_PAYLOAD_LIMIT} bytes).",
            "errorType": "Function.ResponseSizeTooLarge",
        }).encode()
    headers = [
        ("Content-Type", "application/json"),
        ("x-amzn-RequestId", result.request_id),
        ("X-Amz-Executed-Version", "$LATEST"),
    ]
    if function_error:
        headers.append(("X-Amz-Function-Error", function_error))
    if tail:
        headers.append(("X-Amz-Log-Result", result.log_tail()))
    return HttpResponse(200, headers, payload)


class _LambdaHandler(FastHandler):
    def _serve(self) -> None:
        started = time.perf_counter()
        app: LambdaEndpoint = self.server.app  # type: ignore[assignment]
        path, query = self.split_target()
        try:
            body = self.read_body()
        except ValueError:
            self.close_connection = True
            self.send(lambda_error(400, "InvalidRequestContentException", "Could not read the request body"))
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            response = app.handle(self.command, path, query, headers, body)
        except Exception as exc:  # a bug here must answer, not kill the connection
            app.log_line(f"start-lambda: {type(exc).__name__}: {exc}")
            response = lambda_error(500, "ServiceException", f"{type(exc).__name__}: {exc}", "Service")
        # Logged before the answer goes out, so that a caller that got it also finds its line.
        app.log_request(self.client_address[0], self.requestline, response.status,
                        (time.perf_counter() - started) * 1000)
        self.send(response, head_only=self.command == "HEAD")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve


class LambdaEndpoint(HttpService):
    """`start-lambda`: the Lambda Invoke API for ``runtime``'s functions on ``host:port``.

    ``Event`` invocations run on a pool of ``runtime.max_concurrency`` threads. ``quiet``
    silences the one line per request on stderr.
    """

    service_name = "start-lambda"
    handler_class = _LambdaHandler

    def __init__(
        self,
        runtime: LambdaRuntime,
        host: str = "127.0.0.1",
        port: int = 3001,
        *,
        quiet: bool = False,
        log: LogWriter = stderr_writer,
    ) -> None:
        super().__init__(host, port)
        self.runtime = runtime
        self.stack = runtime.stack
        self.quiet = quiet
        self._log = log
        self._events: ThreadPoolExecutor | None = None

    def start(self) -> "LambdaEndpoint":
        if self._events is None:
            self._events = ThreadPoolExecutor(max_workers=self.runtime.max_concurrency,
                                              thread_name_prefix="lambda-event")
        super().start()
        return self

    def stop(self) -> None:
        super().stop()
        events, self._events = self._events, None
        if events is not None:
            events.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> "LambdaEndpoint":
        return self.start()

    def log_line(self, line: str) -> None:
        self._log(line)

    def log_request(self, client: str, requestline: str, status: int, ms: float) -> None:
        if not self.quiet:
            stamp = time.strftime("%d/%b/%Y %H:%M:%S")
            self._log(f'{client} - - [{stamp}] "{requestline}" {status} {ms:.2f} ms')

    def handle(self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        """Answer one request; ``headers`` are keyed by lower-case name."""
        route = _INVOKE_PATH.match(path)
        if route is None or method != "POST":
            return lambda_error(404, "UnknownOperationException", f"Unknown operation {method} {path}")
        fn, arn, qualifier = resolve_function(self.stack, unquote(route.group("name")))
        qualifier = (parse_qs(query).get("Qualifier") or [qualifier])[0]
        if fn is None or qualifier not in (None, "$LATEST"):
            return lambda_error(404, "ResourceNotFoundException",
                                f"Function not found: {arn}{':' + qualifier if qualifier else ''}")
        kind = headers.get("x-amz-invocation-type") or "RequestResponse"
        if kind not in INVOCATION_TYPES:
            return lambda_error(400, "InvalidParameterValueException",
                                f"1 validation error detected: Value '{kind}' at 'invocationType' failed to "
                                f"satisfy constraint: Member must satisfy enum value set: {list(INVOCATION_TYPES)}")
        if kind == "DryRun":
            return HttpResponse(204, [("x-amzn-RequestId", str(uuid.uuid4()))])
        limit = SYNC_PAYLOAD_LIMIT if kind == "RequestResponse" else ASYNC_PAYLOAD_LIMIT
        if len(body) > limit:
            return lambda_error(413, "RequestTooLargeException",
                                f"Request must be smaller than {limit} bytes for the InvokeFunction operation")
        problem = _check_payload(body)
        if problem:
            return lambda_error(400, "InvalidRequestContentException", problem)
        try:
            client_context = _parse_client_context(headers.get("x-amz-client-context"))
        except ValueError as exc:
            return lambda_error(400, "InvalidRequestContentException", str(exc))
        if kind == "Event":
            return self._invoke_async(fn, body, client_context)
        tail = (headers.get("x-amz-log-type") or "None") == "Tail"
        try:
            result = self.runtime.invoke(fn.logical_id, body, capture_logs=tail, client_context=client_context)
        except LocalCloudError as exc:
            return lambda_error(500, "ServiceException", str(exc), "Service")
        return _invocation_response(result, tail)

    def _invoke_async(self, fn: Function, body: bytes, client_context: dict | None) -> HttpResponse:
        if self._events is None:
            return lambda_error(500, "ServiceException", "the endpoint is not started", "Service")
        self._events.submit(self._run_event, fn.logical_id, body, client_context)
        return HttpResponse(202, [("x-amzn-RequestId", str(uuid.uuid4()))])

    def _run_event(self, function_id: str, body: bytes, client_context: dict | None) -> None:
        """An asynchronous invoke: its logs go to the runtime's log sink, its answer nowhere."""
        try:
            self.runtime.invoke(function_id, body, client_context=client_context)
        except LocalCloudError as exc:
            print(f"start-lambda: Event invoke of {function_id} failed: {exc}", file=sys.stderr)
