"""The online store: the latest feature values per entity in DynamoDB (FeaturesTable), via pynamodb.

**Items.** One item per entity per view: partition key ``entity_key`` (see
:mod:`mlops.features.keys`, e.g. ``device_id=D1``), sort key ``view``. The item holds the
row's ``event_ts`` (epoch microseconds), its feature values as one compact JSON string
``values`` (all features of a view in one attribute: one read returns them, floats round-trip
exactly, and no Decimal conversion is paid per feature), the view's content hash ``version``,
``written_at`` (epoch microseconds) and ``expires_at`` (epoch seconds, ``event_ts + ttl``: the
table's DynamoDB TTL attribute, so the reaper eventually deletes what can no longer be served).

**Writes** (:meth:`OnlineStore.write`) keep the latest row per entity of a batch
(:func:`~mlops.features.keys.latest_rows`) and put it with the condition
``attribute_not_exists(event_ts) OR event_ts <= :new``: a late or out-of-order row never
overwrites a newer one, and a replay of the same time lands (the tie rule of the point-in-time
join). A row already past its TTL when it arrives is not written (it could never be served).

**Reads** decide expiry at read time: a stored value whose ``event_ts`` is more than the view's
TTL before ``now`` comes back missing, with status ``"expired"``, whether or not DynamoDB's
TTL reaper (which runs up to days late) has deleted it yet. One entity over several views is
one BatchGetItem (one GetItem for one view); many entities are BatchGetItem pages of 100
keys, pages in parallel, each retried on ``UnprocessedKeys`` with capped exponential backoff
and full jitter, at most ``max_attempts`` times (then :class:`UnprocessedKeysError`).

**The library API** that inference calls::

    store = OnlineStore(table_name)                       # or OnlineStore.from_env()
    features = store.read(entity, views, now)             # -> OnlineFeatures
    rows = store.read_many(entities, views, now)          # -> list[OnlineFeatures], same order

* ``entity`` (:data:`~mlops.features.keys.EntityKey`): the key value of single-key views
  (``"D1"``), or a mapping ``{join key: value}`` that covers every view's join keys
  (``{"device_id": "D1", "tester_id": "T3"}``).
* ``views``: :class:`~mlops.features.definitions.FeatureView` objects or their names (looked up
  in the store's :class:`~mlops.features.catalog.Catalog`).
* ``now``: an aware datetime or epoch microseconds (the caller's clock).
* :class:`OnlineFeatures` has ``entity`` and ``views`` (view name -> :class:`ViewFeatures`), and
  :meth:`OnlineFeatures.values` flattens them to ``{feature: value}`` for a model.
* :class:`ViewFeatures`: ``status`` (``"ok"``, ``"missing"`` = never written, ``"expired"`` = past
  the TTL), ``values`` (every feature of the view, in schema order; all None unless ok; a
  stored null stays None), ``event_timestamp`` (aware datetime of the stored row, also when
  expired; None when missing), ``freshness`` (``now - event_timestamp`` as a timedelta, never
  negative; None when missing) and ``expired``.
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError
from pynamodb.models import Model

from mlops import aws
from mlops.features.catalog import CATALOG, Catalog
from mlops.features.definitions import EVENT_TIMESTAMP, FeatureView
from mlops.features.keys import EntityKey, encode_entity, latest_rows
from mlops.features.timestamps import as_micros, micros_of, to_datetime

BATCH_GET_LIMIT = 100  # DynamoDB's BatchGetItem limit (keys per request)
_US_PER_S = 1_000_000

Status = str  # "ok" | "missing" | "expired"


class UnprocessedKeysError(RuntimeError):
    """BatchGetItem still left keys unprocessed after the bounded retries (throttling)."""

    def __init__(self, remaining: int, attempts: int) -> None:
        super().__init__(f"{remaining} keys still unprocessed after {attempts} BatchGetItem attempts")
        self.remaining = remaining
        self.attempts = attempts


class FeatureItem(Model):
    """One entity's latest row of one view (the table name is set per store, see `_model`)."""

    class Meta:
        table_name = "FeaturesTable"

    entity_key = UnicodeAttribute(hash_key=True)
    view = UnicodeAttribute(range_key=True)
    event_ts = NumberAttribute()
    values = UnicodeAttribute()
    version = UnicodeAttribute(null=True)
    written_at = NumberAttribute()
    expires_at = NumberAttribute()


