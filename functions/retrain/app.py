"""POST /retrain (admin): start a retraining run by hand.

Body: the retraining input of `mlops.rollout.plan` (``{"model", "window"?, "spec"?,
"data_policy"?, "gate"?, "canary"?}``), checked here so that a mistake is a 400 naming the
field rather than a failed execution. The decision (reason ``manual``) goes through
`mlops.rollout.launcher`, like the drift check's and the schedule's: 202 with the execution,
or 409 while a run of the model holds its lease. A function of its own because the retraining
state machine invokes the rollout function: a function that both started the machine and
served it would make the template circular.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops import aws
from mlops.api_errors import ApiError
from mlops.api_models import JsonObject, RetrainBody, responses
from mlops.api_validation import api_resolver
from mlops.audit.store import AuditStore
from mlops.audit.trail import record_change
from mlops.idempotent_routes import IdempotentRequests
from mlops.models.registry import model_name_problem
from mlops.models.training_specs import SPECS
from mlops.rest_responses import answer_errors, json_response
from mlops.rollout import plan
from mlops.rollout.launcher import RetrainingLauncher
from mlops.rollout.lock import LockHeld
from mlops.rollout.triggers import RetrainingDecision

logger = Logger()
app = api_resolver()
app.use([IdempotentRequests().middleware])  # Idempotency-Key on the POST routes (mlops.idempotent_routes)
audit_store = AuditStore(os.environ["AUDIT_TABLE"], dynamodb=aws.client("dynamodb"))
answer_errors(app)


def _caller() -> str:
    identity = app.current_event.request_context.identity
    return f"api-key:{identity.api_key_id}" if identity.api_key_id else "api"


@app.post("/retrain", summary="Start a retraining run of a model",
          responses=responses(JsonObject, "the started run", status=202))
def retrain(request: Annotated[RetrainBody, Body()]) -> Response[dict]:
    body = app.current_event.json_body
    problem = model_name_problem(body.get("model"))
    if problem:
        raise ApiError.invalid({"model": problem})
    now = datetime.now(timezone.utc)
    try:
        plan.retraining_run(body, execution_id="check", run_id="check", now=now, specs=SPECS)
    except plan.RunInputError as exc:
        field, _, problem = str(exc).partition(": ")
        raise ApiError.invalid({field: problem or str(exc)}) from None
    decision = RetrainingDecision(True, ("manual",), {"by": _caller()})
    overrides = {k: v for k, v in body.items() if k not in ("model", "reason")}
    try:
        started = RetrainingLauncher.from_env().start(body["model"], decision, now, overrides)
    except LockHeld as exc:
        raise ApiError.conflict(str(exc), "model", "a retraining run of this model is in progress") from None
    record_change(audit_store, logger, "admin.retrain", _caller(), model=body["model"], details=started)
    return json_response(202, {"model": body["model"], "reasons": ["manual"], **started})


@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
