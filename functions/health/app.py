"""GET /health: liveness, and with ``?deep=true`` a check that every table answers."""

from __future__ import annotations

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.config import Resources
from mlops.health import health_report

logger = Logger()
metrics = Metrics()
app = APIGatewayRestResolver()
_dynamodb = boto3.client("dynamodb")


def _table_status(name: str) -> str:
    return _dynamodb.describe_table(TableName=name)["Table"]["TableStatus"]


@app.get("/health")
def health() -> Response:
    deep = app.current_event.get_query_string_value("deep", "false").lower() == "true"
    report = health_report(Resources.from_env().tables, _table_status if deep else None)
    metrics.add_metric(name="HealthCheck", unit=MetricUnit.Count, value=1)
    status = 200 if report["status"] == "ok" else 503
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=report)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
