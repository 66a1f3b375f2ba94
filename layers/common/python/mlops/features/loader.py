"""The batch loader: a CSV or JSON-lines file dropped under ``incoming/<view>/`` in the data
bucket is ingested like ``POST /features`` (per-row rejection), in chunks of
:data:`mlops.features.ingest.MAX_ROWS` rows.

For every file a report is written next to the data, ``reports/feature-loader/<file key>.json``:
the view, row counts, the online write's counts and every rejected row with its field-level
errors (row numbers count data rows from 0, as the API does). A file that cannot be read at
all (unknown view, unsupported type, not UTF-8) gets a report with the error and stores
nothing. A file that is gone by the time the event arrives is skipped (S3 events can arrive
late or twice; the handler also makes each object version load once, see its docstring). A
load that failed half-way (a chunk or a day throttled) is retried whole: the chunks already
stored are rewritten, not added, since offline parts and statistics are content-addressed.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from mlops.features.errors import BadRequest
from mlops.features.ingest import MAX_REPORTED_ROWS, MAX_ROWS, parse_file, rejection_details, view_of_key
from mlops.features.store import FeatureStore

REPORT_PREFIX = "reports/feature-loader/"


def report_key(key: str) -> str:
    """Where the report of a dropped file goes."""
    return f"{REPORT_PREFIX}{key}.json"


def load_file(store: FeatureStore, s3: Any, bucket: str, key: str, *, now: datetime | int) -> dict[str, Any]:
    """Ingest one dropped file; returns its summary (also stored as the report)."""
    try:
        data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "NoSuchBucket"):
            return {"key": key, "status": "missing"}
        raise
    summary: dict[str, Any] = {"key": key, "report": report_key(key)}
    try:
        view = store.catalog.feature_view(view_of_key(key), field="key")
        parsed = parse_file(key, data)
    except BadRequest as exc:
        summary.update(status="rejected", error=exc.to_dict())
        _write_report(s3, bucket, summary)
        return summary
    accepted, rejected = 0, []
    online = {"rows": 0, "written": 0, "stale": 0, "expired": 0}
    source = f"s3://{bucket}/{key}"
    for offset in range(0, len(parsed.rows), MAX_ROWS):
        chunk = parsed.rows[offset:offset + MAX_ROWS]
        errors = {i - offset: e for i, e in parsed.errors.items() if offset <= i < offset + MAX_ROWS}
        outcome = store.ingest(view, chunk, now=now, from_text=parsed.from_text, source=source, read_errors=errors)
        accepted += outcome.accepted
        rejected += [{"row": r["row"] + offset, "errors": r["errors"]} for r in outcome.rejected]
        if outcome.online is not None:
            for k, v in outcome.online.to_dict().items():
                online[k] += v
    summary.update(
        status="loaded" if accepted else "rejected",
        view=view.name,
        rows=len(parsed.rows),
        accepted=accepted,
        rejected_rows=len(rejected),
        online=online,
        rejected=rejection_details(rejected[:MAX_REPORTED_ROWS]),
    )
    _write_report(s3, bucket, summary)
    return summary


def _write_report(s3: Any, bucket: str, summary: dict[str, Any]) -> None:
    s3.put_object(Bucket=bucket, Key=summary["report"], Body=json.dumps(summary, indent=1).encode(),
                  ContentType="application/json")
