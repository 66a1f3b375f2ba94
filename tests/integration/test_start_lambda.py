"""`start-lambda` through boto3: the Lambda Invoke API on 127.0.0.1 runs the fixture
application's functions in real worker processes (RequestResponse, Event, DryRun, errors,
log tails, unknown functions and bad payloads)."""

from __future__ import annotations

import base64
import http.client
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from localcloud.lambda_endpoint import LambdaEndpoint, resolve_function
from localcloud.runtime import LambdaRuntime
from localcloud.template import load_stack

FIXTURE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "api_app" / "template.yaml"


class LogSink:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, function_id: str, line: str) -> None:
        with self._lock:
            self.lines.append((function_id, line))

    def starts(self, function_id: str) -> int:
        with self._lock:
            return sum(1 for fid, line in self.lines if fid == function_id and line.startswith("START "))


@pytest.fixture(scope="module")
def stack():
    return load_stack(FIXTURE, stack_name="fixtures")


@pytest.fixture(scope="module")
def sink() -> LogSink:
    return LogSink()


@pytest.fixture(scope="module")
def endpoint(stack, sink) -> Iterator[LambdaEndpoint]:
    with LambdaRuntime(stack, log_sink=sink) as runtime, LambdaEndpoint(runtime, port=0, quiet=True) as ep:
        yield ep


@pytest.fixture(scope="module")
def client(endpoint):
    return boto3.client(
        "lambda", endpoint_url=endpoint.url, region_name="us-east-1",
        aws_access_key_id="x", aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 1}, read_timeout=30),
    )


def payload_of(response: dict) -> dict:
    return json.loads(response["Payload"].read())


def test_request_response(client) -> None:
    resp = client.invoke(FunctionName="AlphaFunction", Payload=json.dumps({"pause": 0}).encode())
    assert resp["StatusCode"] == 200
    assert resp["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in resp
    body = payload_of(resp)
    assert body["module_id"] == "alpha"
    assert body["context"]["aws_request_id"] == resp["ResponseMetadata"]["RequestId"]


@pytest.mark.parametrize("name", [
    "EchoFunction",
    "fixtures-EchoFunction",
    "arn:aws:lambda:us-east-1:123456789012:function:fixtures-EchoFunction",
    "arn:aws:lambda:us-east-1:123456789012:function:fixtures-EchoFunction:$LATEST",
    "123456789012:function:fixtures-EchoFunction",
    "fixtures-EchoFunction:$LATEST",
])
def test_function_by_name_logical_id_or_arn(client, name: str) -> None:
    resp = client.invoke(FunctionName=name, Payload=b'{"hello": "world"}')
    body = json.loads(payload_of(resp)["body"])
    assert body["event"] == {"hello": "world"}


def test_qualifier_latest_and_client_context(client) -> None:
    context = {"custom": {"caller": "itest"}}
    resp = client.invoke(FunctionName="EchoFunction", Qualifier="$LATEST", Payload=b"{}",
                         ClientContext=base64.b64encode(json.dumps(context).encode()).decode())
    assert json.loads(payload_of(resp)["body"])["client_context"] == context


def test_empty_payload_is_an_empty_event(client) -> None:
    resp = client.invoke(FunctionName="EchoFunction")
    assert json.loads(payload_of(resp)["body"])["event"] == {}


def test_function_error(client) -> None:
    resp = client.invoke(FunctionName="FailFunction", Payload=b"{}")
    assert resp["StatusCode"] == 200
    assert resp["FunctionError"] == "Unhandled"
    error = payload_of(resp)
    assert error["errorType"] == "ModelNotReady"
    assert error["errorMessage"] == "model yield-v3 is not ready"
    assert any("misc/app.py" in frame and "in fail" in frame for frame in error["stackTrace"])


def test_import_failure(client) -> None:
    resp = client.invoke(FunctionName="BrokenFunction", Payload=b"{}")
    assert resp["FunctionError"] == "Unhandled"
    error = payload_of(resp)
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert "module_that_is_not_installed" in error["errorMessage"]


def test_timeout(client) -> None:
    resp = client.invoke(FunctionName="SlowFunction", Payload=b'{"seconds": 3}')
    assert resp["FunctionError"] == "Unhandled"
    assert payload_of(resp)["errorMessage"].endswith("Task timed out after 1.00 seconds")


def test_tail_logs(client) -> None:
    resp = client.invoke(FunctionName="LogsFunction", Payload=b"{}", LogType="Tail")
    assert payload_of(resp) == {"logged": True}
    log = base64.b64decode(resp["LogResult"]).decode()
    request_id = resp["ResponseMetadata"]["RequestId"]
    assert "hello from print" in log
    assert "a warning from logging" in log
    assert f"START RequestId: {request_id} Version: $LATEST" in log
    assert f"END RequestId: {request_id}" in log
    assert f"REPORT RequestId: {request_id}\tDuration: " in log
    assert "LogResult" not in client.invoke(FunctionName="LogsFunction", Payload=b"{}")


def test_event_invocation_runs_in_the_background(client, tmp_path) -> None:
    marker = tmp_path / "ran.json"
    started = time.monotonic()
    resp = client.invoke(FunctionName="EchoFunction", InvocationType="Event",
                         Payload=json.dumps({"write_file": str(marker), "delay": 0.5}).encode())
    assert resp["StatusCode"] == 202
    assert time.monotonic() - started < 0.45  # answered before the function finished
    assert not marker.exists()
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert json.loads(marker.read_text())["delay"] == 0.5


def test_dry_run_does_not_invoke(client, sink) -> None:
    before = sink.starts("EchoFunction")
    resp = client.invoke(FunctionName="EchoFunction", InvocationType="DryRun")
    assert resp["StatusCode"] == 204
    time.sleep(0.1)
    assert sink.starts("EchoFunction") == before


def test_unknown_function(client) -> None:
    with pytest.raises(client.exceptions.ResourceNotFoundException) as info:
        client.invoke(FunctionName="nope", Payload=b"{}")
    error = info.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert error["Error"]["Message"] == "Function not found: arn:aws:lambda:us-east-1:123456789012:function:nope"


def test_unknown_qualifier_or_foreign_arn(client) -> None:
    with pytest.raises(client.exceptions.ResourceNotFoundException, match=r"function:fixtures-EchoFunction:7"):
        client.invoke(FunctionName="EchoFunction", Qualifier="7", Payload=b"{}")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName="arn:aws:lambda:eu-west-1:123456789012:function:fixtures-EchoFunction")


