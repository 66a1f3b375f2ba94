"""GET /health: liveness, and with ``?deep=true`` a check that every table answers.
GET /openapi.json: the API's OpenAPI 3 spec, the checked-in file the CommonLayer ships
(`mlops/openapi.json`, regenerated with ``.venv/bin/python infra/openapi.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import boto3
import mlops
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.api_models import HealthReport, JsonObject, responses
from mlops.api_validation import api_resolver
from mlops.config import Resources
from mlops.health import health_report
from mlops.rest_responses import json_response
from mlops.rest_responses import answer_unavailable

logger = Logger()
metrics = Metrics()
app = api_resolver()
answer_unavailable(app)  # AWS throttled or unreachable: 503 with Retry-After
_dynamodb = boto3.client("dynamodb")
SPEC_FILE = Path(mlops.__file__).parent / "openapi.json"


def _table_status(name: str) -> str:
    return _dynamodb.describe_table(TableName=name)["Table"]["TableStatus"]


@app.get("/health", summary="Liveness; ?deep=true also checks every table",
         responses=responses(HealthReport, "ok (a degraded deep check is a 503 with the same body)",
                             extra={503: ("degraded: a table does not answer", HealthReport)}))
def health(deep: Annotated[bool, Query(description="also describe every table")] = False) -> Response[dict]:
    report = health_report(Resources.from_env().tables, _table_status if deep else None)
    metrics.add_metric(name="HealthCheck", unit=MetricUnit.Count, value=1)
    status = 200 if report["status"] == "ok" else 503
    return json_response(status, report)


@app.get("/openapi.json", summary="This API's OpenAPI 3 spec",
         responses=responses(JsonObject, "the OpenAPI document"))
def openapi() -> Response[dict]:
    spec: Any = json.loads(SPEC_FILE.read_text())
    return json_response(200, spec)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
