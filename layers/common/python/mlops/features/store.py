"""The feature store as one object (Feast's ``FeatureStore``): ingestion, materialization,
training sets, freshness and the registry listing, over the four stores.

* :meth:`FeatureStore.ingest`: validate a batch against the view's schema; when any row is
  accepted, store the accepted rows in the offline store, write the latest per entity to the
  online store (conditional on being newer), store the batch's daily statistics and note the
  newest event time. When nothing is accepted, nothing is written anywhere. Every step is
  idempotent, so a retry after a request failed half-way (say the second day's offline part
  was throttled, the first one stored) leaves the stores exactly as one successful request
  would have: offline parts and statistics objects are named by the content hash of the day's
  rows (rewritten, not added: :mod:`mlops.features.offline_store`), and the online store's
  conditional write lets an equal time land again with the same values. Only the registry's
  ``rows_ingested`` counter counts each completed request (it is written last). The same rows
  sent twice on purpose are the same data too: stored once.
* :meth:`FeatureStore.materialize` copies offline rows with ``start <= event_timestamp < end``
  to the online store (the same conditional write: never over newer values);
  :meth:`FeatureStore.materialize_incremental` does it from each view's watermark (or
  ``end - ttl`` the first time) to ``end`` and moves the watermark to ``end``.
* :meth:`FeatureStore.training_set`: point-in-time correct features for label rows.
* :meth:`FeatureStore.freshness` and :meth:`FeatureStore.listing` for monitoring and
  ``GET /feature-views``.

The code's definitions (:data:`mlops.features.catalog.CATALOG`) are applied to the registry
once per store object (:meth:`FeatureStore.ensure_registered`), so that a deployment with a
changed schema records a new version before it ingests anything.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from mlops.config import Resources
from mlops.features.catalog import CATALOG, Catalog
from mlops.features.definitions import EVENT_TIMESTAMP, FeatureView
from mlops.features.freshness import FreshnessStatus, freshness_report
from mlops.features.ingest import MAX_REPORTED_ROWS
from mlops.features.offline_store import OfflineStore, historical_features
from mlops.features.online_store import OnlineStore, WriteResult
from mlops.features.registry_store import ApplyResult, RegistryStore
from mlops.features.stats import daily_stats
from mlops.features.stats_store import StatsStore
from mlops.features.timestamps import as_micros, micros_of, to_datetime
from mlops.features.validation import validate_rows

DEFAULT_MAX_SKEW = timedelta(minutes=5)


def _iso(micros: int) -> str:
    return to_datetime(micros).isoformat().replace("+00:00", "Z")


@dataclass
class IngestOutcome:
    """What an ingestion did. ``stored`` is False when no row was accepted (nothing written).
    Its answer lists the first :data:`~mlops.features.ingest.MAX_REPORTED_ROWS` rejected rows."""

    view: str
    total: int
    accepted: int
    rejected: list[dict[str, Any]]
    batch_rejected: bool
    version: int | None = None
    offline_parts: list[str] = field(default_factory=list)
    online: WriteResult | None = None
    stats_days: list[str] = field(default_factory=list)

    @property
    def stored(self) -> bool:
        return self.accepted > 0

    def to_dict(self) -> dict[str, Any]:
        """The API answer (no object names or times: the same batch gives the same answer)."""
        return {
            "view": self.view,
            "version": self.version,
            "rows": self.total,
            "accepted": self.accepted,
            "rejected_rows": len(self.rejected),
            "rejected": self.rejected[:MAX_REPORTED_ROWS],
            "batch_rejected": self.batch_rejected,
            "offline": {"rows": self.accepted if self.stored else 0,
                        "partitions": sorted({p.rsplit("/", 2)[-2] for p in self.offline_parts})},
            "online": (self.online or WriteResult(0, 0, 0, 0)).to_dict(),
            "stats_days": self.stats_days,
        }


@dataclass
class MaterializeResult:
    """One view's materialization: the window, the rows read and what the online write did."""

    view: str
    start_us: int
    end_us: int
    rows: int
    online: WriteResult
    status: str = "materialized"  # or "up_to_date" (incremental: nothing new since the watermark)

    def to_dict(self) -> dict[str, Any]:
        return {"view": self.view, "status": self.status, "start": _iso(self.start_us), "end": _iso(self.end_us),
                "rows": self.rows, "online": self.online.to_dict()}


