"""localcloud's AWS faults: which requests a rule throttles, and the answer AWS would give."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from localcloud.faults import AwsFaults


def _environ(service: str, body: bytes = b"", *, target: str = "", method: str = "POST", path: str = "/") -> dict:
    environ: dict[str, Any] = {
        "HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, "
                              "SignedHeaders=host, Signature=x",
        "REQUEST_METHOD": method, "PATH_INFO": path, "HTTP_HOST": "127.0.0.1:4566",
        "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
    }
    if target:
        environ["HTTP_X_AMZ_TARGET"] = target
    return environ


def _serve(faults: AwsFaults, environ: dict) -> tuple[str, bytes, bytes]:
    """(status, body, what moto would have read) through the wrapped app."""
    seen: list[bytes] = []

    def moto(environ: dict, start_response: Any) -> list[bytes]:
        seen.append(environ["wsgi.input"].read())
        start_response("200 OK", [])
        return [b"moto"]

    status: list[str] = []
    body = b"".join(faults.wsgi(moto)(environ, lambda s, h: status.append(s)))
    return status[0], body, seen[0] if seen else b""


def test_a_rule_throttles_only_the_matching_calls_and_counts_them() -> None:
    faults = AwsFaults()
    rule = faults.throttle("dynamodb", ["PutItem"], resource="predictions-table")
    put = json.dumps({"TableName": "predictions-table", "Item": {}}).encode()
    status, body, _ = _serve(faults, _environ("dynamodb", put, target="DynamoDB_20120810.PutItem"))
    assert status.startswith("400") and b"ProvisionedThroughputExceededException" in body
    # another operation, another table, another service: moto answers (and reads the same body)
    get = json.dumps({"TableName": "predictions-table", "Key": {}}).encode()
    assert _serve(faults, _environ("dynamodb", get, target="DynamoDB_20120810.GetItem")) == ("200 OK", b"moto", get)
    other = json.dumps({"TableName": "features-table"}).encode()
    assert _serve(faults, _environ("dynamodb", other, target="DynamoDB_20120810.PutItem"))[1] == b"moto"
    assert _serve(faults, _environ("s3", b"x", method="PUT", path="/predictions-table/k"))[1] == b"moto"
    assert rule.hits == 1
    faults.clear()
    assert _serve(faults, _environ("dynamodb", put, target="DynamoDB_20120810.PutItem"))[1] == b"moto"


def test_s3_operations_are_named_from_the_method_and_path() -> None:
    faults = AwsFaults()
    rule = faults.throttle("s3", "PutObject", resource="data-bucket")
    status, body, _ = _serve(faults, _environ("s3", b"row", method="PUT", path="/data-bucket/offline/a.json"))
    assert status.startswith("503") and b"<Code>SlowDown</Code>" in body
    assert _serve(faults, _environ("s3", method="GET", path="/data-bucket/offline/a.json"))[1] == b"moto"
    assert rule.hits == 1
    with pytest.raises(ValueError):
        faults.throttle("sqs")
