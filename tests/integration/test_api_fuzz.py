"""Schemathesis over every operation of the checked-in OpenAPI spec, against the product stack
over real HTTP on 127.0.0.1: no request may get a 5xx, and every answer must conform to the
spec (a documented status, its content type, its schema, its headers).

One `LocalCloud` for the module (an empty, freshly provisioned stack: most ids are unknown, so
the fuzzing mostly exercises validation and 404s; nothing here depends on seeded data). The
admin key is sent (it is admitted on both REST APIs). Hypothesis is derandomized (the same
cases every run) with at least 100 examples per operation; ``deadline=None`` because a cold
function start takes seconds.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from stack_env import api_server, product_cloud

from localcloud.apigw import ApiServer

ROOT = Path(__file__).resolve().parents[2]
KEY = "fuzz-product-key-0123456789"
ADMIN = "fuzz-admin-key-0123456789"
SPEC = ROOT / "layers/common/python/mlops/openapi.json"
EXAMPLES = 100
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]

# Methods the spec does not declare are tried too, except TRACE and QUERY: API Gateway has no such
# methods, and localcloud's HTTP server answers them 501 itself (no function is involved).
CONFIG = schemathesis.Config.from_dict(
    {"phases": {"coverage": {"enabled": False,
                             "unexpected-methods": ["get", "put", "post", "delete", "options", "patch"]}}})
schema = schemathesis.openapi.from_path(SPEC, config=CONFIG)


@pytest.fixture(scope="module")
def api() -> Iterator[ApiServer]:
    with product_cloud({"ApiKey": KEY, "AdminApiKey": ADMIN}) as cloud, api_server(cloud) as server:
        yield server


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure prints its request as found
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
def test_no_operation_answers_5xx_or_off_spec(case: schemathesis.Case, api: ApiServer) -> None:
    case.headers = {**(case.headers or {}), "x-api-key": ADMIN}  # the generated key would be refused
    case.call_and_validate(base_url=f"http://127.0.0.1:{api.port}", headers={"x-api-key": ADMIN}, checks=CHECKS,
                           timeout=60)


def _call(api: ApiServer, method: str, path: str, body: bytes | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=60)
    conn.request(method, path, body=body, headers={"x-api-key": ADMIN, **(headers or {})})
    response = conn.getresponse()
    status, raw = response.status, response.read()
    conn.close()
    return status, json.loads(raw)


def test_the_served_spec_is_the_checked_in_file(api: ApiServer) -> None:
    status, served = _call(api, "GET", "/openapi.json")
    assert status == 200 and served == json.loads(SPEC.read_text())


@pytest.mark.parametrize("path", ["/feedback", "/predict"])  # a resolver route and the dict-routed InferenceFunction
def test_limits_are_the_same_on_every_route(api: ApiServer, path: str) -> None:
    status, body = _call(api, "POST", path, b"label=1", {"Content-Type": "application/x-www-form-urlencoded"})
    assert (status, body["error"]) == (415, "unsupported_media_type")
    assert body["details"] == [{"field": "Content-Type", "problem": "expected application/json"}]
    big = json.dumps({"model": "m", "pad": "x" * (1024 * 1024)}).encode()
    status, body = _call(api, "POST", path, big, {"Content-Type": "application/json"})
    assert (status, body["error"], body["details"][0]["field"]) == (413, "payload_too_large", "body")
    status, body = _call(api, "POST", path, b"{not json", {"Content-Type": "application/json; charset=utf-8"})
    assert status == 400 and [d["field"] for d in body["details"]] == ["body"]
