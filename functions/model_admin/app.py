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

Audit (`mlops.audit.trail`): each move, removal and approval is appended to the model's audit
chain once the registry change is made (``alias.moved``, ``alias.removed``, ``approval.set``,
with the caller and, for API calls, the request); an API call that is refused (4xx) leaves an
``admin.api_call`` record with its status and error. If the audit append fails, the change
stands and the answer is unchanged; the failure is logged as an error and counted in the
``AuditWriteFailures`` metric.
"""

from __future__ import annotations

import json
import os
from typing import Annotated, Any, Optional

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops import aws
from mlops.api_errors import ApiError
from mlops.api_models import MAX_REASON, AliasMoveBody, ApprovalBody, JsonObject, responses
from mlops.api_validation import api_resolver
from mlops.audit.events import ADMIN_API_CALL, ALIAS_MOVED, ALIAS_REMOVED, APPROVAL_SET, alias_entity, version_entity
from mlops.audit.store import AuditStore
from mlops.audit.trail import record_change
from mlops.idempotent_routes import IdempotentRequests
from mlops.models.registry import AliasMove, alias_problem, model_name_problem, parse_version
from mlops.models.registry_store import RegistryError, RegistryStore
from mlops.rest_responses import answer_errors, json_response

logger = Logger()
metrics = Metrics()
app = api_resolver()
app.use([IdempotentRequests().middleware])  # Idempotency-Key on the POST routes (mlops.idempotent_routes)
registry = RegistryStore(os.environ["REGISTRY_TABLE"], os.environ["ARTIFACTS_BUCKET"],
                         deployments_table=os.environ["DEPLOYMENTS_TABLE"], dynamodb=aws.client("dynamodb"))
audit = AuditStore(os.environ["AUDIT_TABLE"], dynamodb=registry.dynamodb)


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


def _caller() -> str:
    identity = app.current_event.request_context.identity
    return f"api-key:{identity.api_key_id}" if identity.api_key_id else "api"


def _request() -> dict[str, Any]:
    event = app.current_event
    return {"method": event.http_method, "path": event.path, "request_id": event.request_context.request_id}


def _audit_move(move: AliasMove, request: dict[str, Any] | None) -> None:
    details = {k: v for k, v in move.to_api().items() if k not in ("model", "at", "by")}
    record_change(audit, logger, ALIAS_REMOVED if move.version is None else ALIAS_MOVED, move.by or "unknown",
                  model=move.model, entity=alias_entity(move.model, move.alias),
                  details={**details, "request": request}, at=move.at)


@app.post("/models/<name>/aliases/<alias>", summary="Move an alias to a version",
          responses=responses(JsonObject, "the move"))
def move_alias(name: str, alias: str, body: Annotated[AliasMoveBody, Body()]) -> Response[dict]:
    problems = _path(name, alias)
    if problems:
        raise ApiError.invalid(problems)
    move = registry.move_alias(name, alias, body.version, by=_caller(), reason=body.reason or "")
    _audit_move(move, _request())
    metrics.add_metric(name="AliasMoves", unit=MetricUnit.Count, value=1)
    logger.info("alias moved", extra=move.to_api())
    return json_response(200, move.to_api())


@app.delete("/models/<name>/aliases/<alias>", summary="Remove an alias",
            responses=responses(JsonObject, "the removal"))
def remove_alias(name: str, alias: str,
                 reason: Annotated[Optional[str], Query(max_length=MAX_REASON)] = None) -> Response[dict]:
    problems = _path(name, alias)
    reason = reason or ""
    if problems:
        raise ApiError.invalid(problems)
    move = registry.remove_alias(name, alias, by=_caller(), reason=reason)
    _audit_move(move, _request())
    metrics.add_metric(name="AliasMoves", unit=MetricUnit.Count, value=1)
    logger.info("alias removed", extra=move.to_api())
    return json_response(200, move.to_api())


@app.post("/models/<name>/versions/<version>/approval", summary="Approve or reject a version",
          responses=responses(JsonObject, "the version with its approval"))
def approval(name: str, version: str, body: Annotated[ApprovalBody, Body()]) -> Response[dict]:
    problems = _path(name)
    number = parse_version(version)
    if number is None:
        problems["version"] = "expected a positive integer version"
    if problems:
        raise ApiError.invalid(problems)
    reason = body.reason or ""
    updated = registry.set_approval(name, number, body.status, by=_caller(), reason=reason)  # type: ignore[arg-type]
    record_change(audit, logger, APPROVAL_SET, _caller(), model=name,
                  entity=version_entity(name, number),  # type: ignore[arg-type]
                  details={"version": number, "status": body.status, "reason": reason, "request": _request()},
                  at=updated.approval.get("at"))
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
        move = registry.remove_alias(name, alias, by=actor, reason=reason)
        _audit_move(move, None)
        return move.to_api()
    if action != "move_alias":
        raise ValueError(f"unknown action {action!r}; expected move_alias or remove_alias")
    version = parse_version(event.get("version"))
    if version is None:
        raise ValueError(f"version must be a positive integer, got {event.get('version')!r}")
    move = registry.move_alias(name, alias, version, by=actor, reason=reason)
    _audit_move(move, None)
    logger.info("alias moved", extra=move.to_api())
    return move.to_api()


def _audit_refused(event: dict[str, Any], response: dict[str, Any]) -> None:
    """An admin API call that changed nothing: who tried what, and why it was refused."""
    try:
        error = json.loads(response.get("body") or "{}").get("error")
    except (ValueError, AttributeError):
        error = None
    name = (event.get("pathParameters") or {}).get("name")
    identity = (event.get("requestContext") or {}).get("identity") or {}
    record_change(audit, logger, ADMIN_API_CALL,
                  f"api-key:{identity['apiKeyId']}" if identity.get("apiKeyId") else "api",
                  model=name if isinstance(name, str) and model_name_problem(name) is None else None,
                  entity=str(event.get("path") or "")[:256] or None,
                  details={"method": event.get("httpMethod"), "path": event.get("path"),
                           "request_id": (event.get("requestContext") or {}).get("requestId"),
                           "status": response.get("statusCode"), "error": error})


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    if "httpMethod" not in event:
        metrics.add_metric(name="AliasMoves", unit=MetricUnit.Count, value=1)
        return _direct(event)
    response = app.resolve(event, context)
    if response.get("statusCode", 500) >= 400:
        _audit_refused(event, response)
    return response
