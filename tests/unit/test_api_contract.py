"""The API contract without AWS: the checked-in OpenAPI spec is the one the code generates and
lists exactly template.yaml's routes; validation errors, 413 and 415 come back in the API's one
error shape (`mlops.api_validation`, `mlops.api_limits`)."""

from __future__ import annotations

import base64
import doctest
import importlib.util
import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import pytest
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel, ConfigDict, Field

from localcloud.template import load_stack
from mlops import api_limits, api_validation
from mlops.api_errors import ApiError
from mlops.api_limits import MAX_BODY_BYTES, locate_fields, request_refusal
from mlops.api_models import MAX_BATCH_ROWS, MAX_INGEST_ROWS, ApprovalBody
from mlops.api_spec import spec_routes
from mlops.api_validation import api_resolver, field_name
from mlops.rest_responses import answer_errors, json_response

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "layers/common/python/mlops/openapi.json"


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("_openapi_generator", ROOT / "infra/openapi.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.fixture(scope="module")
def generated() -> dict[str, Any]:
    return _generator().generate()


def test_checked_in_spec_is_the_generated_one(generated: dict[str, Any]) -> None:
    gen = _generator()
    assert SPEC.read_text() == gen.dumps(generated), (
        f"layers/common/python/mlops/openapi.json is out of date: run {gen.COMMAND}")


def test_idempotency_key_is_declared_on_the_routes_that_honour_it(generated: dict[str, Any]) -> None:
    def takes_key(method: str, path: str) -> bool:
        operation = generated["paths"][path][method]
        return any(p["name"] == "Idempotency-Key" and p["in"] == "header" and not p["required"]
                   for p in operation.get("parameters", []))

    for path in ("/predict", "/predict/batch", "/feedback", "/features", "/retrain", "/experiments",
                 "/models/{name}/aliases/{alias}", "/models/{name}/versions/{version}/approval"):
        assert takes_key("post", path), path
    assert not takes_key("post", "/explain")  # read-only: answered afresh every time
    assert not any(takes_key(m, p) for p, item in generated["paths"].items() for m in item if m != "post")


def test_spec_lists_exactly_the_template_routes(generated: dict[str, Any]) -> None:
    stack = load_stack(ROOT / "template.yaml")
    template = {(r.method, r.path) for r in stack.routes}
    spec = spec_routes(json.loads(SPEC.read_text()))
    assert template - spec == set(), "routes in template.yaml missing from the spec"
    assert spec - template == set(), "operations in the spec that template.yaml does not route"
    apis = {(r.method, r.path): r.api_id for r in stack.routes}
    for path, item in generated["paths"].items():
        for method, operation in item.items():
            assert operation["x-rest-api"] == apis[(method.upper(), path)]


def test_every_operation_documents_the_error_shape_and_limits(generated: dict[str, Any]) -> None:
    for path, item in generated["paths"].items():
        for method, operation in item.items():
            answers = operation["responses"]
            for status in ("400", "413", "415"):
                assert answers[status]["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ErrorBody"}, (method, path, status)
            if method == "post" and path != "/experiments/{experiment_id}/stop":
                assert operation["requestBody"]["required"] is True, (method, path)
    assert str(MAX_BODY_BYTES) in generated["info"]["description"]
    batch = generated["components"]["schemas"]["BatchBody"]["properties"]["rows"]
    assert batch["maxItems"] == MAX_BATCH_ROWS
    assert generated["components"]["securitySchemes"]["apiKey"] == {
        "type": "apiKey", "in": "header", "name": "x-api-key"}


def test_model_limits_match_the_domain_modules() -> None:
    from mlops.features.ingest import MAX_ROWS
    from mlops.models.predict_request import MAX_BATCH_ROWS as domain_batch
    from mlops.models.registry import APPROVAL_STATUSES

    assert MAX_BATCH_ROWS == domain_batch and MAX_INGEST_ROWS == MAX_ROWS
    assert set(ApprovalBody.model_fields["status"].annotation.__args__) == set(APPROVAL_STATUSES)


def test_inference_does_not_import_pydantic(monkeypatch: pytest.MonkeyPatch) -> None:
    """The spec declares /predict from pydantic models; the serving path never loads them."""
    import subprocess

    code = (
        "import json, os, sys, importlib.util\n"
        f"sys.path[:0] = [{str(ROOT / 'infra')!r}, {str(ROOT / 'layers/common/python')!r}]\n"
        "from localcloud.template import load_stack\n"
        "from localcloud.runtime import function_environment\n"
        f"fn = load_stack({str(ROOT / 'template.yaml')!r}).functions['InferenceFunction']\n"
        "env = function_environment(fn, 'us-east-1', None); env.pop('AWS_ENDPOINT_URL', None)\n"
        "os.environ.update(env)\n"
        "before = set(sys.modules)\n"
        f"spec = importlib.util.spec_from_file_location('inference_app', {str(ROOT / 'functions/inference/app.py')!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "print(json.dumps(sorted(n for n in set(sys.modules) - before if n.split('.')[0] == 'pydantic')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


# ------------------------------------------------------------------------- validation
class Thing(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: int = Field(ge=0, le=1)
    rows: list[dict[str, int]] = Field(default_factory=list, max_length=2)


app = api_resolver()
answer_errors(app)


@app.post("/things/<name>")
def post_thing(name: str, body: Annotated[Thing, Body()],
               from_: Annotated[Optional[int], Query(alias="from", ge=0)] = None) -> Response[dict]:
    return json_response(200, {"name": name, "label": body.label, "from": from_})


def _event(body: Any, *, headers: dict[str, str] | None = None, query: dict[str, str] | None = None,
           b64: bool = False) -> dict[str, Any]:
    if body is not None and not isinstance(body, str):
        body = json.dumps(body)
    if b64 and body is not None:
        body = base64.b64encode(body.encode()).decode()
    return {"httpMethod": "POST", "path": "/things/a", "resource": "/things/{name}",
            "pathParameters": {"name": "a"}, "queryStringParameters": query,
            "headers": {"Content-Type": "application/json"} if headers is None else headers,
            "body": body, "isBase64Encoded": b64, "requestContext": {"requestId": "r1"}}


def _answer(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = app.resolve(event, None)
    return response["statusCode"], json.loads(response["body"])


def test_a_valid_request_reaches_the_route() -> None:
    assert _answer(_event({"label": 1}, query={"from": "3"})) == (200, {"name": "a", "label": 1, "from": 3})


def test_validation_errors_name_each_field_by_location() -> None:
    status, body = _answer(_event({"label": 3, "rows": [{"a": 1}, {"a": "x"}], "extra": 1}, query={"from": "-1"}))
    assert status == 400 and body["error"] == "invalid_request"
    fields = {d["field"]: d["problem"] for d in body["details"]}
    assert set(fields) == {"body.label", "body.rows[1].a", "body.extra", "query.from"}
    assert fields["body.extra"] == "unknown field"
    assert "less than or equal to 1" in fields["body.label"]
    assert set(body) == {"error", "message", "details"}


@pytest.mark.parametrize("raw, problem", [
    (None, "required"), ("{not json", "not valid JSON"), ("[1, 2]", "expected a JSON object")])
def test_a_missing_or_malformed_body_is_named_body(raw: Any, problem: str) -> None:
    status, body = _answer(_event(raw))
    assert status == 400 and body["details"] == [{"field": "body", "problem": problem}]


def test_a_missing_required_field() -> None:
    status, body = _answer(_event({}))
    assert status == 400 and body["details"] == [{"field": "body.label", "problem": "required"}]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_a_body_that_is_not_json_is_a_415(content_type: str) -> None:
    status, body = _answer(_event({"label": 1}, headers={"content-type": content_type}))
    assert status == 415 and body["error"] == "unsupported_media_type"
    assert body["details"] == [{"field": "Content-Type", "problem": "expected application/json"}]


@pytest.mark.parametrize("headers", [{}, {"Content-Type": "application/json; charset=utf-8"},
                                     {"CONTENT-TYPE": "Application/JSON"}])
def test_json_with_parameters_or_no_content_type_is_accepted(headers: dict[str, str]) -> None:
    assert _answer(_event({"label": 0}, headers=headers))[0] == 200


@pytest.mark.parametrize("b64", [False, True])
def test_a_body_over_one_mebibyte_is_a_413(b64: bool) -> None:
    big = {"label": 1, "pad": "x" * MAX_BODY_BYTES}
    status, body = _answer(_event(big, b64=b64))
    assert status == 413 and body["error"] == "payload_too_large"
    assert body["details"][0]["field"] == "body"
    just_under = json.dumps({"label": 1}) + " " * (MAX_BODY_BYTES - 20)
    assert len(just_under.encode()) <= MAX_BODY_BYTES
    assert request_refusal(_event(just_under, b64=b64)) is None


def test_field_names() -> None:
    assert field_name(("body",)) == "body"
    assert field_name(("body", 17)) == "body"  # a JSON decode error's character offset
    assert field_name(("body", "rows", 0, "features", "p03")) == "body.rows[0].features.p03"
    assert field_name(("path", "version")) == "path.version"


@app.get("/things/<name>/check")
def check_thing(name: str, hours: Annotated[Optional[str], Query()] = None) -> Response[dict]:
    raise ApiError.invalid({"name": "bad name", "hours": "bad hours", "views": "required"})


def test_domain_errors_are_named_by_location_too() -> None:
    event = {**_event(None), "httpMethod": "GET", "path": "/things/a/check", "resource": "/things/{name}/check",
             "queryStringParameters": {"hours": "x"}}
    status, body = _answer(event)
    assert status == 400
    # views was nowhere in the request: left as the domain check named it
    assert body["details"] == [{"field": "path.name", "problem": "bad name"},
                               {"field": "query.hours", "problem": "bad hours"},
                               {"field": "views", "problem": "required"}]


def test_feature_row_rejections_keep_their_shape() -> None:
    details = [{"row": 2, "field": "humidity", "problem": "unknown feature"}, {"field": "view", "problem": "x"}]
    assert locate_fields(details, {"body": "{}"}) == [
        {"row": 2, "field": "humidity", "problem": "unknown feature"}, {"field": "body.view", "problem": "x"}]


@pytest.mark.parametrize("module", [api_limits, api_validation])
def test_doctests(module: Any) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
