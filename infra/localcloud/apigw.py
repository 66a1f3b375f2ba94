"""The local API Gateway behind `localcloud start-api`: a REST API with Lambda proxy integration.

What: `ApiServer` is an HTTP server on 127.0.0.1 that serves every ``Api`` event of the
template. Each request is matched to a route as API Gateway matches resources, checked for
an API key where the route requires one, turned into the REST proxy event (payload v1) that
API Gateway sends, run in `LambdaRuntime`, and the function's proxy response is mapped back
to HTTP. The pure pieces (`RouteTable`, `build_event`, `proxy_response`) are separate so
that the event shapes and the routing rules are unit-tested without a socket.

Why these rules: code that passes here must behave the same behind the real API Gateway, so
the edge cases follow AWS rather than convenience: an unknown path or method is 403 ``Missing
Authentication Token``; a missing or wrong key, or a key that no usage plan admits to the
route's API stage, is 403 ``Forbidden`` and never reaches the function; a function error, a timeout or a malformed proxy response is 502 ``Internal server
error``; past the 29 s integration timeout the caller gets 504 while the function runs on.
Where AWS and `sam local start-api` differ, AWS wins: ``path`` keeps the request's percent
encoding (path parameters are decoded), text bodies are not base64-encoded, a trailing slash
reaches the same resource, and a proxy response with keys API Gateway does not know is 502.

Performance: the server is stdlib `ThreadingHTTPServer` speaking HTTP/1.1 with keep-alive;
each response goes out in one write with Nagle disabled, so the local layers stay well under a
millisecond on top of the function's own time (benchmarks/bench_api.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import socket
import socketserver
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

from .errors import LocalCloudError
from .runtime import Invocation, LambdaRuntime
from .template import ACCOUNT_ID, Api, Route, Stack

INTEGRATION_TIMEOUT_S = 29.0  # API Gateway's maximum integration timeout for REST APIs
PROXY_RESPONSE_KEYS = frozenset({"statusCode", "body", "headers", "multiValueHeaders", "isBase64Encoded"})
# Headers that describe the connection, not the response: API Gateway sets its own.
_HOP_BY_HOP = frozenset({"connection", "content-length", "transfer-encoding", "keep-alive"})
_MAX_BODY = 10 * 1024 * 1024  # API Gateway's payload limit for REST APIs (10 MB)

LogWriter = Callable[[str], None]

# -------------------------------------------------------------------------------- routing

_LITERAL, _PARAM, _GREEDY = 0, 1, 2  # the rank of a segment: lower is more specific


def split_path(path: str) -> list[str]:
    """Segments of a path as API Gateway sees them: ``/a/b/`` and ``/a/b`` are the same."""
    trimmed = path[1:] if path.startswith("/") else path
    if trimmed.endswith("/"):
        trimmed = trimmed[:-1]
    return trimmed.split("/") if trimmed else []


@dataclass(frozen=True)
class _Pattern:
    """A resource path such as ``/features/{entity_id}`` or ``/files/{proxy+}``."""

    template: str
    segments: tuple[tuple[int, str], ...]  # (rank, literal text or parameter name)

    @classmethod
    def parse(cls, template: str) -> "_Pattern":
        segments = []
        parts = split_path(template)
        for i, part in enumerate(parts):
            if part.startswith("{") and part.endswith("+}"):
                if i != len(parts) - 1:
                    raise LocalCloudError(f"route {template}: a greedy parameter {part} must be the last segment")
                segments.append((_GREEDY, part[1:-2]))
            elif part.startswith("{") and part.endswith("}"):
                segments.append((_PARAM, part[1:-1]))
            else:
                segments.append((_LITERAL, part))
        return cls(template, tuple(segments))

    @property
    def rank(self) -> tuple[int, ...]:
        return tuple(kind for kind, _ in self.segments)

    def match(self, parts: Sequence[str]) -> dict[str, str] | None:
        """The decoded path parameters when ``parts`` is under this resource, else None."""
        params: dict[str, str] = {}
        for i, (kind, text) in enumerate(self.segments):
            if kind == _GREEDY:
                rest = parts[i:]
                if not rest or not "".join(rest):
                    return None
                params[text] = unquote("/".join(rest))
                return params
            if i >= len(parts):
                return None
            if kind == _LITERAL:
                if parts[i] != text:
                    return None
            elif not parts[i]:
                return None
            else:
                params[text] = unquote(parts[i])
        return params if len(parts) == len(self.segments) else None


@dataclass(frozen=True)
class RouteMatch:
    route: Route
    path_parameters: dict[str, str] | None  # None when the resource has no parameters


class RouteTable:
    """API Gateway's resource matching for a set of routes.

    The resource is chosen first, the most specific that contains the path (segment by
    segment, a literal beats ``{param}`` beats ``{proxy+}``); then the method on that resource,
    the exact method before ``ANY``. A resource without the method is no match (403 on AWS),
    even when a less specific greedy resource would take it.
    """

    def __init__(self, routes: Iterable[Route]) -> None:
        resources: dict[str, tuple[_Pattern, dict[str, Route]]] = {}
        for route in routes:
            pattern = _Pattern.parse(route.path)
            key = "/" + "/".join(text if kind == _LITERAL else "{}" for kind, text in pattern.segments)
            _, methods = resources.setdefault(key, (pattern, {}))
            methods.setdefault(route.method.upper(), route)
        self._resources = sorted(resources.values(), key=lambda item: item[0].rank)

    def match(self, method: str, path: str) -> RouteMatch | None:
        parts = split_path(path)
        for pattern, methods in self._resources:
            params = pattern.match(parts)
            if params is None:
                continue
            route = methods.get(method.upper()) or methods.get("ANY")
            return RouteMatch(route, params or None) if route else None
        return None


# -------------------------------------------------------------------------------- events


@dataclass(frozen=True)
class HttpRequest:
    """One HTTP request as the gateway received it."""

    method: str
    raw_path: str  # as sent, still percent-encoded, without the query string
    query_string: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    source_ip: str = "127.0.0.1"
    protocol: str = "HTTP/1.1"
    server_port: int = 3000

    def header(self, name: str) -> str | None:
        """The last value of a header, by case-insensitive name."""
        lname = name.lower()
        value = None
        for key, val in self.headers:
            if key.lower() == lname:
                value = val
        return value


@dataclass(frozen=True)
class KeyIdentity:
    """The API key a request carried: its value and its id (``identity.apiKey``/``apiKeyId``)."""

    value: str
    key_id: str


def is_binary(content_type: str | None, binary_media_types: Iterable[str]) -> bool:
    """Whether API Gateway treats a payload of ``content_type`` as binary.

    Media types may be written with SAM's ``~1`` for ``/`` and may use ``type/*`` or ``*/*``.
    """
    if not content_type:
        return False
    mime = content_type.split(";", 1)[0].strip().lower()
    for pattern in binary_media_types:
        p = pattern.replace("~1", "/").strip().lower()
        if p in ("*/*", mime) or (p.endswith("/*") and mime.startswith(p[:-1])):
            return True
    return False


def _group(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str] | None, dict[str, list[str]] | None]:
    """Single-value (the last wins) and multi-value maps; None when there is nothing."""
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for key, value in pairs:
        single[key] = value
        multi.setdefault(key, []).append(value)
    return (single or None), (multi or None)


def _event_headers(request: HttpRequest) -> list[tuple[str, str]]:
    """The request's headers (names grouped case-insensitively) plus the ``X-Forwarded-*``
    headers API Gateway adds."""
    spelled: dict[str, str] = {}
    pairs: list[tuple[str, str]] = []
    forwarded_for = None
    for key, value in request.headers:
        lower = key.lower()
        if lower in ("x-forwarded-port", "x-forwarded-proto"):
            continue
        if lower == "x-forwarded-for":
            forwarded_for = value
            continue
        pairs.append((spelled.setdefault(lower, key), value))
    chain = f"{forwarded_for}, {request.source_ip}" if forwarded_for else request.source_ip
    pairs += [
        ("X-Forwarded-For", chain),
        ("X-Forwarded-Port", str(request.server_port)),
        ("X-Forwarded-Proto", "http"),
    ]
    return pairs


def _resource_id(template: str) -> str:
    """A stable 6-character resource id, like API Gateway's."""
    return hashlib.sha1(template.encode()).hexdigest()[:6]