_models: dict[tuple[str, str, str], type[FeatureItem]] = {}
_models_lock = threading.Lock()


def _region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def _model(table_name: str, region: str) -> type[FeatureItem]:
    """A pynamodb model bound to ``table_name`` (pynamodb binds table names to classes). Its
    connection keeps the endpoint it was made with, so the cache is per endpoint too (one per
    Lambda process; a test process talks to one local cloud after another)."""
    key = (table_name, region, os.environ.get("AWS_ENDPOINT_URL", ""))
    with _models_lock:
        model = _models.get(key)
        if model is None:
            meta = type("Meta", (), {"table_name": table_name, "region": region,  # retries/timeouts: mlops.aws
                                     "max_retry_attempts": aws.MAX_ATTEMPTS - 1,
                                     "connect_timeout_seconds": aws.CONNECT_TIMEOUT_S,
                                     "read_timeout_seconds": aws.READ_TIMEOUT_S})
            safe = re.sub(r"\W", "_", table_name)
            model = type(f"FeatureItem_{safe}", (FeatureItem,), {"Meta": meta, "__module__": __name__})
            _models[key] = model  # type: ignore[assignment]
        return model  # type: ignore[return-value]


def _iso(micros: int) -> str:
    return to_datetime(micros).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class ViewFeatures:
    """One view's answer for one entity; see the module docstring."""

    view: str
    entity_key: str
    status: Status
    values: dict[str, Any]
    event_timestamp: datetime | None = None
    freshness: timedelta | None = None

    @property
    def expired(self) -> bool:
        """True when a stored value is past the view's TTL (it is then served as missing)."""
        return self.status == "expired"

    @property
    def found(self) -> bool:
        """True when the values are served (present and within the TTL)."""
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        """JSON form: status, ISO event time, freshness in seconds, values."""
        return {
            "status": self.status,
            "event_timestamp": None if self.event_timestamp is None
            else self.event_timestamp.isoformat().replace("+00:00", "Z"),
            "freshness_seconds": None if self.freshness is None else self.freshness.total_seconds(),
            "values": self.values,
        }


