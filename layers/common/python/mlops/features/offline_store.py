"""The offline store: every ingested row, append-only in S3 (DataBucket), Hive-partitioned by
view and UTC day of ``event_timestamp``::

    features/view=<view>/date=YYYY-MM-DD/part-<ingested_at_us:016d>-<random>.jsonl

Each part is JSON lines, one row per line: the join keys, ``event_timestamp`` (int epoch
microseconds, UTC) and every feature of the view (null when missing). Parts are only ever
added, never rewritten; their names sort in ingestion order, which is the input order the
point-in-time join uses to break ties between rows of equal time (the last one wins, as in
the online store). Object metadata records the view's content hash (``view-version``), the
row count and the source (API request or loaded file).

Reading it elsewhere: pandas ``pd.read_json(path, lines=True)`` then
``pd.to_datetime(df.event_timestamp, unit="us", utc=True)``; Athena: a JSON SerDe table
with ``PARTITIONED BY (view string, date string)`` and ``from_unixtime(event_timestamp / 1e6)``.

:meth:`OfflineStore.read_columns` returns a time range of a view as numpy columns for
:func:`mlops.features.pit.pit_join` (see :func:`historical_features`).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from mlops import aws
from mlops.features.definitions import EVENT_TIMESTAMP, FeatureView
from mlops.features.pit import Columns, training_set
from mlops.features.timestamps import as_micros, micros_of

_DAY_US = 86_400_000_000
PREFIX = "features"


def day_of(micros: int) -> str:
    """The UTC day (``YYYY-MM-DD``) of epoch microseconds: the partition a row goes to."""
    return (date(1970, 1, 1) + timedelta(days=micros // _DAY_US)).isoformat()


def partition_prefix(view: str, day: str | None = None, prefix: str = PREFIX) -> str:
    """``features/view=<view>/`` or, with ``day``, ``features/view=<view>/date=<day>/``."""
    base = f"{prefix}/view={view}/"
    return base if day is None else f"{base}date={day}/"


def row_columns(view: FeatureView) -> list[str]:
    """The column order of a stored row: join keys, event time, features in schema order."""
    return [*view.join_keys, EVENT_TIMESTAMP, *view.feature_names]


def rows_to_columns(view: FeatureView, rows: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Rows as numpy columns: float features float64 (NaN = missing), ``event_timestamp`` int64
    epoch microseconds, int join keys int64, everything else object arrays (None = missing)."""
    out: dict[str, np.ndarray] = {}
    for entity in view.entities:
        values = [r[entity.join_key] for r in rows]
        if entity.value_type == "int":
            out[entity.join_key] = np.array(values, dtype=np.int64)
        else:
            arr = np.empty(len(values), dtype=object)
            arr[:] = values
            out[entity.join_key] = arr
    out[EVENT_TIMESTAMP] = np.array([r[EVENT_TIMESTAMP] for r in rows], dtype=np.int64)
    for f in view.schema:
        values = [r.get(f.name) for r in rows]
        if f.dtype == "float":
            out[f.name] = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        else:
            arr = np.empty(len(values), dtype=object)
            arr[:] = values
            out[f.name] = arr
    return out


