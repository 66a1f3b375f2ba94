"""Freshness monitoring: how old each view's newest data is, and an alert over a threshold.

``freshness = now - last_updated``, where ``last_updated`` is the newest ``event_timestamp``
ingested for the view (kept by the registry's view state). A view is stale when its freshness
is over the threshold, or when it has no data at all. The default threshold is the view's
TTL: past it, the online store would serve nothing for an entity that was last updated then.

>>> from datetime import datetime, timedelta, timezone
>>> from mlops.features.yield_example import tester_health
>>> now = datetime(2024, 5, 2, tzinfo=timezone.utc)
>>> [s.stale for s in freshness_report([tester_health], {"tester_health": now - timedelta(hours=2)}, now,
...                                     {"tester_health": timedelta(hours=1)})]
[True]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mlops.features.definitions import FeatureView
from mlops.features.stats import freshness, is_stale
from mlops.features.timestamps import as_micros, to_datetime


@dataclass(frozen=True)
class FreshnessStatus:
    """One view's freshness at ``now`` against its threshold."""

    view: str
    last_event_us: int | None
    freshness: timedelta | None
    threshold: timedelta
    stale: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "view": self.view,
            "last_event": None if self.last_event_us is None
            else to_datetime(self.last_event_us).isoformat().replace("+00:00", "Z"),
            "freshness_seconds": None if self.freshness is None else self.freshness.total_seconds(),
            "threshold_seconds": self.threshold.total_seconds(),
            "stale": self.stale,
        }


def freshness_report(
    views: Sequence[FeatureView],
    last_events: Mapping[str, datetime | int | None],
    now: datetime | int,
    thresholds: Mapping[str, timedelta] | None = None,
) -> list[FreshnessStatus]:
    """The freshness of each view (``last_events``: view name -> newest event time, or None)."""
    out = []
    for view in views:
        last = last_events.get(view.name)
        last_us = None if last is None else as_micros(last)
        threshold = (thresholds or {}).get(view.name, view.ttl)
        out.append(FreshnessStatus(view.name, last_us, freshness(last_us, now), threshold,
                                   is_stale(last_us, now, threshold)))
    return out