@dataclass(frozen=True)
class OnlineFeatures:
    """The online answer for one entity over several views."""

    entity: EntityKey
    views: dict[str, ViewFeatures] = field(default_factory=dict)

    def values(self, full_names: bool = False) -> dict[str, Any]:
        """All features as ``{name: value}`` (``{view}__{name}`` with ``full_names``); a feature
        name served by two views is an error unless ``full_names``."""
        out: dict[str, Any] = {}
        for view_name, vf in self.views.items():
            for name, value in vf.values.items():
                key = f"{view_name}__{name}" if full_names else name
                if key in out:
                    raise ValueError(f"feature {name!r} comes from several views; use full_names=True")
                out[key] = value
        return out

    @property
    def expired(self) -> list[str]:
        """Names of the views whose value is past its TTL."""
        return [name for name, vf in self.views.items() if vf.expired]

    @property
    def missing(self) -> list[str]:
        """Names of the views with nothing served (never written or expired)."""
        return [name for name, vf in self.views.items() if not vf.found]

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{"views": {name: ViewFeatures.to_dict()}}``."""
        return {"views": {name: vf.to_dict() for name, vf in self.views.items()}}


@dataclass(frozen=True)
class WriteResult:
    """What a write did: rows in, entities written, skipped as stale (a newer value is stored)
    or as already expired."""

    rows: int
    written: int
    stale: int
    expired: int

    def to_dict(self) -> dict[str, int]:
        return {"rows": self.rows, "written": self.written, "stale": self.stale, "expired": self.expired}


def batch_get_with_retries(
    call: Callable[[dict[str, Any]], dict[str, Any]],
    table_name: str,
    keys: Sequence[Mapping[str, Any]],
    *,
    consistent_read: bool = False,
    max_attempts: int = 5,
    base_delay: float = 0.02,
    max_delay: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
    projection: tuple[str, dict[str, str]] | None = None,
) -> list[dict[str, Any]]:
    """Items of one BatchGetItem page (at most 100 distinct keys), retrying ``UnprocessedKeys``.

    ``call(request)`` sends a BatchGetItem request and returns the response. Between attempts
    it sleeps ``rng() * min(max_delay, base_delay * 2**attempt)`` (AWS's "full jitter"); after
    ``max_attempts`` attempts with keys still unprocessed it raises :class:`UnprocessedKeysError`.
    ``projection`` is a ProjectionExpression and its attribute names.
    """
    if len(keys) > BATCH_GET_LIMIT:
        raise ValueError(f"a BatchGetItem page holds at most {BATCH_GET_LIMIT} keys, got {len(keys)}")
    request: dict[str, Any] = {table_name: {"Keys": list(keys), "ConsistentRead": consistent_read}}
    if projection is not None:  # only the attributes a read needs (``values`` is a reserved word)
        request[table_name]["ProjectionExpression"] = projection[0]
        request[table_name]["ExpressionAttributeNames"] = projection[1]
    items: list[dict[str, Any]] = []
    for attempt in range(max_attempts):
        response = call({"RequestItems": request})
        items.extend(response.get("Responses", {}).get(table_name, []))
        unprocessed = (response.get("UnprocessedKeys") or {}).get(table_name)
        if not unprocessed or not unprocessed.get("Keys"):
            return items
        request = {table_name: unprocessed}
        if attempt + 1 < max_attempts:
            sleep(rng() * min(max_delay, base_delay * 2**attempt))
    raise UnprocessedKeysError(len(request[table_name]["Keys"]), max_attempts)


class OnlineStore:
    """The latest feature values per entity and view, in the FeaturesTable."""

    def __init__(
        self,
        table_name: str,
        *,
        catalog: Catalog = CATALOG,
        region: str | None = None,
        max_attempts: int = 5,
        write_concurrency: int = 8,
        read_concurrency: int = 4,
    ) -> None:
        self.table_name = table_name
        self.catalog = catalog
        self.model = _model(table_name, region or _region())
        self.max_attempts = max_attempts
        self.write_concurrency = write_concurrency
        self.read_concurrency = read_concurrency
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    @classmethod
    def from_env(cls, **kwargs: Any) -> "OnlineStore":
        """The store on the table named by ``FEATURES_TABLE`` (what the template declares)."""
        return cls(os.environ["FEATURES_TABLE"], **kwargs)

    # -- plumbing ----------------------------------------------------------------------------
    def _connection(self) -> Any:
        connection = self.model._get_connection().connection
        connection.client  # create the botocore client before threads share it  # noqa: B018
        return connection

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                workers = max(self.write_concurrency, self.read_concurrency)
                self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="online-store")
            return self._pool

    def _map(self, fn: Callable[[Any], Any], items: Sequence[Any], concurrency: int) -> list[Any]:
        if len(items) <= 1 or concurrency <= 1:
            return [fn(i) for i in items]
        pool = self._executor()
        return list(pool.map(fn, items))

    # -- writes ------------------------------------------------------------------------------
    def write(
        self,
        view: FeatureView,
        rows: Sequence[Mapping[str, Any]],
        *,
        now: datetime | int,
        version: str | None = None,
    ) -> WriteResult:
        """Write the latest of ``rows`` per entity, where it is newer than what is stored.

        ``rows`` are validated rows (:func:`mlops.features.validation.validate_rows`'s
        ``accepted``: join keys, ``event_timestamp`` in epoch microseconds, features).
        ``version`` (the view's content hash) is stored with each item for provenance.
        """
        now_us = as_micros(now)
        oldest = now_us - micros_of(view.ttl)
        latest = latest_rows(view, rows)
        fresh = [(k, r) for k, r in latest.items() if r[EVENT_TIMESTAMP] >= oldest]
        expired = len(latest) - len(fresh)
        model = self.model
        ttl_s = view.ttl.total_seconds()
        names = view.feature_names
        condition = model.event_ts.does_not_exist()

        def put(pair: tuple[str, Mapping[str, Any]]) -> bool:
            key, row = pair
            ts = int(row[EVENT_TIMESTAMP])
            item = model(
                key,
                view.name,
                event_ts=ts,
                values=json.dumps({n: row.get(n) for n in names}, separators=(",", ":"), allow_nan=False),
                version=version,
                written_at=now_us,
                expires_at=int(-(-(ts + ttl_s * _US_PER_S) // _US_PER_S)),
            )
            try:
                item.save(condition=condition | (model.event_ts <= ts))
            except PutError as exc:
                if exc.cause_response_code == "ConditionalCheckFailedException":
                    return False
                raise
            return True

        if fresh:
            self._connection()
        outcomes = self._map(put, fresh, self.write_concurrency)
        written = sum(outcomes)
        return WriteResult(len(rows), written, len(fresh) - written, expired)

    # -- reads -------------------------------------------------------------------------------
    def read(self, entity: EntityKey, views: Sequence[FeatureView | str], now: datetime | int, *,
             consistent: bool = False) -> OnlineFeatures:
        """The features of one entity in ``views`` at ``now`` (one GetItem or BatchGetItem)."""
        return self.read_many([entity], views, now, consistent=consistent)[0]

    def read_many(self, entities: Sequence[EntityKey], views: Sequence[FeatureView | str],
                  now: datetime | int, *, consistent: bool = False) -> list[OnlineFeatures]:
        """The features of many entities in ``views`` at ``now``, in the order of ``entities``
        (BatchGetItem pages of 100 keys with bounded retries of unprocessed keys)."""
        resolved = self.catalog.resolve(views)
        if not resolved:
            raise ValueError("at least one view is needed")
        now_us = as_micros(now)
        wanted = [[(encode_entity(v, e), v.name) for v in resolved] for e in entities]
        distinct = list(dict.fromkeys(k for keys in wanted for k in keys))
        items = self._fetch(distinct, consistent)
        shapes = [(v.name, v.feature_names, micros_of(v.ttl)) for v in resolved]  # once, not per entity
        out = []
        for entity, keys in zip(entities, wanted):
            answer = {shape[0]: self._answer(shape, key, items.get(key), now_us) for shape, key in zip(shapes, keys)}
            out.append(OnlineFeatures(entity, answer))
        return out

    def _fetch(self, keys: list[tuple[str, str]], consistent: bool) -> dict[tuple[str, str], dict[str, Any]]:
        if not keys:
            return {}
        connection = self._connection()
        table = self.table_name
        if len(keys) == 1:
            (ek, view), = keys
            response = connection.dispatch("GetItem", {
                "TableName": table, "Key": {"entity_key": {"S": ek}, "view": {"S": view}},
                "ConsistentRead": consistent, "ReturnConsumedCapacity": "NONE",
                "ProjectionExpression": "event_ts, #values", "ExpressionAttributeNames": {"#values": "values"},
            })
            item = response.get("Item")
            return {keys[0]: item} if item else {}

        def page(chunk: list[tuple[str, str]]) -> list[dict[str, Any]]:
            return batch_get_with_retries(
                lambda request: connection.dispatch("BatchGetItem", {**request, "ReturnConsumedCapacity": "NONE"}),
                table,
                [{"entity_key": {"S": ek}, "view": {"S": view}} for ek, view in chunk],
                consistent_read=consistent,
                max_attempts=self.max_attempts,
                projection=("entity_key, #view, event_ts, #values", {"#view": "view", "#values": "values"}),
            )

        chunks = [keys[i:i + BATCH_GET_LIMIT] for i in range(0, len(keys), BATCH_GET_LIMIT)]
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for items in self._map(page, chunks, self.read_concurrency):
            for item in items:
                found[(item["entity_key"]["S"], item["view"]["S"])] = item
        return found

    @staticmethod
    def _answer(shape: tuple[str, tuple[str, ...], int], key: tuple[str, str], item: dict[str, Any] | None,
                now_us: int) -> ViewFeatures:
        """One view's answer from its item; ``shape`` is (view name, feature names, TTL in µs)."""
        view, names, ttl_us = shape
        entity_key = key[0]
        if item is None:
            return ViewFeatures(view, entity_key, "missing", dict.fromkeys(names))
        ts = int(item["event_ts"]["N"])
        event_time = to_datetime(ts)
        age = timedelta(microseconds=max(0, now_us - ts))
        if now_us - ts > ttl_us:  # decided here, at read time: DynamoDB's TTL reaper may be days late
            return ViewFeatures(view, entity_key, "expired", dict.fromkeys(names), event_time, age)
        stored = json.loads(item["values"]["S"])
        return ViewFeatures(view, entity_key, "ok", {n: stored.get(n) for n in names}, event_time, age)
