"""POST /features: ingest a batch of feature rows into the offline and online stores.

Body ``{"view": name, "rows": [...], "all_or_nothing": false}``. Answers 200 when every row
was stored, 207 when some rows were rejected (listed with field-level errors), 400
``{"error", "message", "details"}`` when nothing was stored. With an ``Idempotency-Key``
header the request is applied once: a retry with the same key and body gets the first
answer again, a retry while the first is still running gets 409, and the same key with
another body gets 422 (`mlops.idempotent_routes`, shared by every POST route). Keys are scoped
per API key (two callers may use the same key without seeing each other's answers).

Without a key, resending is safe too: offline parts and daily statistics are named by the
content hash of each day's rows (`mlops.features.offline_store`), so a retry after a 503 that
came half-way (an earlier day stored, a later one throttled), or the same rows sent twice,
leaves the stores as one successful request would (only ``rows_ingested`` counts requests).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.api_models import IngestBody, JsonObject, responses
from mlops.api_validation import api_resolver
from mlops.features.errors import BadRequest
from mlops.features.ingest import outcome_status, parse_ingest_request, rejection_error
from mlops.features.store import FeatureStore
from mlops.idempotent_routes import IdempotentRequests
from mlops.rest_responses import answer_unavailable

logger = Logger()
metrics = Metrics()
app = api_resolver()
app.use([IdempotentRequests().middleware])  # Idempotency-Key on the POST routes (mlops.idempotent_routes)
answer_unavailable(app)  # AWS throttled or unreachable: 503 with Retry-After
store = FeatureStore.from_env()


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


@app.post("/features", summary="Ingest rows into a feature view (Idempotency-Key header: safe retries)",
          responses=responses(JsonObject, "every row accepted",
                              extra={207: ("some rows accepted, the others rejected with reasons", JsonObject)}))
def post_features(request: Annotated[IngestBody, Body()]) -> Response[dict]:
    event = app.current_event
    result = _ingest(event.decoded_body if event.is_base64_encoded else event.body)
    return _json(result["status"], result["body"])


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
