"""GET /feature-views: the feature registry: entities, feature views and on-demand views, each
with its latest version, content hash and version history, and each feature view's freshness.

The deployed code's definitions are applied to the registry first (once per execution
environment): a changed schema is recorded as a new version, never overwritten.
"""

from __future__ import annotations

from datetime import datetime, timezone

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.api_models import JsonObject, responses
from mlops.api_validation import api_resolver
from mlops.features.store import FeatureStore
from mlops.rest_responses import answer_unavailable

logger = Logger()
metrics = Metrics()
app = api_resolver()
answer_unavailable(app)  # AWS throttled or unreachable: 503 with Retry-After
store = FeatureStore.from_env()


@app.get("/feature-views", summary="The feature views and their freshness",
         responses=responses(JsonObject, "{feature_views: [...]}"))
def list_feature_views() -> Response[dict]:
    listing = store.listing(now=datetime.now(timezone.utc))
    stale = [v["name"] for v in listing["feature_views"] if v.get("freshness", {}).get("stale")]
    metrics.add_metric(name="StaleFeatureViews", unit=MetricUnit.Count, value=len(stale))
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=listing)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
