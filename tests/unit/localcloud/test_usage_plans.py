"""localcloud's API keys and usage plans, as API Gateway applies them: a route that requires a
key admits a key only through a usage plan that lists the route's API stage; anything else is
403 ``{"message": "Forbidden"}`` before the function runs. Two APIs share one local port and
still keep their own keys. No socket and no worker: a fake runtime records what would run."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from localcloud.apigw import ApiServer, HttpRequest
from localcloud.errors import LocalCloudError
from localcloud.runtime import Invocation
from localcloud.template import load_stack

TWO_APIS = """
    Resources:
      CallerApi:
        Type: AWS::Serverless::Api
        Properties: {StageName: v1, Auth: {ApiKeyRequired: true}}
      OpsApi:
        Type: AWS::Serverless::Api
        Properties: {StageName: v1, Auth: {ApiKeyRequired: true}}
      CallerKey: {Type: AWS::ApiGateway::ApiKey, Properties: {Enabled: true}}
      OpsKey: {Type: AWS::ApiGateway::ApiKey, Properties: {Enabled: true}}
      LooseKey: {Type: AWS::ApiGateway::ApiKey, Properties: {Enabled: true}}
      OffKey: {Type: AWS::ApiGateway::ApiKey, Properties: {Enabled: false}}
      CallerPlan:
        Type: AWS::ApiGateway::UsagePlan
        Properties:
          ApiStages: [{ApiId: !Ref CallerApi, Stage: !Ref CallerApi.Stage}]
      OpsPlan:
        Type: AWS::ApiGateway::UsagePlan
        Properties:
          ApiStages: [{ApiId: !Ref OpsApi, Stage: !Ref OpsApi.Stage}]
      CallerPlanCallerKey:
        Type: AWS::ApiGateway::UsagePlanKey
        Properties: {KeyId: !Ref CallerKey, KeyType: API_KEY, UsagePlanId: !Ref CallerPlan}
      CallerPlanOpsKey:
        Type: AWS::ApiGateway::UsagePlanKey
        Properties: {KeyId: !Ref OpsKey, KeyType: API_KEY, UsagePlanId: !Ref CallerPlan}
      OpsPlanOpsKey:
        Type: AWS::ApiGateway::UsagePlanKey
        Properties: {KeyId: !Ref OpsKey, KeyType: API_KEY, UsagePlanId: !Ref OpsPlan}
      OpsPlanOffKey:
        Type: AWS::ApiGateway::UsagePlanKey
        Properties: {KeyId: !Ref OffKey, KeyType: API_KEY, UsagePlanId: !Ref OpsPlan}
      ReadFunction:
        Type: AWS::Serverless::Function
        Properties:
          CodeUri: fn
          Handler: app.handler
          Runtime: python3.11
          Events:
            Read: {Type: Api, Properties: {RestApiId: !Ref CallerApi, Path: "/things/{id}", Method: get}}
            Open:
              Type: Api
              Properties: {RestApiId: !Ref CallerApi, Path: /open, Method: get, Auth: {ApiKeyRequired: false}}
      WriteFunction:
        Type: AWS::Serverless::Function
        Properties:
          CodeUri: fn
          Handler: app.handler
          Runtime: python3.11
          Events:
            Write: {Type: Api, Properties: {RestApiId: !Ref OpsApi, Path: "/things/{id}", Method: post}}
"""
KEYS = {"CallerKey": "caller-0123456789", "OpsKey": "ops-0123456789", "LooseKey": "loose-0123456789",
        "OffKey": "off-0123456789"}


def write_template(tmp_path: Path, body: str) -> Path:
    (tmp_path / "fn").mkdir(exist_ok=True)
    (tmp_path / "fn" / "app.py").write_text("def handler(event, context):\n    return event\n")
    path = tmp_path / "template.yaml"
    path.write_text("Transform: AWS::Serverless-2016-10-31\n" + textwrap.dedent(body))
    return path


class FakeRuntime:
    """Records each invocation and answers 200 with the function's id."""

    def __init__(self) -> None:
        self.invoked: list[str] = []

    def invoke(self, function_id: str, payload: bytes) -> Invocation:
        self.invoked.append(function_id)
        return Invocation("req", json.dumps({"statusCode": 200, "body": function_id}).encode(), None)


