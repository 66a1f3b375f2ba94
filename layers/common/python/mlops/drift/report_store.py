"""Drift reports in S3 (ArtifactsBucket): one JSON document and one PNG per check.

Keys: ``reports/drift/<model>/<YYYYmmddTHHMMSS.ffffffZ>.json`` and ``.png`` (UTC, so the
keys of one model list in time order), next to the monitoring reports
(``reports/monitoring/<model>/``) in the same bucket.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from mlops import aws

PREFIX = "reports/drift"


def report_keys(model: str, at: datetime) -> tuple[str, str]:
    """The JSON and PNG keys of the report of ``model`` made at ``at`` (aware)."""
    stamp = at.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    base = f"{PREFIX}/{model}/{stamp}"
    return f"{base}.json", f"{base}.png"


@dataclass(frozen=True)
class StoredReport:
    """Where a report was written."""

    bucket: str
    json_key: str
    png_key: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "json_key": self.json_key, "png_key": self.png_key}


class ReportStore:
    """Drift reports of every model in one bucket."""

    def __init__(self, bucket: str, *, s3: Any = None) -> None:
        self.bucket = bucket
        self._s3 = s3

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            self._s3 = aws.client("s3")
        return self._s3

    def save(self, model: str, at: datetime, report: dict[str, Any], png: bytes | None) -> StoredReport:
        """Write the JSON report (strict JSON) and, when given, its PNG."""
        json_key, png_key = report_keys(model, at)
        body = json.dumps(report, separators=(",", ":"), allow_nan=False).encode("utf-8")
        self.s3.put_object(Bucket=self.bucket, Key=json_key, Body=body, ContentType="application/json")
        if png is None:
            return StoredReport(self.bucket, json_key, None)
        self.s3.put_object(Bucket=self.bucket, Key=png_key, Body=png, ContentType="image/png")
        return StoredReport(self.bucket, json_key, png_key)
