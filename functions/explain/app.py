"""POST /explain: per-feature attributions of one prediction of a registered model version.

Thin: parse the body (`mlops.explain.explaining.parse_explain`: a /predict body with explicit
features, plus ``version`` or ``alias``, default ``champion``), explain it
(`mlops.explain.explaining.Explainer`: the version is loaded and scored as /predict does, with
the artifact's sha256 checked, then explained with exact TreeSHAP or linear contributions),
answer. Bad input is a 400 naming each field; unknown models, versions and aliases are 404s;
a version that cannot be explained is a 422. Reads the registry and the artifacts only:
numpy, onnxruntime and protobuf, never scikit-learn, scipy or the `onnx` package.
"""

from __future__ import annotations

import os
from typing import Annotated
from datetime import datetime, timezone

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops import aws
from mlops.api_models import JsonObject, PredictBody, responses
from mlops.api_validation import api_resolver
from mlops.explain.explaining import Explainer, parse_explain
from mlops.models.registry_store import RegistryError, RegistryStore
from mlops.rest_responses import answer_errors, json_response

logger = Logger()
metrics = Metrics()
app = api_resolver()
explainer = Explainer(
    RegistryStore(os.environ["REGISTRY_TABLE"], os.environ["ARTIFACTS_BUCKET"], dynamodb=aws.client("dynamodb")),
    cache_ttl_s=float(os.environ.get("ALIAS_CACHE_SECONDS", "5")),
    failure_ttl_s=float(os.environ.get("MODEL_RETRY_SECONDS", "10")),
)

answer_errors(app, {RegistryError: RegistryError.to_api_error})


@app.post("/explain", summary="Score one row and explain it (TreeSHAP / linear attributions)",
          responses=responses(JsonObject, "the prediction with each feature's contribution"))
def explain(body: Annotated[PredictBody, Body()]) -> Response[dict]:
    req = parse_explain(app.current_event.json_body)
    request_id = app.current_event.request_context.request_id or app.lambda_context.aws_request_id
    body = explainer.explain(req, request_id, datetime.now(timezone.utc))
    metrics.add_dimension(name="model", value=req.model)
    metrics.add_metric(name="Explanations", unit=MetricUnit.Count, value=1)
    return json_response(200, body)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