class FeatureStore:
    """The online, offline, statistics and registry stores of one deployment."""

    def __init__(
        self,
        online: OnlineStore,
        offline: OfflineStore,
        stats: StatsStore,
        registry: RegistryStore,
        catalog: Catalog = CATALOG,
    ) -> None:
        self.online = online
        self.offline = offline
        self.stats = stats
        self.registry = registry
        self.catalog = catalog
        self._registered: dict[str, ApplyResult] | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, resources: Resources | None = None, catalog: Catalog = CATALOG) -> "FeatureStore":
        """The stores named by the template's environment variables."""
        res = resources or Resources.from_env()
        bucket = res.buckets["data"]
        return cls(
            OnlineStore(res.tables["features"], catalog=catalog),
            OfflineStore(bucket),
            StatsStore(bucket),
            RegistryStore(res.tables["registry"]),
            catalog,
        )

    # -- registry -----------------------------------------------------------------------------
    def apply(self, *, now: datetime | int, allow_revert: bool = False) -> list[ApplyResult]:
        """Register the catalog's definitions (new versions where the content changed)."""
        results = self.registry.apply(self.catalog.definitions(), now=now, allow_revert=allow_revert)
        with self._lock:
            self._registered = {f"{r.kind}#{r.name}": r for r in results}
        return results

    def ensure_registered(self, *, now: datetime | int) -> dict[str, ApplyResult]:
        """:meth:`apply` once per store object; returns ``{"<kind>#<name>": ApplyResult}``."""
        with self._lock:
            done = self._registered
        if done is None:
            self.apply(now=now)
            with self._lock:
                done = self._registered
        return done  # type: ignore[return-value]

    def listing(self, *, now: datetime | int, thresholds: Mapping[str, timedelta] | None = None) -> dict[str, Any]:
        """``GET /feature-views``: every registered definition's latest version and history,
        and each feature view's freshness."""
        self.ensure_registered(now=now)
        listing = self.registry.listing()
        views = {v.name: v for v in self.catalog.feature_views}
        fresh = {s.view: s for s in freshness_report(
            list(views.values()), {n: s.last_event_us for n, s in listing.states.items()}, now, thresholds)}
        feature_views = []
        for d in listing.of_kind("feature_view"):
            summary = d.summary()
            if d.name in fresh:
                status = fresh[d.name].to_dict()
                status.pop("view")
                summary["freshness"] = status
            feature_views.append(summary)
        return {
            "entities": [d.summary() for d in listing.of_kind("entity")],
            "feature_views": feature_views,
            "on_demand_feature_views": [d.summary() for d in listing.of_kind("on_demand_feature_view")],
        }

    # -- ingestion ----------------------------------------------------------------------------
    def ingest(
        self,
        view: FeatureView | str,
        rows: Sequence[Any],
        *,
        now: datetime | int,
        all_or_nothing: bool = False,
        max_skew: timedelta = DEFAULT_MAX_SKEW,
        from_text: bool = False,
        source: str = "api",
        read_errors: Mapping[int, list[dict[str, Any]]] | None = None,
    ) -> IngestOutcome:
        """Validate and store a batch (see the module docstring); ``now`` is the clock that
        bounds event times (``max_skew`` ahead at most) and stamps the offline parts.
        ``read_errors`` (row index -> problems) replace validation's errors for rows that
        could not even be read (see :class:`mlops.features.ingest.ParsedFile`)."""
        if isinstance(view, str):
            view = self.catalog.feature_view(view)
        result = validate_rows(view, rows, now=now, max_skew=max_skew, all_or_nothing=all_or_nothing,
                               from_text=from_text)
        rejected = result.rejected
        if read_errors:
            rejected = [{"row": r["row"], "errors": read_errors.get(r["row"], r["errors"])} for r in rejected]
        outcome = IngestOutcome(view.name, len(rows), len(result.accepted), rejected, result.batch_rejected)
        if not result.accepted:
            return outcome
        registered = self.ensure_registered(now=now).get(f"feature_view#{view.name}")
        outcome.version = registered.version if registered else None
        digest = registered.content_hash if registered else None
        accepted = result.accepted
        parts = self.offline.write(view, accepted, ingested_at=now, version=digest, source=source)
        outcome.offline_parts = [p.key for p in parts]
        outcome.online = self.online.write(view, accepted, now=now, version=digest)
        by_day = daily_stats(view, result.columns())
        self.stats.put(view.name, by_day, part_digests={p.day: p.digest for p in parts}, ingested_at=now)
        outcome.stats_days = sorted(by_day)
        newest = max(int(r[EVENT_TIMESTAMP]) for r in accepted)
        self.registry.record_ingest(view.name, last_event=newest, rows=len(accepted), now=now)
        return outcome

    # -- materialization ----------------------------------------------------------------------
    def _views(self, views: Sequence[FeatureView | str] | None) -> list[FeatureView]:
        return list(self.catalog.feature_views) if views is None else self.catalog.resolve(views)

    def _materialize_view(self, view: FeatureView, start_us: int, end_us: int, now: datetime | int) -> MaterializeResult:
        rows = self.offline.read_rows(view, start_us, end_us)
        registered = self.ensure_registered(now=now).get(f"feature_view#{view.name}")
        digest = registered.content_hash if registered else None
        written = self.online.write(view, rows, now=now, version=digest)
        return MaterializeResult(view.name, start_us, end_us, len(rows), written)

    def materialize(self, start: datetime | int, end: datetime | int, views: Sequence[FeatureView | str] | None = None,
                    *, now: datetime | int | None = None) -> list[MaterializeResult]:
        """Copy offline rows with ``start <= event_timestamp < end`` to the online store.
        ``now`` (default ``end``) decides which rows are already past their TTL (not written)."""
        start_us, end_us = as_micros(start), as_micros(end)
        if end_us <= start_us:
            raise ValueError("materialize needs start < end")
        clock = end_us if now is None else now
        return [self._materialize_view(v, start_us, end_us, clock) for v in self._views(views)]

    def materialize_incremental(self, end: datetime | int, views: Sequence[FeatureView | str] | None = None,
                                *, now: datetime | int | None = None) -> list[MaterializeResult]:
        """Materialize each view from its watermark (``end - ttl`` the first time) to ``end``,
        then move the watermark to ``end``."""
        end_us = as_micros(end)
        clock = end_us if now is None else now
        out = []
        for view in self._views(views):
            state = self.registry.state(view.name)
            start_us = state.materialized_until_us
            if start_us is None:
                start_us = end_us - micros_of(view.ttl)
            if start_us >= end_us:
                out.append(MaterializeResult(view.name, start_us, end_us, 0, WriteResult(0, 0, 0, 0), "up_to_date"))
                continue
            result = self._materialize_view(view, start_us, end_us, clock)
            self.registry.mark_materialized(view.name, end_us)
            out.append(result)
        return out

    # -- monitoring and training --------------------------------------------------------------
    def freshness(self, *, now: datetime | int, thresholds: Mapping[str, timedelta] | None = None,
                  views: Sequence[FeatureView | str] | None = None) -> list[FreshnessStatus]:
        """Each view's freshness (``now`` minus its newest event time) against its threshold."""
        selected = self._views(views)
        states = self.registry.listing().states
        last = {v.name: states[v.name].last_event_us if v.name in states else None for v in selected}
        return freshness_report(selected, last, now, thresholds)

    def training_set(self, labels: Mapping[str, np.ndarray], views: Sequence[FeatureView | str], *,
                     label_time: str = EVENT_TIMESTAMP, full_feature_names: bool = False) -> dict[str, np.ndarray]:
        """Point-in-time correct features for ``labels`` from the offline store."""
        return historical_features(self.offline, labels, self.catalog.resolve(views), label_time=label_time,
                                   full_feature_names=full_feature_names)
