"""POST /feedback: join a ground-truth label to a logged prediction.

Thin: parse the body (`mlops.models.feedback`), find the prediction (by request id, or the
entity's latest prediction at or before a time) and join the label with one conditional write
(`mlops.models.prediction_log`). Idempotent by construction: the same label again answers 200
with ``"duplicate": true``; a different label is a 409; an unknown prediction a 404.

When the prediction was served under an experiment (its log item names it) and its outcome is
not counted yet (no ``outcome_recorded_at`` on the item), the label - first or repeated - is
followed by one transaction (`mlops.experiments.store.ExperimentStore.apply_feedback`): the
outcomes added to the experiment's totals, for a bandit its reward in the bandit state, and the
marker set on the prediction (`mlops.models.prediction_log.outcome_marker`), so the outcome
counts exactly once, also under concurrent retries. ``"outcome_recorded"`` says whether this
call counted it (``"experiment"`` then holds the outcomes, reward and bandit version). When that
transaction is throttled or AWS is unreachable the answer is a 503 with Retry-After (the label
may be stored already): the retry, a duplicate label, records the outcome. An experiment error
(e.g. the bandit state kept changing) is answered with its status, and a retry records it too.
"""

from __future__ import annotations

import os
from typing import Annotated
from datetime import datetime, timezone

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops import aws
from mlops.api_errors import ApiError
from mlops.api_models import FeedbackAnswer, FeedbackBody, responses
from mlops.api_validation import api_resolver
from mlops.experiments.errors import ExperimentError
from mlops.experiments.store import ExperimentStore
from mlops.idempotent_routes import IdempotentRequests
from mlops.models.feedback import parse_feedback
from mlops.models.prediction_log import LabelConflict, PredictionLog, PredictionNotFound, outcome_marker
from mlops.models.registry import iso_utc
from mlops.rest_responses import answer_unavailable, error_response

logger = Logger()
metrics = Metrics()
app = api_resolver()
app.use([IdempotentRequests().middleware])  # Idempotency-Key on the POST routes (mlops.idempotent_routes)
answer_unavailable(app)  # AWS throttled or unreachable: 503 with Retry-After
log = PredictionLog(os.environ["PREDICTIONS_TABLE"], dynamodb=aws.client("dynamodb"))
experiments = ExperimentStore(os.environ["EXPERIMENTS_TABLE"], dynamodb=log.dynamodb)


@app.exception_handler(ApiError)
def _api_error(exc: ApiError) -> Response:
    metrics.add_metric(name="FeedbackRejected", unit=MetricUnit.Count, value=1)
    return error_response(exc)


@app.post("/feedback", summary="The true label of a prediction",
          responses=responses(FeedbackAnswer, "the label joined to its prediction"))
def feedback(body: Annotated[FeedbackBody, Body()]) -> Response[dict]:
    req = parse_feedback(app.current_event.json_body)
    caller = (app.current_event.request_context.identity.api_key_id or "unknown")
    request_id = req.request_id
    if request_id is None:
        found = log.latest_for_entity(req.entity_id or "", req.at or "", model=req.model)
        if found is None:
            raise ApiError.not_found("prediction_not_found",
                                     f"no prediction for entity {req.entity_id!r} at or before {req.at}",
                                     "entity_id")
        request_id = found.request_id
    now = iso_utc(datetime.now(timezone.utc))
    try:
        joined, first = log.record_feedback(request_id, req.label, at=now, by=caller)
    except PredictionNotFound as exc:
        raise ApiError.not_found("prediction_not_found", str(exc), "request_id") from None
    except LabelConflict as exc:
        raise ApiError.conflict(f"prediction {request_id} already has label {exc.existing.label}; "
                                f"feedback gave {exc.label}", "label", "conflicts with the stored label") from None
    metrics.add_dimension(name="model", value=joined.model)
    metrics.add_metric(name="Feedback", unit=MetricUnit.Count, value=1 if first else 0)
    metrics.add_metric(name="FeedbackCorrect", unit=MetricUnit.Count, value=int(joined.predicted_label == req.label))
    body = {"request_id": request_id, "label": req.label, "duplicate": not first,
            "correct": joined.predicted_label == req.label, "outcome_recorded": False, "prediction": joined.to_api()}
    if joined.experiment_id is not None and joined.outcome_recorded_at is None:
        try:
            outcome = experiments.apply_feedback(
                joined.experiment_id, joined.experiment_variant or "", probability=joined.probability,
                predicted_label=joined.predicted_label, label=req.label,
                marker=outcome_marker(log.table, request_id, req.label, at=now))
        except ExperimentError as exc:  # the label is stored, the outcome not yet: a retry records it
            logger.error("experiment outcome not recorded", extra={"experiment_id": joined.experiment_id,
                                                                   "request_id": request_id, "error": str(exc)})
            metrics.add_metric(name="ExperimentOutcomeErrors", unit=MetricUnit.Count, value=1)
            details = exc.to_dict()
            raise ApiError(exc.status, str(details["error"]), f"the label is stored; the experiment outcome is not "
                           f"recorded yet (retry to record it): {exc}", list(details["details"])) from None
        if outcome is not None:
            body["outcome_recorded"] = True
            body["experiment"] = outcome
            metrics.add_metric(name="ExperimentOutcomes", unit=MetricUnit.Count, value=1)
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=body)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
