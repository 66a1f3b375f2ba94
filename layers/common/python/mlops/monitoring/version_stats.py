"""Per-version serving statistics from prediction-log rows: one window, or per time bucket.

A row is a mapping with ``version``, ``variant``, ``ts`` (ISO-8601 with offset, epoch seconds or an aware datetime),
``latency_ms``, ``probability``, ``predicted_label``, ``label`` (ground truth or None) and
``error`` (a message or None). A row with an error counts toward ``n`` and ``errors`` only;
latency percentiles include every row that has a latency (a slow failure is still slow).

:func:`summarize` is the one-window aggregate (the canary gate reuses it per variant);
:func:`by_version` and :func:`by_bucket` group rows first. Percentiles are numpy's default
(linear interpolation), so they equal ``numpy.percentile`` on the same latencies.
Pure: numpy only, no AWS.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mlops.features.timestamps import parse_timestamp
from mlops.models.registry import iso_utc

Row = Mapping[str, Any]


@dataclass(frozen=True)
class VersionStats:
    """Aggregates of one version over one window (rates are None when undefined)."""

    n: int
    errors: int
    error_rate: float | None
    latency_p50: float | None
    latency_p95: float | None
    latency_p99: float | None
    positives: int
    positive_rate: float | None
    labelled: int
    correct: int
    accuracy: float | None
    mean_probability: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def summarize(rows: Iterable[Row]) -> VersionStats:
    """The aggregates of ``rows`` (which the caller has already restricted to one version and
    one window)."""
    n = errors = positives = scored = labelled = correct = 0
    latencies: list[float] = []
    probabilities: list[float] = []
    for row in rows:
        n += 1
        latency = row.get("latency_ms")
        if latency is not None:
            latencies.append(float(latency))
        if row.get("error"):
            errors += 1
            continue
        predicted = row.get("predicted_label")
        if predicted is None:
            continue
        scored += 1
        predicted = int(predicted)
        positives += predicted == 1
        if row.get("probability") is not None:
            probabilities.append(float(row["probability"]))
        label = row.get("label")
        if label is not None:
            labelled += 1
            correct += int(label) == predicted
    p50 = p95 = p99 = None
    if latencies:
        p50, p95, p99 = (float(v) for v in np.percentile(np.asarray(latencies), [50, 95, 99]))
    return VersionStats(
        n=n, errors=errors, error_rate=_ratio(errors, n),
        latency_p50=p50, latency_p95=p95, latency_p99=p99,
        positives=positives, positive_rate=_ratio(positives, scored),
        labelled=labelled, correct=correct, accuracy=_ratio(correct, labelled),
        mean_probability=float(np.mean(probabilities)) if probabilities else None,
    )


def by_version(rows: Iterable[Row]) -> dict[int, VersionStats]:
    """:func:`summarize` per model version, versions ascending."""
    groups: dict[int, list[Row]] = defaultdict(list)
    for row in rows:
        groups[int(row["version"])].append(row)
    return {version: summarize(groups[version]) for version in sorted(groups)}


def bucket_start(ts: Any, bucket_seconds: int) -> int:
    """The start (epoch micros) of the bucket ``ts`` falls in; buckets align to the epoch."""
    micros = parse_timestamp(ts)
    width = int(bucket_seconds) * 1_000_000
    return micros - micros % width


@dataclass(frozen=True)
class BucketStats:
    """One version's aggregates over one time bucket."""

    version: int
    start: int  # epoch micros
    seconds: int
    stats: VersionStats

    @property
    def qps(self) -> float:
        """Requests per second over the bucket."""
        return self.stats.n / self.seconds

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``start`` as ISO-8601 UTC)."""
        return {"version": self.version, "start": iso_utc(self.start), "seconds": self.seconds,
                "qps": self.qps, **self.stats.to_dict()}


def by_bucket(rows: Iterable[Row], bucket_seconds: int) -> list[BucketStats]:
    """:func:`summarize` per (version, time bucket), ordered by version then time. Buckets with
    no rows are absent (a caller that needs zeros fills them)."""
    if bucket_seconds <= 0:
        raise ValueError("bucket_seconds must be positive")
    groups: dict[tuple[int, int], list[Row]] = defaultdict(list)
    for row in rows:
        groups[(int(row["version"]), bucket_start(row["ts"], bucket_seconds))].append(row)
    return [BucketStats(version=v, start=s, seconds=int(bucket_seconds), stats=summarize(groups[(v, s)]))
            for v, s in sorted(groups)]
