"""What ``GET /experiments/{id}`` and ``GET /experiments/{id}/analysis`` answer, from a stored
record, its totals and the time: the plan with a duration estimate from the observed traffic,
the progress per variant, the bandit's allocation, and the analysis.

The duration estimate needs eligible entities per day. Unless the caller gives it
(``daily_entities``), it comes from the traffic so far: predictions served under the
experiment (exposures) per day since it started, divided by the enrolled ``traffic`` share.
Less than an hour of data counts as an hour, so a burst in the first minutes does not promise
an absurd rate; with no exposures yet there is no estimate (``null``). Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import numpy as np

from mlops.experiments import bandits
from mlops.experiments.analysis import analyze
from mlops.experiments.power import plan
from mlops.experiments.store import ExperimentRecord

MIN_SPAN_DAYS = 1.0 / 24.0


def daily_entities(record: ExperimentRecord, exposures: int, now: datetime) -> float | None:
    """Eligible entities per day implied by ``exposures`` since the experiment began."""
    d = record.definition
    begin = datetime.fromisoformat(record.created_at)
    if d.start:
        begin = max(begin, datetime.fromisoformat(d.start))
    end = now
    for limit in (d.stop, record.stopped_at):
        if limit:
            end = min(end, datetime.fromisoformat(limit))
    if exposures <= 0 or end <= begin:
        return None
    days = max((end - begin).total_seconds() / 86400.0, MIN_SPAN_DAYS)
    return exposures / days / d.traffic


def bandit_summary(state: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The bandit's arms, version and next-decision probabilities (Thompson: 10 000 posterior
    draws from a generator seeded with the version, so the same state answers the same)."""
    if state is None:
        return None
    probabilities = bandits.probabilities(state, np.random.default_rng(int(state["version"])))
    return {"policy": state["policy"], "version": state["version"], "params": state["params"],
            "arms": state["arms"], "probabilities": probabilities}


def _traffic(record: ExperimentRecord, totals: Mapping[str, Any], now: datetime,
             override: float | None) -> tuple[float | None, dict[str, Any]]:
    exposures = dict(totals["assignments"])
    total = sum(exposures.values())
    observed = daily_entities(record, total, now)
    daily = override if override is not None else observed
    source = "query" if override is not None else ("observed" if observed is not None else None)
    return daily, {"exposures": exposures, "total": total, "daily_entities": daily, "source": source}


def describe(record: ExperimentRecord, totals: Mapping[str, Any], bandit_state: Mapping[str, Any] | None,
             now: datetime, daily_override: float | None = None) -> dict[str, Any]:
    """The body of ``GET /experiments/{id}``."""
    daily, traffic = _traffic(record, totals, now, daily_override)
    the_plan = plan(record.definition, daily)
    traffic["progress"] = {v: (traffic["exposures"][v] / n if n else None) for v, n in the_plan.required.items()}
    return {"experiment": record.to_api(now), "plan": the_plan.to_dict(), "traffic": traffic,
            "bandit": bandit_summary(bandit_state)}


def analysis(record: ExperimentRecord, totals: Mapping[str, Any], bandit_state: Mapping[str, Any] | None,
             now: datetime, daily_override: float | None = None) -> dict[str, Any]:
    """The body of ``GET /experiments/{id}/analysis``: :func:`~mlops.experiments.analysis.analyze`
    on the stored totals (a stop by hand counts as the stop time), plus the state, the totals
    it used and, for a bandit, its allocation."""
    daily, _ = _traffic(record, totals, now, daily_override)
    result = analyze(record.analysed_definition(), totals, now=now, daily_entities=daily,
                     adaptive=record.definition.bandit is not None)
    return {**result, "state": record.state(now), "totals": dict(totals), "bandit": bandit_summary(bandit_state)}
