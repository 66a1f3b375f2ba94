"""Access control over real HTTP: caller keys and admin keys, enforced by the gateway.

Admin routes (anything that changes production, the audit trail, experiments, drift checks,
feature ingestion) are on AdminApi, whose usage plan holds only the admin key; the caller key
is in MlopsApi's plan only. A request without the right key is 403 ``{"message": "Forbidden"}``
from the gateway and never reaches the function: no START line in its log, nothing written.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

from localcloud.apigw import ApiServer
from localcloud.cloud import LocalCloud
from stack_env import FunctionLogs, product_cloud

KEY = "access-caller-key-0123456789"
ADMIN = "access-admin-key-0123456789"
FORBIDDEN = (403, {"message": "Forbidden"})

# Every admin route (template path), with a request its handler answers without any setup.
ADMIN_ROUTES = [
    ("POST", "/features", "/features", {"view": "nope", "rows": []}),
    ("POST", "/models/{name}/aliases/{alias}", "/models/nope/aliases/champion", {"version": 1}),
    ("DELETE", "/models/{name}/aliases/{alias}", "/models/nope/aliases/champion", None),
    ("POST", "/models/{name}/versions/{version}/approval", "/models/nope/versions/1/approval", {"status": "approved"}),
    ("POST", "/models/{name}/versions/{version}/faults", "/models/nope/versions/1/faults", {"error_rate": 0.5}),
    ("POST", "/retrain", "/retrain", {"model": "nope", "spec": {"bogus": 1}}),
    ("POST", "/experiments", "/experiments", {"bogus": 1}),
    ("GET", "/experiments", "/experiments", None),
    ("GET", "/experiments/{experiment_id}", "/experiments/nope", None),
    ("GET", "/experiments/{experiment_id}/analysis", "/experiments/nope/analysis", None),
    ("POST", "/experiments/{experiment_id}/stop", "/experiments/nope/stop", None),
    ("GET", "/audit", "/audit", None),
    ("GET", "/audit/verify", "/audit/verify", None),
    ("GET", "/drift/{model}", "/drift/nope", None),
]


@pytest.fixture(scope="module")
def logs() -> FunctionLogs:
    return FunctionLogs()


@pytest.fixture(scope="module")
def cloud(logs: FunctionLogs) -> Iterator[LocalCloud]:
    with product_cloud({"ApiKey": KEY, "AdminApiKey": ADMIN}, log_sink=logs) as c:
        yield c


def call(api: ApiServer, method: str, path: str, body: Any = None, key: str | None = None) -> tuple[int, Any, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=60)
    try:
        headers = {"Content-Type": "application/json", **({"x-api-key": key} if key is not None else {})}
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else None, {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()


def function_of(cloud: LocalCloud, method: str, template_path: str) -> str:
    [route] = [r for r in cloud.stack.routes if (r.method, r.path) == (method, template_path)]
    return route.function_id


def items(cloud: LocalCloud, logical_id: str) -> list[dict]:
    return cloud.client("dynamodb").scan(TableName=cloud.stack.tables[logical_id].name)["Items"]


def test_every_admin_route_is_on_the_admin_api_and_covered_here(cloud: LocalCloud) -> None:
    admin = {(r.method, r.path) for r in cloud.stack.routes if r.api_id == "AdminApi"}
    assert admin == {(method, path) for method, path, _, _ in ADMIN_ROUTES}
    assert all(r.api_key_required for r in cloud.stack.routes)


@pytest.mark.parametrize(("method", "template_path", "path", "body"), ADMIN_ROUTES,
                         ids=[f"{m} {p}" for m, p, _, _ in ADMIN_ROUTES])
def test_admin_routes_refuse_the_caller_key_before_the_handler_runs(cloud, api, logs, method, template_path,
                                                                     path, body) -> None:
    fn = function_of(cloud, method, template_path)
    before, audited = logs.starts(fn), len(items(cloud, "AuditTable"))
    for key in (KEY, None, "", "not-a-key"):
        status, answer, headers = call(api, method, path, body, key)
        assert (status, answer) == FORBIDDEN, (key, answer)
        assert headers["x-amzn-errortype"] == "ForbiddenException"
    assert logs.starts(fn) == before  # the function never ran
    assert len(items(cloud, "AuditTable")) == audited  # and recorded nothing
    # The admin key reaches the handler, which answers for itself (a 2xx or its own 4xx body).
    status, answer, headers = call(api, method, path, body, ADMIN)
    assert "x-amzn-errortype" not in headers and status < 500, (status, answer)
    assert logs.starts(fn) == before + 1
    assert answer != {"message": "Forbidden"}


def test_a_refused_write_leaves_nothing_behind(cloud, api, logs) -> None:
    """POST /features with the caller key: the function does not run, no online row, no offline
    object, no audit record; the same request with the admin key is stored."""
    at = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    row = {"tester_id": "AC-1", "event_timestamp": at, "contact_res_ohm": 1.5, "calibration_age_h": 5.0,
           "alarms_24h": 0, "status": "ok", "in_calibration": False}
    request = {"view": "tester_health", "rows": [row]}
    bucket = cloud.stack.buckets["DataBucket"].name
    started, audited = logs.starts("FeatureIngestFunction"), len(items(cloud, "AuditTable"))
    assert call(api, "POST", "/features", request, KEY)[:2] == FORBIDDEN
    assert items(cloud, "FeaturesTable") == [] and len(items(cloud, "AuditTable")) == audited
    assert cloud.client("s3").list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    assert logs.starts("FeatureIngestFunction") == started
    status, answer, _ = call(api, "POST", "/features", request, ADMIN)
    assert status == 200, answer
    assert len(items(cloud, "FeaturesTable")) == 1
    assert cloud.client("s3").list_objects_v2(Bucket=bucket).get("KeyCount", 0) > 0
    status, answer, _ = call(api, "GET", "/features/AC-1?views=tester_health", key=KEY)
    assert status == 200 and answer["views"]["tester_health"]["values"]["contact_res_ohm"] == 1.5


@pytest.mark.parametrize("path", ["/health", "/models", "/features/AC-0?views=tester_health"])
def test_caller_routes_take_the_caller_key_and_the_admin_key(api, path) -> None:
    for key in (KEY, ADMIN):
        status, answer, headers = call(api, "GET", path, key=key)
        assert status == 200 and "x-amzn-errortype" not in headers, (key, answer)
    assert call(api, "GET", path)[:2] == FORBIDDEN
