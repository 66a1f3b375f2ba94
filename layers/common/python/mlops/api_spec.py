"""The API's one OpenAPI 3 document, merged from every function's resolver.

Each HTTP function has its own Powertools resolver (`mlops.api_validation.api_resolver`), so
each knows only its own routes; `merged_spec` merges their ``get_openapi_schema()`` with
Powertools' `OpenAPIMerge` (a path + method declared twice is an error), adds the API key
security scheme and the InferenceFunction's routes (`inference_schema`: its dict router has
no resolver, so they are declared here from the same models, `mlops.api_models`), and drops
components nothing refers to. ``infra/openapi.py`` imports the functions and writes the
result to ``mlops/openapi.json``, which ``GET /openapi.json`` serves.

Pure: takes and returns plain dicts.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn
from aws_lambda_powertools.event_handler.openapi.params import Body

from mlops import __version__
from mlops.api_limits import MAX_BODY_BYTES
from mlops.api_models import MAX_BATCH_ROWS, BatchBody, BatchPrediction, PredictBody, Prediction, responses

TITLE = "Serverless MLOps API"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
API_KEY_HEADER = "x-api-key"
DESCRIPTION = f"""Every route needs the `{API_KEY_HEADER}` header (an API Gateway usage-plan key). Routes
marked `x-rest-api: AdminApi` are on the admin API and take the admin key only; the others
(`MlopsApi`) take the caller key or the admin key.

POST routes that create or change things take an optional `Idempotency-Key` header (1 to 255
printable characters): a retry with the same key and request returns the first answer with
`Idempotent-Replayed: true` and applies nothing again; the same key with another request is a
422 `idempotency_key_reused`, and one sent while the first still runs a 409 with `Retry-After`.
AWS throttling that outlives the retries is a 503 `service_unavailable` with `Retry-After`.

Limits, the same on every route:
- bodies are `application/json` (a request without Content-Type is read as JSON); any other
  media type is a 415 `unsupported_media_type`;
- a body is at most {MAX_BODY_BYTES} bytes (1 MiB): more is a 413 `payload_too_large`;
- `POST /predict/batch` takes 1 to {MAX_BATCH_ROWS} rows: more is a 400 `batch_too_large`.

Errors have one shape: `{{"error": code, "message": text, "details": [{{"field", "problem"}}]}}`.
A request that fails validation is a 400 `invalid_request` naming each field by where it was:
`body.label`, `body.rows[2].entity_id`, `query.hours`, `path.version` (`body` alone when the
body is missing, not JSON or not an object).
"""


ANSWERED_ELSEWHERE = "a spec declaration: functions/inference/app.py answers this route"


def inference_schema() -> dict[str, Any]:
    """``POST /predict`` and ``POST /predict/batch`` as an OpenAPI document. The resolver here
    only declares them (its route functions are never called): the InferenceFunction answers
    them with its own dict router, which keeps pydantic off its cold start."""
    app = APIGatewayRestResolver(enable_validation=True)

    @app.post("/predict", summary="Score one row with the deployed model", operation_id="predict",
              responses=responses(Prediction, "the prediction"))
    def predict(body: Annotated[PredictBody, Body()]) -> Response[dict]:  # pragma: no cover - spec only
        raise RuntimeError(ANSWERED_ELSEWHERE)

    @app.post("/predict/batch", summary=f"Score 1 to {MAX_BATCH_ROWS} rows", operation_id="predict_batch",
              responses=responses(BatchPrediction, "one prediction per row, in order"))
    def predict_batch(body: Annotated[BatchBody, Body()]) -> Response[dict]:  # pragma: no cover - spec only
        raise RuntimeError(ANSWERED_ELSEWHERE)

    return app.get_openapi_schema().model_dump(by_alias=True, exclude_none=True, mode="json")


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            found.add(ref.rsplit("/", 1)[1])
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def _drop_unused_schemas(spec: dict[str, Any]) -> None:
    schemas = spec.get("components", {}).get("schemas", {})
    used: set[str] = set()
    _refs(spec.get("paths", {}), used)
    while True:  # schemas used by used schemas
        more: set[str] = set()
        _refs([schemas[name] for name in used if name in schemas], more)
        if more <= used:
            break
        used |= more
    for name in list(schemas):
        if name not in used:
            del schemas[name]


def merged_spec(schemas: list[Any]) -> dict[str, Any]:
    """One OpenAPI document from the functions' schemas (dicts or Powertools models)."""
    merge = OpenAPIMerge(title=TITLE, version=__version__, description=DESCRIPTION, on_conflict="error",
                         security_schemes={"apiKey": APIKey(name=API_KEY_HEADER, **{"in": APIKeyIn.header})},
                         security=[{"apiKey": []}])
    for schema in schemas:
        merge.add_schema(schema)
    spec = json.loads(merge.get_openapi_json_schema())
    _drop_unused_schemas(spec)
    return spec


def mark_apis(spec: dict[str, Any], apis: dict[tuple[str, str], str]) -> None:
    """Name the REST API each operation is deployed on (``x-rest-api``: ``MlopsApi`` takes the
    product and the admin key, ``AdminApi`` the admin key only), from template.yaml's routes."""
    for path, item in spec.get("paths", {}).items():
        for method, operation in item.items():
            api = apis.get((method.upper(), path))
            if api is not None:
                operation["x-rest-api"] = api


def mark_idempotent(spec: dict[str, Any], routes: set[tuple[str, str]]) -> None:
    """Declare the optional ``Idempotency-Key`` header (`mlops.idempotent_routes`) on ``routes``."""
    from mlops.idempotent_routes import HEADER, MAX_KEY_LENGTH

    parameter = {"name": HEADER, "in": "header", "required": False,
                 "description": "apply this request at most once; a retry returns the first answer",
                 "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH}}
    for path, item in spec.get("paths", {}).items():
        for method, operation in item.items():
            if (method.upper(), path) in routes:
                params = operation.setdefault("parameters", [])
                if all(p.get("name") != HEADER for p in params):
                    params.append(dict(parameter))


def spec_routes(spec: dict[str, Any]) -> set[tuple[str, str]]:
    """``{("GET", "/models/{name}"), ...}``: every operation of a spec."""
    return {(method.upper(), path) for path, item in spec.get("paths", {}).items()
            for method in item if method in METHODS}


def _ordered(node: Any) -> Any:
    """``node`` with every ``anyOf`` list in a fixed order. Python caches ``Union`` types by
    equality, so ``str | int | None`` reaches pydantic as whichever order the process built
    first: the alternatives' order means nothing, so the text must not depend on it."""
    if isinstance(node, dict):
        out = {k: _ordered(v) for k, v in node.items()}
        if isinstance(out.get("anyOf"), list):
            out["anyOf"] = sorted(out["anyOf"], key=lambda item: json.dumps(item, sort_keys=True))
        return out
    if isinstance(node, list):
        return [_ordered(v) for v in node]
    return node


def dumps(spec: dict[str, Any]) -> str:
    """The checked-in text of a spec (stable: sorted keys, ``anyOf`` alternatives in a fixed
    order, two-space indent, final newline)."""
    return json.dumps(_ordered(spec), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