def build_event(
    request: HttpRequest,
    match: RouteMatch,
    api: Api,
    *,
    api_key: KeyIdentity | None = None,
    request_id: str | None = None,
    now: float | None = None,
    account_id: str = ACCOUNT_ID,
) -> dict:
    """The REST API Lambda proxy event (payload format 1.0) for one request, as AWS builds it."""
    now = time.time() if now is None else now
    request_id = request_id or str(uuid.uuid4())
    headers, multi_headers = _group(_event_headers(request))
    query, multi_query = _group(parse_qsl(request.query_string, keep_blank_values=True))
    binary = bool(request.body) and is_binary(request.header("content-type"), api.binary_media_types)
    if not request.body:
        body = None
    elif binary:
        body = base64.b64encode(request.body).decode("ascii")
    else:
        body = request.body.decode("utf-8", "replace")
    identity = {
        "cognitoIdentityPoolId": None,
        "accountId": None,
        "cognitoIdentityId": None,
        "caller": None,
        "sourceIp": request.source_ip,
        "principalOrgId": None,
        "accessKey": None,
        "cognitoAuthenticationType": None,
        "cognitoAuthenticationProvider": None,
        "userArn": None,
        "userAgent": request.header("user-agent"),
        "user": None,
    }
    if api_key is not None:
        identity["apiKey"] = api_key.value
        identity["apiKeyId"] = api_key.key_id
    route = match.route
    stamp = datetime.fromtimestamp(now, timezone.utc)
    return {
        "resource": route.path,
        "path": request.raw_path,
        "httpMethod": request.method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": match.path_parameters,
        "stageVariables": None,
        "requestContext": {
            "resourceId": _resource_id(route.path),
            "resourcePath": route.path,
            "httpMethod": request.method,
            "extendedRequestId": base64.b64encode(secrets.token_bytes(12)).decode("ascii"),
            "requestTime": stamp.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "path": f"/{api.stage}{request.raw_path}",
            "accountId": account_id,
            "protocol": request.protocol,
            "stage": api.stage,
            "requestTimeEpoch": int(now * 1000),
            "requestId": request_id,
            "identity": identity,
            "domainName": request.header("host") or "localhost",
            "apiId": api.rest_api_id,
        },
        "body": body,
        "isBase64Encoded": binary,
    }


