"""The batch loader: triggered by S3 when a file lands under ``incoming/`` in the data bucket.

Each record's object is ingested by :func:`mlops.features.loader.load_file` (CSV, JSON lines
or JSON; per-row rejection; a report under ``reports/feature-loader/``). S3 delivers events
at least once, so each object version (bucket, key, eTag) is loaded once: Powertools
idempotency on the idempotency table returns the first summary to a duplicate delivery.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.config import Resources
from mlops.features.ingest import object_key
from mlops.features.loader import load_file
from mlops.features.store import FeatureStore

logger = Logger()
metrics = Metrics()
store = FeatureStore.from_env()
s3 = boto3.client("s3")
persistence = DynamoDBPersistenceLayer(table_name=Resources.from_env().tables["idempotency"])
idempotency = IdempotencyConfig(event_key_jmespath="[bucket, key, etag]", expires_after_seconds=7 * 24 * 3600)


@idempotent_function(data_keyword_argument="record", persistence_store=persistence, config=idempotency)
def _load(record: dict[str, Any]) -> dict[str, Any]:
    summary = load_file(store, s3, record["bucket"], record["key"], now=datetime.now(timezone.utc))
    logger.info("loaded file", extra={k: v for k, v in summary.items() if k != "rejected"})
    metrics.add_metric(name="FeatureFilesLoaded", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="FeatureRowsAccepted", unit=MetricUnit.Count, value=summary.get("accepted", 0))
    return summary


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    idempotency.register_lambda_context(context)
    files = []
    for record in event.get("Records", []):
        s3_part = record["s3"]
        files.append(_load(record={
            "bucket": s3_part["bucket"]["name"],
            "key": object_key(s3_part["object"]["key"]),
            "etag": s3_part["object"].get("eTag") or s3_part["object"].get("versionId") or "",
        }))
    return {"files": files}