class OfflineStore:
    """Append-only Hive-partitioned JSON lines of every view's rows in an S3 bucket."""

    def __init__(self, bucket: str, *, client: Any = None, prefix: str = PREFIX) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self._s3 = client or aws.client("s3")  # retries and timeouts: mlops.aws

    @classmethod
    def from_env(cls, **kwargs: Any) -> "OfflineStore":
        """The store in the bucket named by ``DATA_BUCKET``."""
        return cls(os.environ["DATA_BUCKET"], **kwargs)

    # -- writing ------------------------------------------------------------------------------
    def write(
        self,
        view: FeatureView,
        rows: Sequence[Mapping[str, Any]],
        *,
        ingested_at: datetime | int,
        version: str | None = None,
        source: str | None = None,
    ) -> list[str]:
        """Append validated rows (event time in epoch microseconds) as one new part per UTC day;
        returns the keys written, in day order."""
        by_day: dict[str, list[Mapping[str, Any]]] = {}
        for row in rows:
            by_day.setdefault(day_of(int(row[EVENT_TIMESTAMP])), []).append(row)
        stamp = f"{as_micros(ingested_at):016d}"
        columns = row_columns(view)
        keys = []
        for day in sorted(by_day):
            part = by_day[day]
            body = "".join(
                json.dumps({c: r.get(c) for c in columns}, separators=(",", ":"), allow_nan=False) + "\n"
                for r in part
            )
            key = f"{partition_prefix(view.name, day, self.prefix)}part-{stamp}-{uuid.uuid4().hex[:12]}.jsonl"
            metadata = {"rows": str(len(part))}
            if version:
                metadata["view-version"] = version
            if source:
                metadata["source"] = source.encode("ascii", "replace").decode()[:512]
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=body.encode(),
                                ContentType="application/x-ndjson", Metadata=metadata)
            keys.append(key)
        return keys

    # -- reading ------------------------------------------------------------------------------
    def keys(self, view: str, start: datetime | int | None = None, end: datetime | int | None = None) -> list[str]:
        """The part keys of ``view`` whose day may hold rows in ``[start, end)`` (None: unbounded),
        in partition then ingestion order."""
        base = partition_prefix(view, None, self.prefix)
        first = day_of(as_micros(start)) if start is not None else None
        last = day_of(as_micros(end) - 1) if end is not None else None
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": base}
        if first is not None:
            kwargs["StartAfter"] = f"{base}date={first}"
        keys = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(**kwargs):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                day = key[len(base):].split("/", 1)[0].removeprefix("date=")
                if last is not None and day > last:
                    return keys
                if key.endswith(".jsonl"):
                    keys.append(key)
        return keys

    def _rows_of(self, key: str) -> Iterator[dict[str, Any]]:
        body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        for line in body.splitlines():
            if line.strip():
                yield json.loads(line)

    def read_rows(self, view: FeatureView | str, start: datetime | int | None = None,
                  end: datetime | int | None = None) -> list[dict[str, Any]]:
        """Rows with ``start <= event_timestamp < end`` (None: unbounded), in ingestion order
        within each day."""
        name = view if isinstance(view, str) else view.name
        lo = as_micros(start) if start is not None else None
        hi = as_micros(end) if end is not None else None
        out = []
        for key in self.keys(name, start, end):
            for row in self._rows_of(key):
                ts = row[EVENT_TIMESTAMP]
                if (lo is None or ts >= lo) and (hi is None or ts < hi):
                    out.append(row)
        return out

    def read_columns(self, view: FeatureView, start: datetime | int | None = None,
                     end: datetime | int | None = None) -> dict[str, np.ndarray]:
        """:meth:`read_rows` as numpy columns (:func:`rows_to_columns`)."""
        return rows_to_columns(view, self.read_rows(view, start, end))


def historical_features(
    offline: OfflineStore,
    labels: Columns,
    views: Sequence[FeatureView],
    *,
    label_time: str = EVENT_TIMESTAMP,
    full_feature_names: bool = False,
) -> dict[str, np.ndarray]:
    """A point-in-time correct training set: ``labels`` (entity keys, ``label_time`` as int64
    epoch microseconds or datetime64, label columns) joined to each view's latest row at or
    before the label time and within its TTL, read from the offline store (only the days
    ``[earliest label - ttl, latest label]`` are read)."""
    times = np.asarray(labels[label_time])
    if times.dtype.kind == "M":
        times = times.astype("datetime64[us]").view(np.int64)
    if times.size == 0:
        return training_set(labels, [(v, rows_to_columns(v, [])) for v in views], label_time=label_time,
                            full_feature_names=full_feature_names)
    lo, hi = int(times.min()), int(times.max())
    pairs = [(v, offline.read_columns(v, lo - micros_of(v.ttl), hi + 1)) for v in views]
    return training_set(labels, pairs, label_time=label_time, full_feature_names=full_feature_names)
