"""Serving monitoring: GET /monitoring/{model} and an hourly schedule.

- ``GET /monitoring/{model}?hours=24&bucket=1h&publish=false``: per model version over the
  last ``hours`` (at most 720) in buckets of ``bucket`` (``5m``, ``1h``, ``1d`` or seconds; at
  least 60 s and at most the window): requests, QPS, latency p50/p95/p99, error rate,
  predicted-positive rate, accuracy where labels came back; the SLOs of ``monitoring.json``
  with error budgets and multi-window burn rates; k-sigma anomalies; data quality against
  the version's training baseline. The HTML report (PNG plots inline) and the JSON go to
  ``reports/monitoring/<model>/<time>/`` in the artifacts bucket. Alerts are listed, and
  published to EventBridge and SNS only with ``publish=true`` (a GET should not page anyone
  by default).
- the schedule (every hour): the same for every registered model over the last 24 hours in
  hourly buckets, alerts published; the scheduled event's ``time`` is the end of the window. A
  model whose pass fails is listed with its error; the others are still monitored.

Thin: parse, call `mlops.monitoring.run`, shape the answer. An unknown model is a 404, a bad
query parameter a 400 naming it.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Optional

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops import aws
from mlops.api_errors import ApiError
from mlops.api_models import JsonObject, responses
from mlops.api_validation import api_resolver
from mlops.features.timestamps import TimestampError, parse_timestamp, to_datetime
from mlops.models.prediction_log import PredictionLog
from mlops.models.registry import model_name_problem
from mlops.models.registry_store import RegistryError, RegistryStore
from mlops.monitoring.alerts import AlertPublisher
from mlops.monitoring.config import parse_config
from mlops.monitoring.run import MonitoringRun
from mlops.monitoring.slo import duration_seconds
from mlops.rest_responses import answer_errors, json_response

logger = Logger()
metrics = Metrics()
app = api_resolver()
CONFIG = parse_config(json.loads((Path(__file__).parent / "monitoring.json").read_text()))
MAX_HOURS = 720.0
DEFAULT_HOURS = 24.0
DEFAULT_BUCKET = "1h"
MIN_BUCKET_S = 60
registry = RegistryStore(os.environ["REGISTRY_TABLE"], os.environ["ARTIFACTS_BUCKET"], dynamodb=aws.client("dynamodb"))
runner = MonitoringRun(
    log=PredictionLog(os.environ["PREDICTIONS_TABLE"], dynamodb=aws.client("dynamodb")),
    registry=registry,
    bucket=os.environ["ARTIFACTS_BUCKET"],
    s3=aws.client("s3"),
    publisher=AlertPublisher(os.environ.get("ALERTS_TOPIC_ARN") or None,
                             event_bus=os.environ.get("ALERTS_EVENT_BUS") or "default"),
)

answer_errors(app, {RegistryError: RegistryError.to_api_error})


def _query(problems: dict[str, str]) -> tuple[float, int, bool]:
    get = app.current_event.get_query_string_value
    hours = DEFAULT_HOURS
    raw = get("hours")
    if raw is not None:
        try:
            hours = float(raw)
        except ValueError:
            hours = float("nan")
        if not 0 < hours <= MAX_HOURS:
            problems["hours"] = f"expected a number of hours in (0, {MAX_HOURS:g}]"
    bucket = 3600
    try:
        bucket = duration_seconds(get("bucket") or DEFAULT_BUCKET)
    except ValueError as exc:
        problems["bucket"] = str(exc)
    else:
        if bucket < MIN_BUCKET_S or ("hours" not in problems and bucket > hours * 3600):
            problems["bucket"] = f"expected between {MIN_BUCKET_S} s and the window ({hours:g} h)"
    publish_raw = (get("publish") or "false").lower()
    if publish_raw not in ("true", "false"):
        problems["publish"] = "expected true or false"
    return hours, bucket, publish_raw == "true"


def _count(body: dict[str, Any]) -> None:
    metrics.add_metric(name="MonitoringRuns", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="MonitoringAlerts", unit=MetricUnit.Count, value=len(body["alerts"]))


@app.get("/monitoring/<model>", summary="A model's monitoring over a window: SLOs, quality, alerts",
         responses=responses(JsonObject, "the monitoring report"))
def get_monitoring(model: str,
                   hours: Annotated[Optional[float], Query(gt=0, le=MAX_HOURS, description="the window (default 24)")] = None,
                   bucket: Annotated[Optional[str], Query(description="bucket length: 1h, 15m, ... (default 1h)")] = None,
                   publish: Annotated[Optional[str], Query(description="true: publish the alerts")] = None,
                   ) -> Response[dict]:
    problems: dict[str, str] = {}
    problem = model_name_problem(model)
    if problem:
        problems["model"] = problem
    hours, bucket, publish = _query(problems)
    if problems:
        raise ApiError.invalid(problems)
    body = runner.run(model, end=datetime.now(timezone.utc), hours=hours, bucket_seconds=bucket, config=CONFIG,
                      publish=publish)
    _count(body)
    return json_response(200, body)


def scheduled(event: dict[str, Any]) -> dict[str, Any]:
    """Every registered model over the last day; alerts published."""
    try:
        end = to_datetime(parse_timestamp(event.get("time"))) if event.get("time") else datetime.now(timezone.utc)
    except TimestampError:
        end = datetime.now(timezone.utc)
    results = []
    for model in registry.list_models():
        try:
            body = runner.run(model["name"], end=end, hours=DEFAULT_HOURS, bucket_seconds=3600, config=CONFIG,
                              publish=True)
        except Exception as exc:  # one model's failure does not stop the others' monitoring
            logger.exception("monitoring failed", extra={"model": model["name"]})
            metrics.add_metric(name="MonitoringFailures", unit=MetricUnit.Count, value=1)
            results.append({"model": model["name"], "error": f"{type(exc).__name__}: {exc}"})
            continue
        _count(body)
        results.append({"model": model["name"], "versions": [v["version"] for v in body["versions"]],
                        "alerts": [{"kind": a["kind"], "severity": a["severity"], "title": a["title"]}
                                   for a in body["alerts"]],
                        "published": body["published"], "report": body["report"]})
        logger.info("monitored", extra={"model": model["name"], "alerts": len(body["alerts"])})
    return {"models": results}


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    if "httpMethod" in event:
        return app.resolve(event, context)
    return scheduled(event)
