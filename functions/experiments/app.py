"""Experiments (admin routes): define an A/B, A/A or bandit experiment on a model, follow it,
analyse it, stop it.

- POST /experiments  the definition (`mlops.experiments.definition`; ``model`` required) -> 201
- GET /experiments  every experiment with its state
- GET /experiments/{id}  the experiment, its sample-size plan with a duration estimate from the
  traffic so far (``?daily_entities=`` to plan with another), progress, bandit allocation
- GET /experiments/{id}/analysis  Welch / two-proportion tests with intervals and lift,
  Bonferroni/Holm, the SRM check that blocks conclusions, sequential-safe intervals, A/A verdicts
- POST /experiments/{id}/stop  ``{"reason": "..."}`` (optional): the router stops using it

Thin: validate, check that the model's versions exist in the registry, call
`mlops.experiments.store` and `mlops.experiments.report`. Bad input is a 400 naming the field,
an unknown experiment a 404, an id taken or a model already under experiment a 409.
The analysis uses scipy (Student's t for Welch): this function has StatsLayer.
"""

from __future__ import annotations

import math
import os
import re
from typing import Annotated, Optional

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops import aws
from mlops.api_errors import ApiError
from mlops.api_models import ExperimentBody, JsonObject, StopBody, responses
from mlops.api_validation import api_resolver
from mlops.experiments import report
from mlops.experiments.definition import ExperimentDefinition
from mlops.experiments.errors import ExperimentError
from mlops.experiments.store import ExperimentStore
from mlops.idempotent_routes import IdempotentRequests
from mlops.models.registry import utc_now
from mlops.models.registry_store import RegistryError, RegistryStore
from mlops.rest_responses import answer_errors, json_response

logger = Logger()
metrics = Metrics()
app = api_resolver()
app.use([IdempotentRequests().middleware])  # Idempotency-Key on the POST routes (mlops.idempotent_routes)
_dynamodb = aws.client("dynamodb")
store = ExperimentStore(os.environ["EXPERIMENTS_TABLE"], dynamodb=_dynamodb)
registry = RegistryStore(os.environ["REGISTRY_TABLE"], os.environ["ARTIFACTS_BUCKET"], dynamodb=_dynamodb)
EXPERIMENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def _experiment_error(exc: ExperimentError) -> ApiError:
    body = exc.to_dict()
    return ApiError(exc.status, body["error"], body["message"], body["details"])


answer_errors(app, {ExperimentError: _experiment_error, RegistryError: RegistryError.to_api_error})


def _caller() -> str:
    identity = app.current_event.request_context.identity
    return f"api-key:{identity.api_key_id}" if identity.api_key_id else "api"


def _id(experiment_id: str, field: str = "experiment_id") -> str:
    if not EXPERIMENT_ID.match(experiment_id):
        raise ApiError.invalid({field: "must be 1-128 characters of letters, digits, '_', '-' or '.', "
                                       "starting with a letter or digit"})
    return experiment_id


DailyEntities = Annotated[Optional[float], Query(gt=0, description="override the observed entities per day "
                                                                  "in the time-to-decision estimate")]


def _daily_override(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ApiError.invalid({"query.daily_entities": "expected a finite positive number of entities per day"})
    return value


def _version_problems(definition: ExperimentDefinition) -> dict[str, str]:
    """Each variant must serve a registered, not rejected version of the model."""
    problems: dict[str, str] = {}
    model = definition.model or ""
    try:
        registry.get_model(model)
    except RegistryError:
        return {"model": f"model {model!r} is not registered"}
    for i, variant in enumerate(definition.variants):
        try:
            version = registry.get_version(model, int(variant.model_version or 0))
        except RegistryError:
            problems[f"variants[{i}].model_version"] = f"model {model!r} has no version {variant.model_version}"
            continue
        if version.approval_status == "rejected":
            problems[f"variants[{i}].model_version"] = f"version {variant.model_version} of {model!r} is rejected"
    return problems


@app.post("/experiments", summary="Create an experiment (A/B, A/A or bandit)",
          responses=responses(JsonObject, "the experiment with its plan", status=201))
def create(body: Annotated[ExperimentBody, Body()]) -> Response[dict]:
    definition = ExperimentDefinition.from_dict(app.current_event.json_body)
    _id(definition.experiment_id)
    problems = _version_problems(definition)
    if problems:
        raise ApiError.invalid(problems)
    record = store.create(definition, by=_caller())
    metrics.add_metric(name="ExperimentsCreated", unit=MetricUnit.Count, value=1)
    logger.info("experiment created", extra={"experiment_id": definition.experiment_id, "model": definition.model})
    now = utc_now()
    return json_response(201, report.describe(record, store.totals(definition), store.bandit_state(
        definition.experiment_id, consistent=True), now))


@app.get("/experiments", summary="Every experiment", responses=responses(JsonObject, "{experiments: [...]}"))
def list_experiments() -> Response[dict]:
    now = utc_now()
    return json_response(200, {"experiments": [r.to_api(now) for r in store.list()]})


@app.get("/experiments/<experiment_id>", summary="One experiment and its progress",
         responses=responses(JsonObject, "the experiment"))
def get(experiment_id: str, daily_entities: DailyEntities = None) -> Response[dict]:
    record = store.get(_id(experiment_id))
    return json_response(200, report.describe(record, store.totals(record.definition),
                                              store.bandit_state(experiment_id, consistent=True), utc_now(),
                                              _daily_override(daily_entities)))


@app.get("/experiments/<experiment_id>/analysis", summary="The experiment's statistics: effects, SRM, decision",
         responses=responses(JsonObject, "the analysis"))
def analysis(experiment_id: str, daily_entities: DailyEntities = None) -> Response[dict]:
    record = store.get(_id(experiment_id))
    result = report.analysis(record, store.totals(record.definition),
                             store.bandit_state(experiment_id, consistent=True), utc_now(),
                             _daily_override(daily_entities))
    metrics.add_metric(name="ExperimentAnalyses", unit=MetricUnit.Count, value=1)
    if result["srm"]["alert"]:
        metrics.add_metric(name="SampleRatioMismatch", unit=MetricUnit.Count, value=1)
        logger.warning("sample ratio mismatch", extra={"experiment_id": experiment_id, "srm": result["srm"]})
    return json_response(200, result)


@app.post("/experiments/<experiment_id>/stop", summary="Stop an experiment (the body is optional)",
          responses=responses(JsonObject, "the stopped experiment"))
def stop(experiment_id: str, body: Annotated[Optional[StopBody], Body()] = None) -> Response[dict]:
    _id(experiment_id)
    record = store.stop(experiment_id, by=_caller(), reason=body.reason if body else "")
    metrics.add_metric(name="ExperimentsStopped", unit=MetricUnit.Count, value=1)
    return json_response(200, record.to_api(utc_now()))


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
