"""POST /features: ingest a batch of feature rows into the offline and online stores.

Body ``{"view": name, "rows": [...], "all_or_nothing": false}``. Answers 200 when every row
was stored, 207 when some rows were rejected (listed with field-level errors), 400
``{"error", "message", "details"}`` when nothing was stored. With an ``Idempotency-Key``
header the request is applied once: a retry with the same key and body gets the first
answer again (Powertools idempotency on the idempotency table), a retry while the first is
still running gets 409, and the same key with another body gets 422. Keys are scoped per API
key (two callers may use the same key without seeing each other's answers).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.config import Resources
from mlops.features.errors import BadRequest
from mlops.features.ingest import outcome_status, parse_ingest_request, rejection_error
from mlops.features.store import FeatureStore

logger = Logger()
metrics = Metrics()
app = APIGatewayRestResolver()
store = FeatureStore.from_env()
persistence = DynamoDBPersistenceLayer(table_name=Resources.from_env().tables["idempotency"])
idempotency = IdempotencyConfig(
    event_key_jmespath="key",
    payload_validation_jmespath="body_sha256",
    expires_after_seconds=24 * 3600,
)
MAX_KEY_LENGTH = 255


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def _ingest(body: str | None) -> dict[str, Any]:
    """Parse, validate and store; returns ``{"status", "body"}`` (what a retry gets again)."""
    now = datetime.now(timezone.utc)
    try:
        request = parse_ingest_request(body)
        outcome = store.ingest(request.view, request.rows, now=now, all_or_nothing=request.all_or_nothing)
    except BadRequest as exc:
        return {"status": 400, "body": exc.to_dict()}
    status = outcome_status(outcome.accepted, outcome.rejected, outcome.batch_rejected)
    metrics.add_metric(name="FeatureRowsAccepted", unit=MetricUnit.Count, value=outcome.accepted)
    metrics.add_metric(name="FeatureRowsRejected", unit=MetricUnit.Count, value=len(outcome.rejected))
    if status == 400:
        return {"status": 400, "body": rejection_error(outcome.rejected, outcome.batch_rejected, outcome.total).to_dict()}
    logger.info("ingested", extra={"view": outcome.view, "accepted": outcome.accepted,
                                   "rejected": len(outcome.rejected), "online": outcome.online.to_dict()})
    return {"status": status, "body": outcome.to_dict()}


@idempotent_function(data_keyword_argument="request", persistence_store=persistence, config=idempotency)
def _ingest_once(request: dict[str, Any]) -> dict[str, Any]:
    return _ingest(request["body"])


@app.post("/features")
def post_features() -> Response:
    event = app.current_event
    body = event.decoded_body if event.is_base64_encoded else event.body
    key = event.headers.get("Idempotency-Key")
    if key is None:
        result = _ingest(body)
    elif not key.strip() or len(key) > MAX_KEY_LENGTH:
        return _json(400, BadRequest("invalid_header", "the Idempotency-Key header must be 1 to 255 characters",
                                     [{"field": "Idempotency-Key", "problem": "empty or too long"}]).to_dict())
    else:
        digest = hashlib.sha256((body or "").encode()).hexdigest()
        caller = event.request_context.identity.api_key_id or ""  # keys are scoped per API key
        try:
            result = _ingest_once(request={"key": f"{caller}:{key}", "body_sha256": digest, "body": body})
        except IdempotencyAlreadyInProgressError:
            return _json(409, {"error": "request_in_progress", "message": "a request with this Idempotency-Key "
                               "is still being processed; retry later", "details": []})
        except IdempotencyValidationError:
            return _json(422, {"error": "idempotency_key_reused", "message": "this Idempotency-Key was used with "
                               "a different body", "details": [{"field": "Idempotency-Key", "problem": "reused"}]})
    return _json(result["status"], result["body"])


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    idempotency.register_lambda_context(context)
    return app.resolve(event, context)
