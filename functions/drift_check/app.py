"""Drift check: ``GET /drift/{model}`` and an hourly schedule.

- ``GET /drift/{model}?window_hours=24&version=3&methods=vdd:psi,idd:ks``: the champion (or
  the version asked for) over the last ``window_hours`` (default 24, at most 720), with
  per-feature method overrides (ks, chisquare, wasserstein, jensenshannon, psi, kl).
- the schedule (``rate(1 hour)``, input ``{"model": "yield"}``; the same fields as the query).

Both run the same check (`mlops.drift.check.DriftCheck`): data drift of the logged inputs
against the version's training baseline, concept drift from the feedback error stream
(detector state in DynamoDB), the retraining decision (a run starts when it says so and the
champion was checked), a JSON + PNG report in S3, and EMF metrics per model and version.
The answer is the summary. An unknown model, version or missing baseline is a 404, a bad
parameter a 400 naming it; the schedule gets the same bodies with their ``status``.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
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
from mlops.drift.baseline_store import BaselineStore
from mlops.drift.check import DriftCheck, DriftCheckResult
from mlops.drift.check_request import parse_check_request
from mlops.drift.detector_store import DetectorStore
from mlops.drift.report_store import ReportStore
from mlops.models.prediction_log import PredictionLog
from mlops.models.registry_store import RegistryStore
from mlops.rest_responses import answer_errors, json_response

logger = Logger()
metrics = Metrics()
app = api_resolver()
answer_errors(app)


def _launcher() -> Any:
    from mlops.rollout.launcher import RetrainingLauncher

    return RetrainingLauncher.from_env()


check = DriftCheck(
    registry=RegistryStore(os.environ["REGISTRY_TABLE"], os.environ["ARTIFACTS_BUCKET"],
                           dynamodb=aws.client("dynamodb"), s3=aws.client("s3")),
    baselines=BaselineStore(os.environ["ARTIFACTS_BUCKET"], s3=aws.client("s3")),
    predictions=PredictionLog(os.environ["PREDICTIONS_TABLE"], dynamodb=aws.client("dynamodb")),
    detectors=DetectorStore(os.environ["DEPLOYMENTS_TABLE"], dynamodb=aws.client("dynamodb")),
    reports=ReportStore(os.environ["ARTIFACTS_BUCKET"], s3=aws.client("s3")),
    label_delay=timedelta(hours=float(os.environ.get("LABEL_DELAY_HOURS") or 6)),
    launcher=_launcher if os.environ.get("RETRAINING_STATE_MACHINE_ARN") else None,
)


def _emit(result: DriftCheckResult) -> None:
    summary = result.summary
    metrics.add_dimension(name="model", value=summary["model"])
    metrics.add_dimension(name="version", value=str(summary["version"]))
    for name, value in result.metrics.items():
        unit = MetricUnit.Count if name in ("FeaturesDrifted", "PredictionsChecked", "DetectorAlarms") \
            else MetricUnit.NoUnit
        metrics.add_metric(name=name, unit=unit, value=value)
    metrics.add_metric(name="RetrainingStarted", unit=MetricUnit.Count,
                       value=int(summary["retraining"]["started"] is not None))
    logger.info("drift checked", extra={"model": summary["model"], "version": summary["version"],
                                        "drift_share": summary["drift_share"],
                                        "drifted": summary["drifted_features"],
                                        "alarms": summary["concept"]["alarms"],
                                        "retrain": summary["retraining"]["retrain"]})


def _run(values: dict[str, Any], trigger: str) -> dict[str, Any]:
    result = check.run(parse_check_request(values), datetime.now(timezone.utc), trigger=trigger)
    _emit(result)
    return result.summary


@app.get("/drift/<model>", summary="Check a deployed version for data and concept drift",
         responses=responses(JsonObject, "the drift summary"))
def get_drift(model: str,
              version: Annotated[Optional[str], Query(description="the version (default: the champion)")] = None,
              window_hours: Annotated[Optional[float], Query(gt=0, description="the window checked")] = None,
              methods: Annotated[Optional[str], Query(description="comma-separated drift statistics")] = None,
              ) -> Response[dict]:
    query = dict(app.current_event.query_string_parameters or {})
    if "model" in query:
        raise ApiError.invalid({"model": "give the model in the path, not the query"})
    return json_response(200, _run({"model": model, **query}, "api"))


def scheduled(event: dict[str, Any]) -> dict[str, Any]:
    """The schedule's input; errors come back as the API's bodies with their status."""
    try:
        return {"status": 200, **_run(event, "schedule")}
    except ApiError as exc:
        logger.warning("drift check not run", extra={"status": exc.status, "error": exc.code, "detail": exc.message})
        return {"status": exc.status, **exc.body()}


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    if "httpMethod" in event:
        return app.resolve(event, context)
    return scheduled(event)
