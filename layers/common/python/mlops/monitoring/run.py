"""A monitoring pass against the stack: read the log window, monitor, report, alert.

The AWS side of :mod:`mlops.monitoring.monitor`, used by the monitor function:

1. the model's versions from the registry (1..latest), each version's rows in
   ``[start, end)`` from the prediction log's ``by_model_version`` index
   (`PredictionLog.version_rows`);
2. each version's baseline (`mlops.drift.baseline_store`) for data quality; a version without
   one (or with a corrupt one) is reported without data quality;
3. :func:`~mlops.monitoring.monitor.monitor`;
4. the report: ``reports/monitoring/<model>/<end>/report.html`` (PNG plots inline) and
   ``summary.json`` next to it, in the artifacts bucket;
5. when ``publish``, the alerts to EventBridge and SNS (:class:`AlertPublisher`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mlops.models.registry import iso_utc
from mlops.monitoring.alerts import AlertPublisher
from mlops.monitoring.config import MonitoringConfig
from mlops.monitoring.data_quality import QualityRanges
from mlops.monitoring.monitor import monitor
from mlops.monitoring.report import render_html, render_plots

REPORT_PREFIX = "reports/monitoring"
logger = logging.getLogger(__name__)


def report_prefix(model: str, end: datetime) -> str:
    """``reports/monitoring/<model>/<end, e.g. 2027-01-15T10-00-00Z>``."""
    return f"{REPORT_PREFIX}/{model}/{end.strftime('%Y-%m-%dT%H-%M-%SZ')}"


@dataclass
class MonitoringRun:
    """The stores one pass uses."""

    log: Any            # mlops.models.prediction_log.PredictionLog
    registry: Any       # mlops.models.registry_store.RegistryStore
    bucket: str         # ArtifactsBucket: baselines in, reports out
    s3: Any
    publisher: AlertPublisher | None = None

    def _quality(self, model: str, version: int, margin: float) -> QualityRanges | None:
        from mlops.drift.baseline_store import BaselineCorrupt, BaselineNotFound, BaselineStore  # noqa: PLC0415

        try:
            baseline = BaselineStore(self.bucket, s3=self.s3).load(model, version)
        except BaselineNotFound:
            return None
        except BaselineCorrupt as exc:  # reported without data quality; the rest still counts
            logger.warning("baseline of %s v%s unusable: %s", model, version, exc)
            return None
        return QualityRanges.from_baseline(baseline, margin=margin)

    def run(self, model: str, *, end: datetime, hours: float, bucket_seconds: int, config: MonitoringConfig,
            publish: bool) -> dict[str, Any]:
        """One pass; returns the summary (JSON form) with ``report`` keys and ``published``
        counts. Raises the registry's ModelNotFound for an unknown model."""
        latest = self.registry.get_model(model)["latest_version"] or 0
        start = end - timedelta(hours=hours)
        config = config.for_model(model)
        rows: dict[int, list[Mapping[str, Any]]] = {}
        quality: dict[int, QualityRanges | None] = {}
        for version in range(1, latest + 1):
            found = list(self.log.version_rows(model, version, iso_utc(start), iso_utc(end)))
            if found:
                rows[version] = found
                quality[version] = self._quality(model, version, config.data_quality.margin)
        summary = monitor(model, rows, start=start, now=end, bucket_seconds=bucket_seconds, config=config,
                          quality=quality)
        body = summary.to_dict()
        prefix = report_prefix(model, end)
        page = render_html(body, render_plots(body))
        self.s3.put_object(Bucket=self.bucket, Key=f"{prefix}/report.html", Body=page.encode("utf-8"),
                           ContentType="text/html; charset=utf-8")
        body["report"] = {"bucket": self.bucket, "html": f"{prefix}/report.html", "json": f"{prefix}/summary.json"}
        self.s3.put_object(Bucket=self.bucket, Key=f"{prefix}/summary.json", ContentType="application/json",
                           Body=json.dumps(body, separators=(",", ":"), allow_nan=False).encode("utf-8"))
        published = {"events": 0, "messages": 0}
        if publish and summary.alerts and self.publisher is not None:
            delivery = self.publisher.publish(summary.alerts)
            published = {"events": delivery.events, "messages": delivery.messages}
        body["published"] = published
        return body
