"""The registry, read side: GET /models, GET /models/{name}/versions/{version} and
GET /models/{name}/aliases/{alias} (``?at=<time>``: where the alias pointed at that time).

Thin: check the path (`mlops.models.registry`), read (`mlops.models.registry_store`), answer.
Unknown models, versions and aliases are 404s; a malformed name, version or time is a 400 with
the field named.
"""

from __future__ import annotations

import os
from typing import Annotated, Optional

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.api_errors import ApiError
from mlops.api_models import JsonObject, responses
from mlops.api_validation import api_resolver
from mlops.models.registry import alias_problem, model_name_problem, parse_time, parse_version
from mlops.models.registry_store import RegistryError, RegistryStore
from mlops.rest_responses import answer_errors, json_response

logger = Logger()
metrics = Metrics()
app = api_resolver()
registry = RegistryStore(os.environ["REGISTRY_TABLE"], os.environ["ARTIFACTS_BUCKET"],
                         dynamodb=boto3.client("dynamodb"))


answer_errors(app, {RegistryError: RegistryError.to_api_error})


def _name(name: str) -> str:
    problem = model_name_problem(name)
    if problem:
        raise ApiError.invalid({"name": problem})
    return name


@app.get("/models", summary="Registered models", responses=responses(JsonObject, "{models: [...]}"))
def list_models() -> Response[dict]:
    models = registry.list_models()
    metrics.add_metric(name="RegistryReads", unit=MetricUnit.Count, value=1)
    return json_response(200, {"models": models})


@app.get("/models/<name>/versions/<version>", summary="One registered version",
         responses=responses(JsonObject, "the version, its metadata and the aliases on it"))
def get_version(name: str, version: str) -> Response[dict]:
    _name(name)
    number = parse_version(version)
    if number is None:
        raise ApiError.invalid({"version": "expected a positive integer version"})
    found = registry.get_version(name, number)
    aliases = [alias for alias, v in registry.aliases(name).items() if v == number]
    metrics.add_metric(name="RegistryReads", unit=MetricUnit.Count, value=1)
    return json_response(200, found.to_api(aliases))


@app.get("/models/<name>/aliases/<alias>", summary="Where an alias points (?at=: where it pointed then)",
         responses=responses(JsonObject, "the alias, its version and its history"))
def get_alias(name: str, alias: str,
              at: Annotated[Optional[str], Query(description="an ISO-8601 time or epoch seconds")] = None,
              ) -> Response[dict]:
    _name(name)
    problem = alias_problem(alias)
    if problem:
        raise ApiError.invalid({"alias": problem})
    history = registry.alias_history(name, alias)
    if at is None:
        version = registry.get_alias(name, alias)
        moved = history[-1].at if history else None
        body = {"model": name, "alias": alias, "version": version, "moved_at": moved,
                "history": [m.to_api() for m in history]}
    else:
        try:
            when = parse_time(at)
        except ValueError as exc:
            raise ApiError.invalid({"at": str(exc)}) from None
        if not history:
            registry.get_alias(name, alias)  # 404 for an unknown model or alias
        version = registry.alias_version_at(name, alias, when)
        body = {"model": name, "alias": alias, "at": when, "version": version}
    metrics.add_metric(name="RegistryReads", unit=MetricUnit.Count, value=1)
    return json_response(200, body)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
