"""Materialization: copy the offline store's rows into the online store, and check freshness.

Invoke it directly with one of::

    {"start": "2024-05-01T00:00:00Z", "end": "2024-05-02T00:00:00Z", "views": ["tester_health"]}
    {"end": "2024-05-02T00:00:00Z"}      # incremental: from each view's watermark to end
    {}                                   # incremental up to now

or from an EventBridge schedule (incremental up to the event's scheduled ``time``). Optional
``"freshness_thresholds": {"<view>": seconds}`` (default: each view's TTL). The answer lists
what was materialized and every view's freshness; a stale view is logged as a warning and
counted in the ``StaleFeatureViews`` metric (alarm on it), with ``FeatureFreshnessSeconds`` per view.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.features.errors import BadRequest
from mlops.features.store import FeatureStore
from mlops.features.timestamps import TimestampError, parse_timestamp

logger = Logger()
metrics = Metrics()
store = FeatureStore.from_env()


def _time(event: dict[str, Any], name: str) -> int | None:
    if event.get(name) is None:
        return None
    try:
        return parse_timestamp(event[name])
    except TimestampError as exc:
        raise BadRequest("invalid_parameter", f"{name}: {exc}", [{"field": name, "problem": str(exc)}]) from None


def materialize(event: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Run what the event asks for; returns the materialization and freshness report."""
    scheduled = event.get("source") == "aws.events"
    start = None if scheduled else _time(event, "start")
    end = _time(event, "time" if scheduled else "end")
    clock = end if scheduled and end is not None else now
    end = end if end is not None else int(now.timestamp() * 1_000_000)
    views = event.get("views")
    if start is not None:
        results = store.materialize(start, end, views, now=clock)
    else:
        results = store.materialize_incremental(end, views, now=clock)
    thresholds = {k: timedelta(seconds=float(v)) for k, v in (event.get("freshness_thresholds") or {}).items()}
    freshness = store.freshness(now=clock, thresholds=thresholds)
    stale = [f.view for f in freshness if f.stale]
    for f in freshness:
        if f.stale:
            logger.warning("feature view is stale", extra=f.to_dict())
        if f.freshness is not None:
            with single_metric(name="FeatureFreshnessSeconds", unit=MetricUnit.Seconds,
                               value=f.freshness.total_seconds(), namespace=metrics.namespace) as metric:
                metric.add_dimension(name="view", value=f.view)
    metrics.add_metric(name="StaleFeatureViews", unit=MetricUnit.Count, value=len(stale))
    return {
        "materialized": [r.to_dict() for r in results],
        "freshness": [f.to_dict() for f in freshness],
        "stale": stale,
    }


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    try:
        return materialize(event or {}, datetime.now(timezone.utc))
    except BadRequest as exc:
        return exc.to_dict()
