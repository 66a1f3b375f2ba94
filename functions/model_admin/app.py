"""The registry, admin side: move an alias, remove it, approve or reject a version.

Routes (every route of the API needs the API key today; a separate admin key for these arrives
with the access-control issue):

- POST /models/{name}/aliases/{alias}  ``{"version": 3, "reason": "..."}`` -> the move
- DELETE /models/{name}/aliases/{alias}  (``?reason=``) -> the removal
- POST /models/{name}/versions/{version}/approval  ``{"status": "approved", "reason": "..."}``

Also invoked directly (the canary-rollout state machine promotes through it) with
``{"action": "move_alias", "model", "alias", "version", "reason", "actor"}``; errors are then
raised, so the state machine sees their type (``VersionNotFound``, ``VersionRejected``...).

Thin: check the input, call `mlops.models.registry_store` (one transaction per move: alias,
history and, for champion/challenger/shadow, the deployment record the router reads).
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.api_errors import ApiError, check_keys, parse_json_body
from mlops.models.registry import APPROVAL_STATUSES, alias_problem, model_name_problem, parse_version
from mlops.models.registry_store import RegistryError, RegistryStore
from mlops.rest_responses import answer_errors, json_response

logger = Logger()
metrics = Metrics()
app = APIGatewayRestResolver()
registry = RegistryStore(os.environ["REGISTRY_TABLE"], os.environ["ARTIFACTS_BUCKET"],
                         deployments_table=os.environ["DEPLOYMENTS_TABLE"], dynamodb=boto3.client("dynamodb"))
MAX_REASON = 1000


answer_errors(app, {RegistryError: RegistryError.to_api_error})


def _path(name: str, alias: str | None = None) -> dict[str, str]:
    problems = {}
    problem = model_name_problem(name)
    if problem:
        problems["name"] = problem
    if alias is not None:
        problem = alias_problem(alias)
        if problem:
            problems["alias"] = problem
    return problems


def _reason(value: Any, problems: dict[str, str]) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_REASON:
        problems["reason"] = f"expected a string of at most {MAX_REASON} characters"
        return ""
    return value


def _caller() -> str:
    identity = app.current_event.request_context.identity
    return f"api-key:{identity.api_key_id}" if identity.api_key_id else "api"


@app.post("/models/<name>/aliases/<alias>")
def move_alias(name: str, alias: str) -> Response:
    problems = _path(name, alias)
    body = parse_json_body(app.current_event.decoded_body)
    if not isinstance(body, dict):
        raise ApiError.invalid({"body": "expected a JSON object"})
    problems.update(check_keys(body, required=("version",), optional=("reason",)))
    version = parse_version(body.get("version"))
    if "version" in body and version is None:
        problems["version"] = "expected a positive integer version"
    reason = _reason(body.get("reason"), problems)
    if problems:
        raise ApiError.invalid(problems)
    move = registry.move_alias(name, alias, version, by=_caller(), reason=reason)  # type: ignore[arg-type]
    metrics.add_metric(name="AliasMoves", unit=MetricUnit.Count, value=1)
    logger.info("alias moved", extra=move.to_api())
    return json_response(200, move.to_api())


@app.delete("/models/<name>/aliases/<alias>")
def remove_alias(name: str, alias: str) -> Response:
    problems = _path(name, alias)
    reason = _reason(app.current_event.get_query_string_value("reason"), problems)
    if problems:
        raise ApiError.invalid(problems)
    move = registry.remove_alias(name, alias, by=_caller(), reason=reason)
    metrics.add_metric(name="AliasMoves", unit=MetricUnit.Count, value=1)
    logger.info("alias removed", extra=move.to_api())
    return json_response(200, move.to_api())


@app.post("/models/<name>/versions/<version>/approval")
def approval(name: str, version: str) -> Response:
    problems = _path(name)
    number = parse_version(version)
    if number is None:
        problems["version"] = "expected a positive integer version"
    body = parse_json_body(app.current_event.decoded_body)
    if not isinstance(body, dict):
        raise ApiError.invalid({"body": "expected a JSON object"})
    problems.update(check_keys(body, required=("status",), optional=("reason",)))
    if "status" in body and body["status"] not in APPROVAL_STATUSES:
        problems["status"] = f"expected one of {', '.join(APPROVAL_STATUSES)}"
    reason = _reason(body.get("reason"), problems)
    if problems:
        raise ApiError.invalid(problems)
    updated = registry.set_approval(name, number, body["status"], by=_caller(), reason=reason)  # type: ignore[arg-type]
    metrics.add_metric(name="ApprovalChanges", unit=MetricUnit.Count, value=1)
    return json_response(200, updated.to_api([a for a, v in registry.aliases(name).items() if v == number]))


def _direct(event: dict[str, Any]) -> dict[str, Any]:
    """A direct invoke (Step Functions): move or remove an alias, raising on failure."""
    action = event.get("action", "move_alias")
    name, alias = event.get("model"), event.get("alias")
    problems = _path(name if isinstance(name, str) else "", alias if isinstance(alias, str) else "")
    if problems:
        raise ValueError(f"invalid alias move {event!r}: {problems}")
    actor = str(event.get("actor") or "direct-invoke")
    reason = str(event.get("reason") or "")
    if action == "remove_alias":
        return registry.remove_alias(name, alias, by=actor, reason=reason).to_api()
    if action != "move_alias":
        raise ValueError(f"unknown action {action!r}; expected move_alias or remove_alias")
    version = parse_version(event.get("version"))
    if version is None:
        raise ValueError(f"version must be a positive integer, got {event.get('version')!r}")
    move = registry.move_alias(name, alias, version, by=actor, reason=reason)
    logger.info("alias moved", extra=move.to_api())
    return move.to_api()


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    if "httpMethod" not in event:
        metrics.add_metric(name="AliasMoves", unit=MetricUnit.Count, value=1)
        return _direct(event)
    return app.resolve(event, context)
