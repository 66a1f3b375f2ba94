"""`start-api` through real HTTP on 127.0.0.1: routing, parameters, headers, bodies, the
request context, API keys, AWS's error answers, and the product's GET /health end to end.

The fixture application (tests/fixtures/api_app) runs in `LambdaRuntime` without moto; only
the product template needs `LocalCloud`, because its health check describes the DynamoDB
tables. Functions run in real worker processes; nothing of localcloud is mocked.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcloud.apigw import ApiServer
from localcloud.cloud import LocalCloud
from localcloud.errors import LocalCloudError
from localcloud.runtime import LambdaRuntime
from localcloud.template import load_stack

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "api_app" / "template.yaml"
CALLER_KEY = "caller-key-value-0123456789"
RETIRED_KEY = "retired-key-value-0123456789"


class LogSink:
    """Collects the functions' log lines, to see which functions ran."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, function_id: str, line: str) -> None:
        with self._lock:
            self.lines.append((function_id, line))

    def starts(self, function_id: str) -> int:
        with self._lock:
            return sum(1 for fid, line in self.lines if fid == function_id and line.startswith("START "))


class Response:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> dict:
        return json.loads(self.body)

    def event(self) -> dict:
        """The event the echo function received."""
        return self.json()["event"]


def call(url_port: int, method: str, path: str, headers: dict | list | None = None,
         body: bytes | None = None) -> Response:
    conn = http.client.HTTPConnection("127.0.0.1", url_port, timeout=30)
    try:
        conn.putrequest(method, path)
        pairs = headers.items() if isinstance(headers, dict) else (headers or [])
        for key, value in pairs:
            conn.putheader(key, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return Response(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


@pytest.fixture(scope="module")
def stack():
    return load_stack(FIXTURE, stack_name="fixtures")


@pytest.fixture(scope="module")
def sink() -> LogSink:
    return LogSink()


@pytest.fixture(scope="module")
def runtime(stack, sink) -> Iterator[LambdaRuntime]:
    with LambdaRuntime(stack, log_sink=sink) as rt:
        yield rt


@pytest.fixture(scope="module")
def api(runtime, stack) -> Iterator[ApiServer]:
    keys = {"CallerKey": CALLER_KEY, "RetiredKey": RETIRED_KEY}
    with ApiServer(runtime, stack, keys, port=0, quiet=True) as server:
        yield server


def get(api: ApiServer, path: str, **kwargs) -> Response:
    return call(api.port, "GET", path, **kwargs)


# -------------------------------------------------------------------------------- routing


def test_routes_pick_the_most_specific_resource(api) -> None:
    assert get(api, "/items/special").event()["resource"] == "/items/special"
    event = get(api, "/items/42").event()
    assert event["resource"] == "/items/{item_id}"
    assert event["pathParameters"] == {"item_id": "42"}
    event = get(api, "/items/7/parts/p%20q").event()
    assert event["pathParameters"] == {"item_id": "7", "part_id": "p q"}
    event = get(api, "/files/models/yield/v3.onnx").event()
    assert event["resource"] == "/files/{proxy+}"
    assert event["pathParameters"] == {"proxy": "models/yield/v3.onnx"}
    event = get(api, "/").event()
    assert event["resource"] == "/" and event["pathParameters"] is None


def test_any_method_and_trailing_slash(api) -> None:
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        resp = call(api.port, method, "/echo")
        assert resp.status == 200, method
        assert resp.event()["httpMethod"] == method
    event = get(api, "/echo/").event()
    assert event["resource"] == "/echo" and event["path"] == "/echo/"
    head = call(api.port, "HEAD", "/echo")
    assert head.status == 200 and head.body == b""


def test_unknown_route_or_method_is_missing_authentication_token(api, sink) -> None:
    before = sink.starts("EchoFunction")
    for method, path in [("GET", "/nope"), ("GET", "/items"), ("DELETE", "/only-get"),
                         ("POST", "/items/special"), ("GET", "/files"), ("GET", "/ECHO")]:
        resp = call(api.port, method, path)
        assert resp.status == 403, (method, path)
        assert resp.json() == {"message": "Missing Authentication Token"}
        assert resp.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert sink.starts("EchoFunction") == before


def test_query_string_single_and_multi_value(api) -> None:
    event = get(api, "/echo?model=yield&tag=a&tag=b&empty=&q=x%20y").event()
    assert event["queryStringParameters"] == {"model": "yield", "tag": "b", "empty": "", "q": "x y"}
    assert event["multiValueQueryStringParameters"] == {
        "model": ["yield"], "tag": ["a", "b"], "empty": [""], "q": ["x y"]}
    event = get(api, "/echo").event()
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None


def test_headers_single_and_multi_value(api) -> None:
    resp = get(api, "/echo", headers=[("X-Tag", "one"), ("X-Tag", "two"), ("User-Agent", "itest/2")])
    event = resp.event()
    assert event["headers"]["X-Tag"] == "two"
    assert event["multiValueHeaders"]["X-Tag"] == ["one", "two"]
    assert event["headers"]["Host"] == f"127.0.0.1:{api.port}"
    assert event["headers"]["X-Forwarded-Port"] == str(api.port)
    assert event["headers"]["X-Forwarded-For"] == "127.0.0.1"
    # and the response's headers and multiValueHeaders come back merged
    assert resp.headers["X-Echo"] == "yes"
    assert resp.headers.get_all("Set-Cookie") == ["a=1", "b=2"]
    assert resp.headers["Content-Type"] == "application/json"


def test_request_context(api) -> None:
    before = int(time.time() * 1000)
    resp = get(api, "/items/42", headers={"User-Agent": "itest/3"})
    ctx = resp.event()["requestContext"]
    assert ctx["requestId"] == resp.headers["x-amzn-RequestId"]
    assert ctx["stage"] == "test"
    assert ctx["path"] == "/test/items/42"
    assert ctx["resourcePath"] == "/items/{item_id}"
    assert ctx["httpMethod"] == "GET"
    assert ctx["apiId"] == "fixtureapi"
    assert ctx["accountId"] == "123456789012"
    assert ctx["protocol"] == "HTTP/1.1"
    assert ctx["domainName"] == f"127.0.0.1:{api.port}"
    assert before <= ctx["requestTimeEpoch"] <= int(time.time() * 1000)
    assert ctx["identity"]["sourceIp"] == "127.0.0.1"
    assert ctx["identity"]["userAgent"] == "itest/3"
    assert "apiKey" not in ctx["identity"]
    assert ctx["requestId"] != get(api, "/items/42").event()["requestContext"]["requestId"]


# -------------------------------------------------------------------------------- bodies


def test_text_body_arrives_as_text(api) -> None:
    body = json.dumps({"entity_id": "lot-7", "note": "é"}).encode()
    event = call(api.port, "POST", "/upload", {"Content-Type": "application/json"}, body).event()
    assert event["isBase64Encoded"] is False
    assert json.loads(event["body"]) == {"entity_id": "lot-7", "note": "é"}


def test_binary_body_arrives_base64_and_binary_response_is_decoded(api) -> None:
    raw = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    resp = call(api.port, "POST", "/binary", {"Content-Type": "image/png"}, raw)
    assert resp.status == 200
    assert resp.headers["X-Request-Was-Base64"] == "True"
    assert resp.headers["Content-Type"] == "image/png"
    assert resp.body == raw[::-1]  # the function reversed the bytes it received
    resp = call(api.port, "POST", "/binary", {"Content-Type": "text/plain"}, b"plain text")
    assert resp.headers["X-Request-Was-Base64"] == "False"
    assert resp.body == b"txet nialp"


def test_chunked_request_body(api) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    try:
        conn.request("POST", "/upload", body=iter([b"hello ", b"chunked"]),
                     headers={"Content-Type": "text/plain"}, encode_chunked=True)
        event = json.loads(conn.getresponse().read())["event"]
    finally:
        conn.close()
    assert event["body"] == "hello chunked"


# -------------------------------------------------------------------------------- API keys


def test_api_key_required_route_rejects_missing_wrong_and_disabled_keys(api, sink) -> None:
    before = sink.starts("EchoFunction")
    for headers in ({}, {"x-api-key": "wrong"}, {"x-api-key": RETIRED_KEY}, {"x-api-key": ""}):
        resp = get(api, "/secure", headers=headers)
        assert resp.status == 403, headers
        assert resp.json() == {"message": "Forbidden"}
        assert resp.headers["x-amzn-ErrorType"] == "ForbiddenException"
    # none of the rejected requests reached the function: it logged no START line
    assert sink.starts("EchoFunction") == before
    resp = get(api, "/secure", headers={"X-API-Key": CALLER_KEY})
    assert resp.status == 200
    identity = resp.event()["requestContext"]["identity"]
    assert identity["apiKey"] == CALLER_KEY
    assert identity["apiKeyId"] == "callerkey-id"
    assert sink.starts("EchoFunction") == before + 1


def test_routes_without_key_requirement_accept_requests_without_key(api) -> None:
    assert get(api, "/echo").status == 200


# -------------------------------------------------------------------------------- 502 / 504


def test_function_error_is_502(api) -> None:
    resp = get(api, "/fail")
    assert resp.status == 502
    assert resp.json() == {"message": "Internal server error"}
    assert resp.headers["x-amzn-ErrorType"] == "InternalServerErrorException"


def test_import_failure_is_502(api) -> None:
    resp = get(api, "/broken")
    assert resp.status == 502 and resp.json() == {"message": "Internal server error"}


def test_function_timeout_is_502(api) -> None:
    started = time.monotonic()
    resp = get(api, "/slow?seconds=3")
    assert resp.status == 502 and resp.json() == {"message": "Internal server error"}
    assert 0.9 < time.monotonic() - started < 2.5  # SlowFunction's Timeout is 1 s


@pytest.mark.parametrize("kind", ["extra_key", "body_object", "list", "string", "bad_status", "bad_base64"])
def test_malformed_proxy_response_is_502(api, kind: str) -> None:
    resp = get(api, f"/invalid?kind={kind}")
    assert resp.status == 502, kind
    assert resp.json() == {"message": "Internal server error"}


def test_valid_proxy_response_from_the_same_function(api) -> None:
    resp = get(api, "/invalid?kind=valid")
    assert resp.status == 201 and resp.body == b"created"


def test_integration_timeout_caps_the_function(runtime, stack) -> None:
    with ApiServer(runtime, stack, {}, port=0, quiet=True, integration_timeout=0.5) as short:
        started = time.monotonic()
        resp = get(short, "/long?seconds=2")
        elapsed = time.monotonic() - started
    assert resp.status == 504
    assert resp.json() == {"message": "Endpoint request timed out"}
    assert elapsed < 1.5


# -------------------------------------------------------------------------------- the server


def test_keep_alive_reuses_one_connection(api) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    try:
        conn.request("GET", "/echo")
        conn.getresponse().read()
        sock = conn.sock
        for _ in range(3):
            conn.request("GET", "/items/1")
            resp = conn.getresponse()
            assert resp.status == 200
            resp.read()
            assert conn.sock is sock
    finally:
        conn.close()


def test_concurrent_requests(api) -> None:
    results: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(5):
            status = get(api, "/echo").status
            with lock:
                results.append(status)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [200] * 30


def test_one_log_line_per_request_unless_quiet(runtime, stack) -> None:
    lines: list[str] = []
    with ApiServer(runtime, stack, {}, port=0, log=lines.append) as loud:
        get(loud, "/items/5?x=1")
        get(loud, "/nope")
    assert len(lines) == 2
    assert '"GET /items/5?x=1 HTTP/1.1" 200 ' in lines[0] and lines[0].endswith(" ms")
    assert '"GET /nope HTTP/1.1" 403 ' in lines[1]
    quiet_lines: list[str] = []
    with ApiServer(runtime, stack, {}, port=0, quiet=True, log=quiet_lines.append) as quiet:
        get(quiet, "/echo")
    assert quiet_lines == []


def test_port_in_use_is_a_one_line_error(api, runtime, stack) -> None:
    with pytest.raises(LocalCloudError, match=f"cannot serve start-api on 127.0.0.1:{api.port}"):
        ApiServer(runtime, stack, {}, port=api.port).start()


def test_stop_closes_the_port_and_open_connections(runtime, stack) -> None:
    server = ApiServer(runtime, stack, {}, port=0, quiet=True).start()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/echo")
    conn.getresponse().read()
    server.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
    with pytest.raises((http.client.HTTPException, OSError)):
        conn.request("GET", "/echo")
        conn.getresponse().read()
    conn.close()


def test_mounts_list_every_route(api, stack) -> None:
    lines = api.mounts()
    assert len(lines) == len(stack.routes)
    assert f"Mounting EchoFunction at {api.url}/secure [GET] (API key required)" in lines


# -------------------------------------------------------------------------------- the product


@pytest.fixture(scope="module")
def product() -> Iterator[tuple[LocalCloud, ApiServer]]:
    stack = load_stack(ROOT / "template.yaml")
    keys = {"ApiKey": "product-caller-key-0123456789", "AdminApiKey": "product-admin-key-0123456789"}
    with LocalCloud(stack, api_keys=keys, log_sink=LogSink()) as cloud:
        assert cloud.runtime is not None
        with ApiServer(cloud.runtime, stack, cloud.api_keys, port=0, quiet=True) as server:
            yield cloud, server


def test_product_health_requires_the_key(product) -> None:
    _, server = product
    resp = get(server, "/health")
    assert resp.status == 403 and resp.json() == {"message": "Forbidden"}


def test_product_health_through_localcloud(product) -> None:
    cloud, server = product
    resp = get(server, "/health", headers={"x-api-key": cloud.api_keys["ApiKey"]})
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/json"
    body = resp.json()
    assert body["status"] == "ok"
    assert body["checks"] == {}
    assert body["version"]


def test_product_deep_health_checks_every_table(product) -> None:
    cloud, server = product
    resp = get(server, "/health?deep=true", headers={"x-api-key": cloud.api_keys["AdminApiKey"]})
    assert resp.status == 200
    body = resp.json()
    assert body["status"] == "ok"
    assert len(body["checks"]) == len(cloud.stack.tables) == 7
    assert set(body["checks"].values()) == {"ok"}
