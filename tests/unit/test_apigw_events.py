"""API Gateway's pure rules in localcloud: resource matching, the REST proxy event (payload
v1) and the mapping of a Lambda proxy response to HTTP, without a socket or a function."""

from __future__ import annotations

import base64
import json
import re
import time
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from localcloud.apigw import (
    HttpRequest,
    KeyIdentity,
    MalformedProxyResponse,
    RouteMatch,
    RouteTable,
    build_event,
    is_binary,
    proxy_response,
    split_path,
)
from localcloud.errors import LocalCloudError
from localcloud.template import ACCOUNT_ID, Api, Route

API = Api("MyApi", "myapi", "dev", False, ("image~1png", "application/octet-stream"))

# The keys of `sam local generate-event apigateway aws-proxy` (SAM CLI 1.148), which follows
# the event API Gateway sends for a REST API with Lambda proxy integration.
SAM_EVENT_KEYS = {
    "body", "resource", "path", "httpMethod", "isBase64Encoded", "queryStringParameters",
    "multiValueQueryStringParameters", "pathParameters", "stageVariables", "headers",
    "multiValueHeaders", "requestContext",
}
SAM_CONTEXT_KEYS = {
    "accountId", "resourceId", "stage", "requestId", "requestTime", "requestTimeEpoch", "identity",
    "path", "resourcePath", "httpMethod", "apiId", "protocol",
}
SAM_IDENTITY_KEYS = {
    "cognitoIdentityPoolId", "accountId", "cognitoIdentityId", "caller", "accessKey", "sourceIp",
    "cognitoAuthenticationType", "cognitoAuthenticationProvider", "userArn", "userAgent", "user",
}


def route(path: str, method: str = "GET", function_id: str = "Fn", key: bool = False) -> Route:
    return Route("MyApi", f"{method}{path}", path, method, function_id, key)


def table(*specs: tuple[str, str]) -> RouteTable:
    return RouteTable(route(path, method, function_id=f"{method} {path}") for path, method in specs)


def matched(t: RouteTable, method: str, path: str) -> str | None:
    m = t.match(method, path)
    return m.route.function_id if m else None


def request(**kwargs: object) -> HttpRequest:
    defaults: dict = {
        "method": "GET",
        "raw_path": "/items/42",
        "headers": (("Host", "127.0.0.1:3000"), ("User-Agent", "pytest/1")),
        "server_port": 3000,
    }
    defaults.update(kwargs)
    return HttpRequest(**defaults)


def event_for(req: HttpRequest, template: str = "/items/{item_id}", **kwargs: object) -> dict:
    m = RouteTable([route(template, "ANY")]).match(req.method, req.raw_path)
    assert m is not None
    return build_event(req, m, API, **kwargs)


# -------------------------------------------------------------------------------- routing


def test_split_path_ignores_one_trailing_slash() -> None:
    assert split_path("/") == []
    assert split_path("/a/b") == ["a", "b"]
    assert split_path("/a/b/") == ["a", "b"]


def test_exact_path_beats_parameter_beats_greedy() -> None:
    t = table(("/items/special", "GET"), ("/items/{id}", "GET"), ("/{proxy+}", "GET"))
    assert matched(t, "GET", "/items/special") == "GET /items/special"
    assert matched(t, "GET", "/items/7") == "GET /items/{id}"
    assert matched(t, "GET", "/items/7/parts") == "GET /{proxy+}"
    assert matched(t, "GET", "/other") == "GET /{proxy+}"


def test_specificity_is_decided_segment_by_segment() -> None:
    t = table(("/a/{x}/c", "GET"), ("/a/{proxy+}", "GET"), ("/{p}/b/c", "GET"))
    assert matched(t, "GET", "/a/b/c") == "GET /a/{x}/c"  # literal 'a' first, then {x} beats greedy
    assert matched(t, "GET", "/z/b/c") == "GET /{p}/b/c"
    assert matched(t, "GET", "/a/b/d") == "GET /a/{proxy+}"


def test_method_on_the_chosen_resource_then_any() -> None:
    t = table(("/echo", "GET"), ("/echo", "ANY"), ("/only-get", "GET"))
    assert matched(t, "GET", "/echo") == "GET /echo"
    assert matched(t, "DELETE", "/echo") == "ANY /echo"
    assert matched(t, "post", "/echo") == "ANY /echo"
    assert matched(t, "POST", "/only-get") is None


def test_a_resource_without_the_method_does_not_fall_back_to_a_greedy_one() -> None:
    # API Gateway picks the resource first; /items/special exists, so POST there is a 403,
    # even though /{proxy+} would accept any method.
    t = table(("/items/special", "GET"), ("/{proxy+}", "ANY"))
    assert matched(t, "POST", "/items/special") is None
    assert matched(t, "POST", "/items/other") == "ANY /{proxy+}"


