"""Streaming detector state in DynamoDB, so a detector survives between invocations and
concurrent invocations lose no update.

**Where.** DeploymentsTable (hash ``model``, range ``sk``), one item per detector and stream::

    model = <model>, sk = DETECTOR#<detector name>#<stream>     e.g. DETECTOR#DDM#errors-v3

DeploymentsTable already holds the per-model state that changes at run time (the deployment
record, sk ``DEPLOYMENT``); every reader there uses GetItem on its own sort key, so the
detector items stay out of their way. A table of its own would add a resource, IAM wiring
and a second place to look for a model's live state, for a few items per model.

Attributes: ``version`` (the optimistic-concurrency counter, equal to the detector's own
``version``), ``state`` (``detector.to_dict()`` as JSON text: floats round-trip exactly),
``watermark`` (JSON text: how far into its source the stream has been consumed, or absent),
``n_seen``, ``kind``, ``updated_at``.

**No update lost, none applied twice.** :meth:`DetectorStore.consume` reads the item
(consistent read), asks the caller for the values after the stored watermark, feeds them,
and writes the new state with version v + 1 *only if* the stored version is still v
(``ConditionExpression``; a new item: ``attribute_not_exists(sk)``). A writer that lost
the race re-reads and starts over from the winner's state and watermark, so its values are
applied once, after the winner's. :meth:`DetectorStore.update_many` is the same with a
fixed batch (no watermark). The writes of one item therefore form a single sequence: the
stored state equals one detector fed every batch in the order of the versions they wrote.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from mlops import aws
from mlops.drift.detectors.base import Detections, DriftDetector
from mlops.drift.detectors.state import create as create_detector
from mlops.drift.detectors.state import load as load_detector
from mlops.models.registry import Clock, iso_utc, utc_now

DETECTOR_PREFIX = "DETECTOR#"
MAX_ATTEMPTS = 100

#: ``batch(watermark) -> (values after it, new watermark)``; called again after a lost race.
Batch = Callable[[Any], tuple[Sequence[float], Any]]


class DetectorConflict(RuntimeError):
    """Too many concurrent writers: the update was not applied."""


def detector_sk(name: str, stream: str) -> str:
    """The sort key of a detector's item."""
    if "#" in name or "#" in stream:
        raise ValueError("detector and stream names cannot contain '#'")
    return f"{DETECTOR_PREFIX}{name}#{stream}"


@dataclass(frozen=True)
class StoredDetector:
    """A detector as stored: its state (``detector.version`` is the item's version) and watermark."""

    detector: DriftDetector
    watermark: Any = None
    updated_at: str | None = None


@dataclass(frozen=True)
class Applied:
    """What one call did: the detector as written, the detections within the applied values
    (positions within them), how many were applied, the new watermark, and the attempts."""

    detector: DriftDetector
    detections: Detections = field(default_factory=Detections)
    applied: int = 0
    watermark: Any = None
    attempts: int = 1
    written: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON form for reports."""
        d = self.detector
        return {"kind": d.kind, "version": d.version, "n_seen": d.n_seen, "applied": self.applied,
                "drift_detected": bool(self.detections.drifts), "drifts": list(self.detections.drifts),
                "warnings": list(self.detections.warnings), "watermark": self.watermark}


def _pause(attempt: int) -> None:
    time.sleep(random.uniform(0, min(0.05, 0.001 * 2 ** min(attempt, 6))))


class DetectorStore:
    """Detector items of DeploymentsTable (see the module docstring)."""

    def __init__(self, table: str, *, dynamodb: Any = None, clock: Clock = utc_now,
                 max_attempts: int = MAX_ATTEMPTS) -> None:
        self.table = table
        self._dynamodb = dynamodb
        self.clock = clock
        self.max_attempts = max_attempts

    @property
    def dynamodb(self) -> Any:
        if self._dynamodb is None:
            self._dynamodb = aws.client("dynamodb")
        return self._dynamodb

    def _key(self, model: str, name: str, stream: str) -> dict[str, Any]:
        return {"model": {"S": model}, "sk": {"S": detector_sk(name, stream)}}

    def load(self, model: str, name: str, stream: str) -> StoredDetector | None:
        """The stored detector, or None when it was never written."""
        item = self.dynamodb.get_item(TableName=self.table, Key=self._key(model, name, stream),
                                      ConsistentRead=True).get("Item")
        if item is None:
            return None
        detector = load_detector(json.loads(item["state"]["S"]))
        detector.version = int(item["version"]["N"])
        watermark = json.loads(item["watermark"]["S"]) if "watermark" in item else None
        return StoredDetector(detector, watermark, item.get("updated_at", {}).get("S"))

    def update_many(self, model: str, name: str, stream: str, values: Iterable[float], *,
                    create: Callable[[], DriftDetector] | None = None) -> Applied:
        """Feed ``values`` to the stored detector (a new one from ``create``, default the
        detector kind ``name`` with river's parameters) exactly once."""
        batch = [float(v) for v in values]
        return self.consume(model, name, stream, lambda watermark: (batch, watermark), create=create)

    def consume(self, model: str, name: str, stream: str, batch: Batch, *,
                create: Callable[[], DriftDetector] | None = None) -> Applied:
        """Feed the values ``batch(watermark)`` gives after the stored watermark and store the
        detector with the new watermark, retrying on a concurrent write (module docstring)."""
        make = create or (lambda: create_detector(name))
        key = self._key(model, name, stream)
        for attempt in range(1, self.max_attempts + 1):
            stored = self.load(model, name, stream)
            detector = stored.detector if stored else make()
            watermark = stored.watermark if stored else None
            values, new_watermark = batch(watermark)
            values = [float(v) for v in values]
            if not values and new_watermark == watermark:
                return Applied(detector, Detections(), 0, watermark, attempt, False)
            previous = detector.version if stored else 0
            detections = detector.update_many(values)
            detector.version = previous + 1
            item = {**key, "kind": {"S": "detector"}, "detector": {"S": name}, "stream": {"S": stream},
                    "detector_kind": {"S": detector.kind}, "version": {"N": str(detector.version)},
                    "n_seen": {"N": str(detector.n_seen)},
                    "state": {"S": json.dumps(detector.to_dict(), separators=(",", ":"), allow_nan=False)},
                    "updated_at": {"S": iso_utc(self.clock())}}
            if new_watermark is not None:
                item["watermark"] = {"S": json.dumps(new_watermark, separators=(",", ":"))}
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(sk)"}
            if stored is not None:
                condition = {"ConditionExpression": "version = :v",
                             "ExpressionAttributeValues": {":v": {"N": str(previous)}}}
            try:
                self.dynamodb.put_item(TableName=self.table, Item=item, **condition)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
                _pause(attempt)
                continue
            return Applied(detector, detections, len(values), new_watermark, attempt, True)
        raise DetectorConflict(f"{detector_sk(name, stream)} of {model!r}: still conflicting after "
                               f"{self.max_attempts} attempts")
