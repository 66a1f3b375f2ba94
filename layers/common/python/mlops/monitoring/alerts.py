"""Alerts out of monitoring: EventBridge events and SNS messages (the AWS adapter).

An :class:`Alert` is plain data (kind, severity, model, version, title, detail). The
:class:`AlertPublisher` sends each alert

* to EventBridge (``PutEvents``, 10 per call) with source ``mlops.monitoring`` and a
  detail-type per kind (:data:`DETAIL_TYPES`), so rules can route e.g. burn-rate pages apart
  from data-quality tickets; the detail is the alert's JSON;
* to the SNS topic ``ALERTS_TOPIC_ARN`` (``PublishBatch``, 10 per call), subject the title,
  message the JSON, with ``kind``, ``severity`` and ``model`` message attributes for
  subscription filter policies.

Either destination is skipped when not configured (no topic ARN; ``event_bus`` None). A
failed entry raises :class:`AlertDeliveryError` after the whole batch was tried, naming how
many did not go out.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from mlops import aws

SOURCE = "mlops.monitoring"
DETAIL_TYPES = {
    "slo_burn_rate": "MLOps SLO Burn Rate",
    "slo_breach": "MLOps SLO Breach",
    "anomaly": "MLOps Metric Anomaly",
    "data_quality": "MLOps Data Quality",
}
SEVERITIES = ("page", "ticket", "info")
BATCH = 10


@dataclass(frozen=True)
class Alert:
    """One alert; ``detail`` is JSON-serialisable."""

    kind: str
    severity: str
    model: str
    version: int | None
    title: str
    detail: dict[str, Any] = field(default_factory=dict)
    at: str = ""

    def __post_init__(self) -> None:
        if self.kind not in DETAIL_TYPES:
            raise ValueError(f"unknown alert kind {self.kind!r} (known: {', '.join(DETAIL_TYPES)})")
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False, default=str)


class AlertDeliveryError(RuntimeError):
    """Some alerts did not reach EventBridge or SNS."""


@dataclass(frozen=True)
class Delivery:
    """What a publish call sent."""

    events: int
    messages: int


class AlertPublisher:
    """Sends alerts to EventBridge and SNS; see the module docstring."""

    def __init__(self, topic_arn: str | None = None, *, event_bus: str | None = "default",
                 events: Any = None, sns: Any = None) -> None:
        self.topic_arn = topic_arn if topic_arn is not None else (os.environ.get("ALERTS_TOPIC_ARN") or None)
        self.event_bus = event_bus
        self._events = events
        self._sns = sns

    @property
    def events(self) -> Any:
        if self._events is None:
            self._events = aws.client("events")
        return self._events

    @property
    def sns(self) -> Any:
        if self._sns is None:
            self._sns = aws.client("sns")
        return self._sns

    def publish(self, alerts: Sequence[Alert]) -> Delivery:
        """Send every alert to both destinations (see the module docstring)."""
        failed = 0
        events = messages = 0
        for start in range(0, len(alerts), BATCH):
            chunk = alerts[start:start + BATCH]
            if self.event_bus:
                answer = self.events.put_events(Entries=[{
                    "Source": SOURCE, "DetailType": DETAIL_TYPES[a.kind], "Detail": a.to_json(),
                    "EventBusName": self.event_bus, "Resources": [],
                } for a in chunk])
                failed += int(answer.get("FailedEntryCount", 0))
                events += len(chunk) - int(answer.get("FailedEntryCount", 0))
            if self.topic_arn:
                answer = self.sns.publish_batch(TopicArn=self.topic_arn, PublishBatchRequestEntries=[{
                    "Id": str(i), "Subject": _subject(a.title), "Message": a.to_json(),
                    "MessageAttributes": {
                        "kind": {"DataType": "String", "StringValue": a.kind},
                        "severity": {"DataType": "String", "StringValue": a.severity},
                        "model": {"DataType": "String", "StringValue": a.model},
                    },
                } for i, a in enumerate(chunk)])
                failed += len(answer.get("Failed") or [])
                messages += len(answer.get("Successful") or [])
        if failed:
            raise AlertDeliveryError(f"{failed} alert deliveries failed ({events} events and {messages} messages sent)")
        return Delivery(events, messages)


def _subject(title: str) -> str:
    """SNS subjects: at most 100 printable ASCII characters, no line breaks."""
    clean = "".join(c if 32 <= ord(c) < 127 else " " for c in title).strip() or "MLOps alert"
    return clean[:100]
