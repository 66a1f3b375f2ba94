"""Stored feature statistics: per view and UTC day, for drift baselines and monitoring.

Every ingested batch's statistics (:func:`mlops.features.stats.daily_stats`: counts, nulls,
min, max, mean, std and a mergeable quantile sketch per feature) are written as one JSON
object per day it touches, in the DataBucket, named by the content hash of the offline part
that holds the same rows (:func:`mlops.features.offline_store.part_digest`)::

    stats/view=<view>/date=YYYY-MM-DD/batch-<part sha256>.json

So statistics are idempotent per part, like the offline store: the same rows ingested again (a
retry after a half-failed request, a duplicate request) rewrite the same object and are
counted once. (Naming them by the statistics' own content would not do: two batches of
different entities with equal values have equal statistics and must both count.) Objects
written before this were named ``batch-<ingested_at_us:016d>-<random>.json``; they merge alike.

Concurrent ingests never race on a read-modify-write; a day's statistics are the merge of its
batches (:meth:`StatsStore.daily`), and a drift baseline is the merge of a range of days
(:meth:`StatsStore.baseline`). Merging is exact for counts,
min and max, exact to rounding for mean and variance, and within the sketch's error bound
for quantiles (see :mod:`mlops.features.sketch`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any


from mlops import aws
from mlops.features.stats import ViewStats, merge_stats
from mlops.features.timestamps import as_micros

PREFIX = "stats"


class StatsStore:
    """Per-batch, per-day statistics objects in S3, merged on read."""

    def __init__(self, bucket: str, *, client: Any = None, prefix: str = PREFIX) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self._s3 = client or aws.client("s3")  # retries and timeouts: mlops.aws

    @classmethod
    def from_env(cls, **kwargs: Any) -> "StatsStore":
        """The store in the bucket named by ``DATA_BUCKET``."""
        return cls(os.environ["DATA_BUCKET"], **kwargs)

    def _day_prefix(self, view: str, day: str) -> str:
        return f"{self.prefix}/view={view}/date={day}/"

    def put(self, view: str, by_day: Mapping[str, ViewStats], *, part_digests: Mapping[str, str],
            ingested_at: datetime | int) -> list[str]:
        """Store one batch's statistics (``{day: ViewStats}``), each day's object named by the
        digest of the offline part holding that day's rows (``part_digests``: ``{day: sha256}``,
        from :meth:`OfflineStore.write <mlops.features.offline_store.OfflineStore.write>`);
        returns the keys written."""
        missing = sorted(set(by_day) - set(part_digests))
        if missing:
            raise ValueError(f"no offline part digest for the days {missing}")
        stamp = str(as_micros(ingested_at))
        keys = []
        for day in sorted(by_day):
            key = f"{self._day_prefix(view, day)}batch-{part_digests[day]}.json"
            body = json.dumps(by_day[day].to_dict(), separators=(",", ":"), allow_nan=False)
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=body.encode(), ContentType="application/json",
                                Metadata={"ingested-at": stamp})
            keys.append(key)
        return keys

    def _list(self, prefix: str, start_after: str | None = None) -> list[str]:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        if start_after:
            kwargs["StartAfter"] = start_after
        return [obj["Key"] for page in self._s3.get_paginator("list_objects_v2").paginate(**kwargs)
                for obj in page.get("Contents", [])]

    def _load(self, key: str) -> ViewStats:
        return ViewStats.from_dict(json.loads(self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()))

    def daily(self, view: str, day: str) -> ViewStats | None:
        """The statistics of ``view``'s rows whose event time falls on ``day`` (None: no rows)."""
        keys = self._list(self._day_prefix(view, day))
        return merge_stats(self._load(k) for k in keys) if keys else None

    def days(self, view: str) -> list[str]:
        """The days that have statistics, ascending."""
        base = f"{self.prefix}/view={view}/"
        days = {k[len(base):].split("/", 1)[0].removeprefix("date=") for k in self._list(base)}
        return sorted(days)

    def baseline(self, view: str, start_day: str, end_day: str) -> ViewStats | None:
        """The merged statistics of the days ``start_day..end_day`` (inclusive): a drift baseline."""
        base = f"{self.prefix}/view={view}/"
        keys = []
        for key in self._list(base, start_after=f"{base}date={start_day}"):
            day = key[len(base):].split("/", 1)[0].removeprefix("date=")
            if day > end_day:
                break
            keys.append(key)
        return merge_stats(self._load(k) for k in keys) if keys else None