def test_unknown_paths_do_not_match() -> None:
    t = table(("/", "GET"), ("/items/{id}", "GET"), ("/files/{proxy+}", "ANY"))
    assert matched(t, "GET", "/nope") is None
    assert matched(t, "GET", "/items") is None
    assert matched(t, "GET", "/items/1/2") is None
    assert matched(t, "GET", "/files") is None  # a greedy parameter needs at least one segment
    assert matched(t, "GET", "/files/") is None
    assert matched(t, "GET", "/Items/1") is None  # paths are case-sensitive
    assert matched(t, "GET", "/") == "GET /"


def test_trailing_slash_reaches_the_same_resource() -> None:
    t = table(("/echo", "GET"), ("/items/{id}", "GET"))
    assert matched(t, "GET", "/echo/") == "GET /echo"
    m = t.match("GET", "/items/9/")
    assert m is not None and m.path_parameters == {"id": "9"}


def test_path_parameters_are_decoded_and_greedy_keeps_slashes() -> None:
    t = table(("/items/{item_id}/parts/{part_id}", "GET"), ("/files/{proxy+}", "ANY"), ("/plain", "GET"))
    m = t.match("GET", "/items/a%20b/parts/c%2Fd")
    assert m is not None and m.path_parameters == {"item_id": "a b", "part_id": "c/d"}
    m = t.match("PUT", "/files/x/y%2Bz/readme.md")
    assert m is not None and m.path_parameters == {"proxy": "x/y+z/readme.md"}
    m = t.match("GET", "/plain")
    assert m is not None and m.path_parameters is None


def test_greedy_parameter_must_be_last() -> None:
    with pytest.raises(LocalCloudError, match="greedy"):
        RouteTable([route("/files/{proxy+}/x")])


@given(st.text(min_size=1, max_size=40).filter(lambda s: "/" not in s))
def test_any_segment_value_round_trips_through_percent_encoding(value: str) -> None:
    t = table(("/items/{id}", "GET"))
    m = t.match("GET", "/items/" + quote(value, safe=""))
    assert m is not None and m.path_parameters == {"id": value}


# -------------------------------------------------------------------------------- events


def test_event_has_the_keys_of_the_rest_proxy_event() -> None:
    event = event_for(request(), api_key=KeyIdentity("secret", "key-id"))
    assert set(event) == SAM_EVENT_KEYS
    assert SAM_CONTEXT_KEYS <= set(event["requestContext"])
    assert {"extendedRequestId", "domainName"} <= set(event["requestContext"])
    assert SAM_IDENTITY_KEYS <= set(event["requestContext"]["identity"])


def test_event_basic_fields() -> None:
    event = event_for(request(method="PATCH", raw_path="/items/42"), request_id="req-1", now=1428582896.5)
    assert event["resource"] == "/items/{item_id}"
    assert event["path"] == "/items/42"
    assert event["httpMethod"] == "PATCH"
    assert event["pathParameters"] == {"item_id": "42"}
    assert event["stageVariables"] is None
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None
    assert event["body"] is None
    assert event["isBase64Encoded"] is False
    ctx = event["requestContext"]
    assert ctx["requestId"] == "req-1"
    assert ctx["resourcePath"] == "/items/{item_id}"
    assert ctx["httpMethod"] == "PATCH"
    assert ctx["path"] == "/dev/items/42"
    assert ctx["stage"] == "dev"
    assert ctx["apiId"] == "myapi"
    assert ctx["accountId"] == ACCOUNT_ID
    assert ctx["protocol"] == "HTTP/1.1"
    assert ctx["domainName"] == "127.0.0.1:3000"
    assert ctx["requestTime"] == "09/Apr/2015:12:34:56 +0000"
    assert ctx["requestTimeEpoch"] == 1428582896500
    assert re.fullmatch(r"[0-9a-f]{6}", ctx["resourceId"])
    assert ctx["extendedRequestId"]
    identity = ctx["identity"]
    assert identity["sourceIp"] == "127.0.0.1"
    assert identity["userAgent"] == "pytest/1"
    assert "apiKey" not in identity and "apiKeyId" not in identity


def test_event_time_defaults_to_now() -> None:
    before = int(time.time() * 1000)
    ctx = event_for(request())["requestContext"]
    assert before <= ctx["requestTimeEpoch"] <= int(time.time() * 1000)


def test_event_path_keeps_percent_encoding() -> None:
    event = event_for(request(raw_path="/items/a%20b"))
    assert event["path"] == "/items/a%20b"
    assert event["requestContext"]["path"] == "/dev/items/a%20b"
    assert event["pathParameters"] == {"item_id": "a b"}


def test_query_string_single_and_multi_value() -> None:
    event = event_for(request(query_string="a=1&a=2&b=&c=x%20y&d=p+q"))
    assert event["queryStringParameters"] == {"a": "2", "b": "", "c": "x y", "d": "p q"}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": [""], "c": ["x y"], "d": ["p q"]}


