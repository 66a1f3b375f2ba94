"""The offline store: every ingested row in S3 (DataBucket), Hive-partitioned by view and UTC
day of ``event_timestamp``::

    features/view=<view>/date=YYYY-MM-DD/part-<sha256>.jsonl

Each part is JSON lines, one row per line: the join keys, ``event_timestamp`` (int epoch
microseconds, UTC) and every feature of the view (null when missing). Object metadata records
when the part was written (``ingested-at``, epoch microseconds), the view's content hash
(``view-version``), the row count and the source (API request or loaded file).

**Parts are content-addressed, so writing is idempotent.** A batch is split into one part per
UTC day, and a part's name is the sha256 of its canonical content (:func:`part_digest`: the
view, the day and the JSON-lines body, rows in the order they were sent). Writing the same
rows again - a client's retry after a request failed half-way (an earlier day stored, a later
day throttled), a redelivered file, or simply the same request sent twice - rewrites the same
objects instead of adding rows: the store then holds exactly what one successful write would
have left. This is the contract: the same content is the same data, stored once. A batch whose
rows differ in any way (a value, a time, an entity, their order, a row more or less) is
different content and gets its own part.

**Read order and ties.** :meth:`OfflineStore.read_rows` returns the parts of a day in the order
they were ingested (``ingested-at``, then the key), rows of a part in their stored order: the
input order the point-in-time join uses to break ties between rows of equal entity and time
(the last one wins, as in the online store). A rewrite of the same content stamps the part
again, so it counts as ingested last - exactly like the online store, whose conditional write
lets a replay of an equal time land. Parts written before content addressing
(``part-<ingested_at_us:016d>-<random>.jsonl``, no ``ingested-at``) take their time from the name.

Reading it elsewhere: pandas ``pd.read_json(path, lines=True)`` then
``pd.to_datetime(df.event_timestamp, unit="us", utc=True)``; Athena: a JSON SerDe table
with ``PARTITIONED BY (view string, date string)`` and ``from_unixtime(event_timestamp / 1e6)``.

:meth:`OfflineStore.read_columns` returns a time range of a view as numpy columns for
:func:`mlops.features.pit.pit_join` (see :func:`historical_features`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from mlops import aws
from mlops.features.definitions import EVENT_TIMESTAMP, FeatureView
from mlops.features.pit import Columns, training_set
from mlops.features.timestamps import as_micros, micros_of

_DAY_US = 86_400_000_000
PREFIX = "features"
_READERS = 8  # parts fetched at once by read_rows (botocore pools 10 connections a client)
INGESTED_AT = "ingested-at"  # object metadata: when the part was (last) written, epoch microseconds
_LEGACY_NAME = re.compile(r"/part-(\d{16})-[0-9a-f]+\.jsonl$")  # part-<ingested_at_us>-<random>.jsonl


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


@dataclass(frozen=True)
class Part:
    """One UTC day of a written batch: its key, day, row count and content hash."""

    key: str
    day: str
    rows: int
    digest: str


def part_body(view: FeatureView, rows: Sequence[Mapping[str, Any]]) -> bytes:
    """The canonical JSON-lines body of rows: :func:`row_columns` in order, compact JSON."""
    columns = row_columns(view)
    return "".join(
        json.dumps({c: r.get(c) for c in columns}, separators=(",", ":"), allow_nan=False) + "\n" for r in rows
    ).encode()


def part_digest(view: str, day: str, body: bytes) -> str:
    """The sha256 (hex) of a part's content: view name, day and body. It names the part."""
    return hashlib.sha256(f"{view}\n{day}\n".encode() + body).hexdigest()


def part_key(view: str, day: str, digest: str, prefix: str = PREFIX) -> str:
    """``features/view=<view>/date=<day>/part-<digest>.jsonl``."""
    return f"{partition_prefix(view, day, prefix)}part-{digest}.jsonl"


def ingested_us(key: str, metadata: Mapping[str, str]) -> int:
    """When a part was written: its ``ingested-at`` metadata, else the time in a legacy part
    name, else 0 (read first)."""
    if INGESTED_AT in metadata:
        return int(metadata[INGESTED_AT])
    legacy = _LEGACY_NAME.search(key)
    return int(legacy.group(1)) if legacy else 0


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
    """Hive-partitioned, content-addressed JSON-lines parts of every view's rows in an S3 bucket."""

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
    ) -> list[Part]:
        """Store validated rows (event time in epoch microseconds) as one content-addressed part
        per UTC day (see the module docstring: the same rows written again rewrite the same
        objects); returns the parts, in day order."""
        by_day: dict[str, list[Mapping[str, Any]]] = {}
        for row in rows:
            by_day.setdefault(day_of(int(row[EVENT_TIMESTAMP])), []).append(row)
        stamp = str(as_micros(ingested_at))
        parts = []
        for day in sorted(by_day):
            body = part_body(view, by_day[day])
            digest = part_digest(view.name, day, body)
            part = Part(part_key(view.name, day, digest, self.prefix), day, len(by_day[day]), digest)
            metadata = {"rows": str(part.rows), INGESTED_AT: stamp}
            if version:
                metadata["view-version"] = version
            if source:
                metadata["source"] = source.encode("ascii", "replace").decode()[:512]
            self._s3.put_object(Bucket=self.bucket, Key=part.key, Body=body,
                                ContentType="application/x-ndjson", Metadata=metadata)
            parts.append(part)
        return parts

    # -- reading ------------------------------------------------------------------------------
    def keys(self, view: str, start: datetime | int | None = None, end: datetime | int | None = None) -> list[str]:
        """The part keys of ``view`` whose day may hold rows in ``[start, end)`` (None: unbounded),
        in partition then name order (:meth:`read_rows` orders a day's parts by ingestion)."""
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

    def _part(self, key: str) -> tuple[int, list[dict[str, Any]]]:
        """A part's ingestion time and rows."""
        obj = self._s3.get_object(Bucket=self.bucket, Key=key)
        rows = [json.loads(line) for line in obj["Body"].read().splitlines() if line.strip()]
        return ingested_us(key, obj.get("Metadata") or {}), rows

    def read_rows(self, view: FeatureView | str, start: datetime | int | None = None,
                  end: datetime | int | None = None) -> list[dict[str, Any]]:
        """Rows with ``start <= event_timestamp < end`` (None: unbounded), day by day, each day's
        parts in ingestion order (``ingested-at``, then key; see the module docstring)."""
        name = view if isinstance(view, str) else view.name
        lo = as_micros(start) if start is not None else None
        hi = as_micros(end) if end is not None else None
        base = partition_prefix(name, None, self.prefix)
        keys = self.keys(name, start, end)
        # One GetObject per part: fetched a few at a time (the client is thread-safe), so the
        # requests' round trips overlap instead of adding up (a 10-day training window: 20 parts).
        with ThreadPoolExecutor(max_workers=max(1, min(_READERS, len(keys)))) as pool:
            fetched = list(pool.map(self._part, keys))
        parts = [(key[len(base):].split("/", 1)[0], stamp, key, rows) for key, (stamp, rows) in zip(keys, fetched)]
        parts.sort(key=lambda p: p[:3])
        return [row for *_, rows in parts for row in rows
                if (lo is None or row[EVENT_TIMESTAMP] >= lo) and (hi is None or row[EVENT_TIMESTAMP] < hi)]

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