# -------------------------------------------------------------------------------- responses


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


class MalformedProxyResponse(ValueError):
    """The function answered something API Gateway rejects ("Malformed Lambda proxy response")."""


def gateway_error(status: int, message: str, error_type: str, request_id: str) -> HttpResponse:
    """An error API Gateway itself answers: ``{"message": ...}`` with ``x-amzn-ErrorType``."""
    return HttpResponse(status, [
        ("Content-Type", "application/json"),
        ("x-amzn-RequestId", request_id),
        ("x-amzn-ErrorType", error_type),
    ], json.dumps({"message": message}).encode())


def _header_value(name: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise MalformedProxyResponse(f"header {name} has a {type(value).__name__} value")


def _status_code(value: object) -> int:
    if value is None:
        return 200
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 100 <= value <= 599:
        raise MalformedProxyResponse(f"statusCode {value!r} is not an HTTP status")
    return value


def _response_headers(single: object, multi: object) -> list[tuple[str, str]]:
    """``multiValueHeaders`` then ``headers``; a pair given in both appears once."""
    if single is None:
        single = {}
    if multi is None:
        multi = {}
    if not isinstance(single, dict) or not isinstance(multi, dict):
        raise MalformedProxyResponse("headers and multiValueHeaders must be objects")
    pairs: list[tuple[str, str]] = []
    for name, values in multi.items():
        if not isinstance(values, list):
            raise MalformedProxyResponse(f"multiValueHeaders {name} is not a list")
        pairs += [(name, _header_value(name, v)) for v in values if v is not None]
    seen = {(k.lower(), v) for k, v in pairs}
    for name, value in single.items():
        if value is None:
            continue
        text = _header_value(name, value)
        if (name.lower(), text) not in seen:
            pairs.append((name, text))
    return [(k, v) for k, v in pairs if k.lower() not in _HOP_BY_HOP]


def _response_body(body: object, is_base64: object) -> bytes:
    if is_base64 not in (None, True, False):
        raise MalformedProxyResponse("isBase64Encoded must be a boolean")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise MalformedProxyResponse(f"body is a {type(body).__name__}, not a string")
    if not is_base64:
        return body.encode("utf-8")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedProxyResponse(f"body is not valid base64: {exc}") from None


def proxy_response(payload: bytes) -> HttpResponse:
    """Map a Lambda proxy response to HTTP, or raise `MalformedProxyResponse` as AWS would 502."""
    try:
        data = json.loads(payload) if payload else None
    except (ValueError, UnicodeDecodeError):
        raise MalformedProxyResponse("the response is not JSON") from None
    if not isinstance(data, dict):
        raise MalformedProxyResponse(f"the response is a {type(data).__name__}, not an object")
    unknown = set(data) - PROXY_RESPONSE_KEYS
    if unknown:
        raise MalformedProxyResponse(f"unknown keys {sorted(unknown)}")
    status = _status_code(data.get("statusCode"))
    headers = _response_headers(data.get("headers"), data.get("multiValueHeaders"))
    body = _response_body(data.get("body"), data.get("isBase64Encoded"))
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", "application/json"))
    return HttpResponse(status, headers, body)


# -------------------------------------------------------------------------------- HTTP plumbing


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that skips the reverse DNS lookup at bind and can drop its open
    keep-alive connections on stop."""

    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog is 5: 32 clients connecting at once would see resets that
    # API Gateway never gives.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], app: object) -> None:
        self.app = app
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that resets or drops its connection is routine, not worth a traceback."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def track(self, conn: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            (self._connections.add if open_ else self._connections.discard)(conn)

    def drop_connections(self) -> None:
        with self._connections_lock:
            conns = list(self._connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class FastHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler base: whole responses in one write, no Nagle, no access log."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 120  # an idle keep-alive connection is closed after this many seconds
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        """The services log their own one line per request."""

    def split_target(self) -> tuple[str, str]:
        """(path, query string) of the request target, also in absolute form."""
        target = self.path
        if not target.startswith("/"):
            parts = urlsplit(target)
            return parts.path or "/", parts.query
        path, _, query = target.partition("?")
        return path, query

    def read_body(self) -> bytes:
        """The request body by Content-Length or chunked transfer coding."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > _MAX_BODY:
            raise ValueError(f"Content-Length {length} out of range")
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        chunks, total = [], 0
        while True:
            size = int(self.rfile.readline(1024).split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > _MAX_BODY:
                raise ValueError("chunked body too large")
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def send(self, response: HttpResponse, head_only: bool = False) -> None:
        """Write the status line, headers and body in a single write."""
        try:
            reason = HTTPStatus(response.status).phrase
        except ValueError:
            reason = ""
        lines = [f"HTTP/1.1 {response.status} {reason}"]
        lines += [f"{k}: {v}" for k, v in response.headers]
        lines.append(f"Content-Length: {len(response.body)}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        self.wfile.write(head if head_only else head + response.body)


class HttpService:
    """A `_Server` on a background thread, with start/stop/url and context management."""

    service_name = "HTTP service"
    handler_class: type[FastHandler] = FastHandler

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "HttpService":
        if self._server is not None:
            return self
        try:
            self._server = _Server((self.host, self.port), self.handler_class, self)
        except OSError as exc:
            raise LocalCloudError(
                f"cannot serve {self.service_name} on {self.host}:{self.port}: {exc.strerror or exc}"
            ) from None
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True, name=f"{self.service_name}:{self.port}")
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.drop_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "HttpService":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -------------------------------------------------------------------------------- the API server


def stderr_writer(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


class _ApiHandler(FastHandler):
    server: _Server

    def _serve(self) -> None:
        started = time.perf_counter()
        app: ApiServer = self.server.app  # type: ignore[assignment]
        path, query = self.split_target()
        try:
            body = self.read_body()
        except ValueError:
            self.close_connection = True
            self.send(gateway_error(400, "Bad request", "BadRequestException", str(uuid.uuid4())))
            return
        request = HttpRequest(
            method=self.command,
            raw_path=path,
            query_string=query,
            headers=tuple(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
            protocol=self.request_version,
            server_port=self.server.server_port,
        )
        try:
            response = app.handle(request)
        except Exception as exc:  # a bug in the gateway must not kill the connection silently
            app.log_error(f"start-api: {type(exc).__name__}: {exc}")
            response = gateway_error(502, "Internal server error", "InternalServerErrorException", str(uuid.uuid4()))
        # Logged before the answer goes out, so that a caller that got it also finds its line.
        app.log_request(self.client_address[0], self.requestline, response.status,
                        (time.perf_counter() - started) * 1000)
        self.send(response, head_only=self.command == "HEAD")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve


class ApiServer(HttpService):
    """`start-api`: serves ``stack.routes`` on ``host:port`` through ``runtime``.

    ``api_keys`` maps ApiKey logical ids to their local values (`LocalCloud.api_keys`). A route
    that requires a key admits an enabled key of the stack only when a usage plan lists the
    route's API stage and has the key (`Stack.keys_for_api`), as API Gateway does. Every API of
    the template is served on this one port (as `sam local start-api` merges them); each route
    still checks the keys of its own API. ``port=0`` picks a free port
    (read it back from `url`). ``quiet`` silences the one line per request on stderr.
    """

    service_name = "start-api"
    handler_class = _ApiHandler

    def __init__(
        self,
        runtime: LambdaRuntime,
        stack: Stack,
        api_keys: Mapping[str, str],
        host: str = "127.0.0.1",
        port: int = 3000,
        *,
        quiet: bool = False,
        log: LogWriter = stderr_writer,
        integration_timeout: float = INTEGRATION_TIMEOUT_S,
    ) -> None:
        super().__init__(host, port)
        self.runtime = runtime
        self.stack = stack
        self.quiet = quiet
        self._log = log
        self.integration_timeout = integration_timeout
        self.routes = RouteTable(stack.routes)
        self._keys = {
            value: KeyIdentity(value, stack.api_keys[lid].key_id if lid in stack.api_keys else lid)
            for lid, value in api_keys.items()
            if value and (lid not in stack.api_keys or stack.api_keys[lid].enabled)
        }
        # ApiKey logical id of each accepted value, and the keys each API's usage plans admit.
        self._key_lids = {value: lid for lid, value in api_keys.items() if value in self._keys}
        self._admitted = {api_id: stack.keys_for_api(api_id) for api_id in stack.apis}

    def __enter__(self) -> "ApiServer":
        self.start()
        return self

    def mounts(self) -> list[str]:
        """One line per route, as `sam local start-api` prints them at start."""
        lines = []
        for route in self.stack.routes:
            key = " (API key required)" if route.api_key_required else ""
            lines.append(f"Mounting {route.function_id} at {self.url}{route.path} [{route.method}]{key}")
        return lines

    def log_request(self, client: str, requestline: str, status: int, ms: float) -> None:
        if not self.quiet:
            stamp = time.strftime("%d/%b/%Y %H:%M:%S")
            self._log(f'{client} - - [{stamp}] "{requestline}" {status} {ms:.2f} ms')

    def log_error(self, line: str) -> None:
        self._log(line)

    def handle(self, request: HttpRequest) -> HttpResponse:
        """The gateway's whole path for one request: route, key, event, invoke, response."""
        request_id = str(uuid.uuid4())
        match = self.routes.match(request.method, request.raw_path)
        if match is None:
            return gateway_error(403, "Missing Authentication Token", "MissingAuthenticationTokenException", request_id)
        sent_key = request.header("x-api-key")
        key = self._keys.get(sent_key) if sent_key else None
        if match.route.api_key_required and (
                key is None or self._key_lids[key.value] not in self._admitted[match.route.api_id]):
            return gateway_error(403, "Forbidden", "ForbiddenException", request_id)
        api = self.stack.apis[match.route.api_id]
        event = build_event(request, match, api, api_key=key, request_id=request_id)
        invocation = self._invoke(match.route.function_id, json.dumps(event).encode())
        if invocation is None:
            return gateway_error(504, "Endpoint request timed out", "IntegrationTimeout", request_id)
        if invocation.function_error:
            return gateway_error(502, "Internal server error", "InternalServerErrorException", request_id)
        try:
            response = proxy_response(invocation.payload)
        except MalformedProxyResponse as exc:
            self.log_error(f"{match.route.function_id}: Malformed Lambda proxy response: {exc}")
            return gateway_error(502, "Internal server error", "InternalServerErrorException", request_id)
        response.headers.append(("x-amzn-RequestId", request_id))
        return response

    def _invoke(self, function_id: str, payload: bytes) -> Invocation | None:
        """Invoke, waiting at most the integration timeout (None past it), as API Gateway does.

        A function whose own timeout is within the cap runs on this thread (no extra hop);
        a longer one runs on a helper thread so that the gateway can give up first.
        """
        fn = self.stack.functions[function_id]
        if fn.timeout <= self.integration_timeout:
            return self._invoke_now(function_id, payload)
        box: list[Invocation] = []
        helper = threading.Thread(target=lambda: box.append(self._invoke_now(function_id, payload)),
                                  daemon=True, name=f"invoke-{function_id}")
        helper.start()
        helper.join(self.integration_timeout)
        return box[0] if box else None

    def _invoke_now(self, function_id: str, payload: bytes) -> Invocation:
        try:
            return self.runtime.invoke(function_id, payload)
        except LocalCloudError as exc:
            error = {"errorType": "LocalCloudError", "errorMessage": str(exc)}
            return Invocation(str(uuid.uuid4()), json.dumps(error).encode(), "Unhandled")