def test_invalid_json_payload(client) -> None:
    with pytest.raises(client.exceptions.InvalidRequestContentException, match="Could not parse request body"):
        client.invoke(FunctionName="EchoFunction", Payload=b"{not json")


def test_raw_http_answers(endpoint) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=10)
    try:
        conn.request("GET", "/2015-03-31/functions/EchoFunction/configuration")
        resp = conn.getresponse()
        assert resp.status == 404
        assert resp.headers["x-amzn-ErrorType"] == "UnknownOperationException"
        resp.read()
        conn.request("POST", "/2015-03-31/functions/EchoFunction/invocations", body=b"{}",
                     headers={"X-Amz-Invocation-Type": "Sometimes"})
        resp = conn.getresponse()
        assert resp.status == 400
        assert resp.headers["x-amzn-ErrorType"] == "InvalidParameterValueException"
        resp.read()
        conn.request("POST", "/2015-03-31/functions/fixtures-EchoFunction%3A%24LATEST/invocations", body=b"[1]")
        resp = conn.getresponse()
        assert resp.status == 200 and resp.headers["X-Amz-Executed-Version"] == "$LATEST"
        assert json.loads(json.loads(resp.read())["body"])["event"] == [1]
    finally:
        conn.close()


def test_resolve_function(stack) -> None:
    fn, arn, qualifier = resolve_function(stack, "AlphaFunction:$LATEST")
    assert fn is stack.functions["AlphaFunction"] and arn == fn.arn and qualifier == "$LATEST"
    fn, arn, qualifier = resolve_function(stack, "missing")
    assert fn is None and arn.endswith(":function:missing") and qualifier is None
