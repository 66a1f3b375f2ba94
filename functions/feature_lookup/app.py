"""GET /features/{entity_id}?views=a,b: the online features of one entity.

One DynamoDB round trip for all the views (BatchGetItem); each view answers its values, event
time and freshness, or ``missing``, or ``expired`` when the stored value is past the view's
TTL (decided now, before DynamoDB's TTL reaper deletes anything). See
:mod:`mlops.features.serving` for join keys of other entities and on-demand views.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.api_models import JsonObject, responses
from mlops.api_validation import api_resolver
from mlops.features.errors import BadRequest
from mlops.features.online_store import OnlineStore
from mlops.features.serving import lookup, parse_lookup
from mlops.rest_responses import answer_unavailable

logger = Logger()
metrics = Metrics()
app = api_resolver()
answer_unavailable(app)  # AWS throttled or unreachable: 503 with Retry-After
store = OnlineStore.from_env()


@app.get("/features/<entity_id>", summary="An entity's online feature values",
         description="On-demand views take their request-time inputs as further query parameters.",
         responses=responses(JsonObject, "each view's values and freshness"))
def get_features(entity_id: str,
                 views: Annotated[str, Query(min_length=1, description="comma-separated feature views")],
                 ) -> Response[dict]:
    event = app.current_event
    entity = (event.path_parameters or {}).get("entity_id", entity_id)
    try:
        request = parse_lookup(entity, event.query_string_parameters)
    except BadRequest as exc:
        return Response(status_code=400, content_type=content_types.APPLICATION_JSON, body=exc.to_dict())
    answer = lookup(store, request, datetime.now(timezone.utc))
    expired = sum(1 for v in answer["views"].values() if v["status"] == "expired")
    metrics.add_metric(name="FeatureLookups", unit=MetricUnit.Count, value=1)
    if expired:
        metrics.add_metric(name="FeatureValuesExpired", unit=MetricUnit.Count, value=expired)
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=answer)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