@pytest.fixture()
def server(tmp_path: Path) -> tuple[ApiServer, FakeRuntime]:
    stack = load_stack(write_template(tmp_path, TWO_APIS))
    runtime = FakeRuntime()
    return ApiServer(runtime, stack, KEYS, port=0, quiet=True), runtime  # type: ignore[arg-type]


def send(server: ApiServer, method: str, path: str, key: str | None) -> tuple[int, bytes]:
    headers = (("x-api-key", key),) if key is not None else ()
    response = server.handle(HttpRequest(method, path, headers=headers))
    return response.status, response.body


def test_the_plans_say_which_keys_open_which_api(tmp_path: Path) -> None:
    stack = load_stack(write_template(tmp_path, TWO_APIS))
    assert stack.keys_for_api("CallerApi") == {"CallerKey", "OpsKey"}
    assert stack.keys_for_api("OpsApi") == {"OpsKey", "OffKey"}
    assert stack.usage_plans["OpsPlan"].stages == (("OpsApi", "v1"),)
    assert "OpsPlan" not in stack.inert and "OpsPlanOpsKey" not in stack.inert


def test_a_key_opens_only_the_apis_of_its_plans(server) -> None:
    api, runtime = server
    forbidden = (403, b'{"message": "Forbidden"}')
    # The caller key reads, but the same path's POST is on the other API: refused before it runs.
    assert send(api, "GET", "/things/1", KEYS["CallerKey"]) == (200, b"ReadFunction")
    assert send(api, "POST", "/things/1", KEYS["CallerKey"]) == forbidden
    # The ops key is in both plans.
    assert send(api, "POST", "/things/1", KEYS["OpsKey"]) == (200, b"WriteFunction")
    assert send(api, "GET", "/things/1", KEYS["OpsKey"]) == (200, b"ReadFunction")
    # A key in no plan, a disabled key, a wrong key and no key: refused everywhere.
    for key in (KEYS["LooseKey"], KEYS["OffKey"], "nope", "", None):
        assert send(api, "POST", "/things/1", key) == forbidden, key
        assert send(api, "GET", "/things/1", key) == forbidden, key
    # A route that needs no key takes any request.
    assert send(api, "GET", "/open", None) == (200, b"ReadFunction")
    assert runtime.invoked == ["ReadFunction", "WriteFunction", "ReadFunction", "ReadFunction"]


def test_without_a_usage_plan_a_key_opens_nothing(tmp_path: Path) -> None:
    """As on AWS: an API key that is in no usage plan is refused by a key-required route."""
    body = TWO_APIS.split("      CallerPlan:")[0] + "      ReadFunction:" + TWO_APIS.split("      ReadFunction:")[1]
    stack = load_stack(write_template(tmp_path, body))
    runtime = FakeRuntime()
    api = ApiServer(runtime, stack, KEYS, port=0, quiet=True)  # type: ignore[arg-type]
    assert stack.usage_plans == {}
    assert send(api, "GET", "/things/1", KEYS["CallerKey"])[0] == 403
    assert runtime.invoked == []


@pytest.mark.parametrize(
    ("replace", "by", "message"),
    [
        ("Properties: {KeyId: !Ref OpsKey, KeyType: API_KEY, UsagePlanId: !Ref OpsPlan}",
         "Properties: {KeyId: !Ref OpsKey, KeyType: API_KEY, UsagePlanId: !Ref OpsApi}",
         "OpsPlanOpsKey: a UsagePlanKey needs KeyId"),
        ("ApiStages: [{ApiId: !Ref OpsApi, Stage: !Ref OpsApi.Stage}]",
         "ApiStages: [{ApiId: !Ref OpsApi, Stage: prod}]",
         "OpsPlan: OpsApi has no stage 'prod'"),
        ("ApiStages: [{ApiId: !Ref OpsApi, Stage: !Ref OpsApi.Stage}]",
         "ApiStages: [{ApiId: some-other-api, Stage: v1}]",
         "OpsPlan: localcloud cannot emulate an ApiStages entry"),
    ],
)
def test_broken_plans_name_the_resource(tmp_path: Path, replace: str, by: str, message: str) -> None:
    assert replace in TWO_APIS
    with pytest.raises(LocalCloudError, match=message):
        load_stack(write_template(tmp_path, TWO_APIS.replace(replace, by)))