def test_headers_single_and_multi_value_with_forwarding_headers() -> None:
    req = request(headers=(("Host", "h"), ("Accept", "a/b"), ("X-Tag", "one"), ("x-tag", "two"),
                           ("X-Forwarded-For", "10.1.1.1")), source_ip="127.0.0.9", server_port=4321)
    event = event_for(req)
    assert event["headers"]["X-Tag"] == "two"
    assert event["multiValueHeaders"]["X-Tag"] == ["one", "two"]
    assert event["headers"]["Accept"] == "a/b"
    assert event["headers"]["X-Forwarded-For"] == "10.1.1.1, 127.0.0.9"
    assert event["headers"]["X-Forwarded-Port"] == "4321"
    assert event["headers"]["X-Forwarded-Proto"] == "http"
    assert event["multiValueHeaders"]["X-Forwarded-Proto"] == ["http"]
    assert event["requestContext"]["identity"]["sourceIp"] == "127.0.0.9"


def test_text_body_is_passed_as_is_not_base64() -> None:
    event = event_for(request(method="POST", body=b'{"x": "\xc3\xa9"}',
                              headers=(("Content-Type", "application/json"),)))
    assert event["body"] == '{"x": "é"}'
    assert event["isBase64Encoded"] is False


@pytest.mark.parametrize("content_type", ["image/png", "IMAGE/PNG; q=1", "application/octet-stream"])
def test_binary_body_is_base64_when_the_media_type_is_binary(content_type: str) -> None:
    raw = bytes(range(256))
    event = event_for(request(method="POST", body=raw, headers=(("Content-Type", content_type),)))
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == raw


def test_api_key_identity_when_a_key_was_sent() -> None:
    identity = event_for(request(), api_key=KeyIdentity("secret", "key-id"))["requestContext"]["identity"]
    assert identity["apiKey"] == "secret"
    assert identity["apiKeyId"] == "key-id"


def test_root_resource_has_no_path_parameters() -> None:
    m = RouteTable([route("/")]).match("GET", "/")
    assert m == RouteMatch(route("/"), None)
    event = build_event(request(raw_path="/"), m, API)
    assert event["pathParameters"] is None
    assert event["requestContext"]["path"] == "/dev/"


@pytest.mark.parametrize(("content_type", "types", "expected"), [
    ("image/png", ["image~1png"], True),
    ("image/jpeg", ["image/*"], True),
    ("text/plain", ["*~1*"], True),
    ("text/plain", ["image/png"], False),
    (None, ["*/*"], False),
    ("application/json; charset=utf-8", ["application~1json"], True),
])
def test_is_binary(content_type: str | None, types: list[str], expected: bool) -> None:
    assert is_binary(content_type, types) is expected


# -------------------------------------------------------------------------------- responses


def payload(value: object) -> bytes:
    return json.dumps(value).encode()


def test_proxy_response_maps_status_headers_and_body() -> None:
    r = proxy_response(payload({
        "statusCode": 201,
        "headers": {"Content-Type": "text/plain", "X-One": "1", "Set-Cookie": "b=2"},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
        "body": "créé",
        "isBase64Encoded": False,
    }))
    assert r.status == 201
    assert r.body == "créé".encode()
    assert [v for k, v in r.headers if k == "Set-Cookie"] == ["a=1", "b=2"]  # b=2 only once
    assert ("X-One", "1") in r.headers
    assert ("Content-Type", "text/plain") in r.headers


def test_proxy_response_defaults() -> None:
    r = proxy_response(payload({"body": "x"}))
    assert r.status == 200
    assert ("Content-Type", "application/json") in r.headers
    assert proxy_response(payload({})).body == b""
    assert proxy_response(payload({"statusCode": "404"})).status == 404


def test_proxy_response_decodes_base64_bodies_to_bytes() -> None:
    raw = b"\x89PNG\r\n\x1a\n\x00\xff"
    r = proxy_response(payload({"statusCode": 200, "body": base64.b64encode(raw).decode(), "isBase64Encoded": True}))
    assert r.body == raw


def test_proxy_response_drops_hop_by_hop_headers() -> None:
    r = proxy_response(payload({"headers": {"Content-Length": "999", "Connection": "close", "X-A": 1, "X-B": True}}))
    names = [k.lower() for k, _ in r.headers]
    assert "content-length" not in names and "connection" not in names
    assert ("X-A", "1") in r.headers and ("X-B", "true") in r.headers


@pytest.mark.parametrize("bad", [
    b"not json",
    b"",
    payload([1, 2]),
    payload("a string"),
    payload(None),
    payload({"statusCode": 200, "body": "x", "unexpected": 1}),
    payload({"statusCode": 200, "body": {"an": "object"}}),
    payload({"statusCode": "teapot"}),
    payload({"statusCode": 99}),
    payload({"statusCode": True}),
    payload({"headers": ["X-A", "1"]}),
    payload({"headers": {"X-A": {"nested": 1}}}),
    payload({"multiValueHeaders": {"X-A": "not-a-list"}}),
    payload({"body": "***", "isBase64Encoded": True}),
    payload({"body": "x", "isBase64Encoded": "yes"}),
])
def test_malformed_proxy_responses_are_rejected(bad: bytes) -> None:
    with pytest.raises(MalformedProxyResponse):
        proxy_response(bad)
