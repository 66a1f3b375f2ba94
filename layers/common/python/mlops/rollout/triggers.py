"""When to retrain: one pure decision over every trigger the platform watches.

Five triggers start a retraining run (issue 5):

* ``schedule``  - the weekly EventBridge schedule fired (``cron(0 3 ? * SUN *)``);
* ``manual``    - an admin asked for it (``POST /retrain``);
* ``drift``     - the latest drift check saw PSI above ``psi_threshold`` on a key feature
  (every feature when no key features are declared), or a streaming detector alarmed;
* ``accuracy``  - accuracy measured on feedback fell more than ``accuracy_drop`` (relative)
  below the version's baseline accuracy, judged only on at least ``min_labelled`` labels;
* ``stale``     - the champion was trained more than ``max_age`` ago.

`decide` takes plain values and the time, and returns every reason that holds (not only the
first), so the run's record says why it started. The drift check function, the scheduled and
manual starts all go through it, so the policy lives in one place.

>>> from datetime import datetime, timezone
>>> now = datetime(2026, 11, 26, tzinfo=timezone.utc)
>>> decide(RetrainingSignals(psi={"vdd": 0.31, "idd": 0.05}), RetrainingPolicy(), now).reasons
('drift',)
>>> decide(RetrainingSignals(accuracy=0.85, baseline_accuracy=0.92, labelled=500), RetrainingPolicy(), now).retrain
True
>>> decide(RetrainingSignals(accuracy=0.90, baseline_accuracy=0.92, labelled=500), RetrainingPolicy(), now).retrain
False
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

REASONS = ("schedule", "manual", "drift", "accuracy", "stale")


@dataclass(frozen=True)
class RetrainingPolicy:
    """Thresholds of the automatic triggers."""

    psi_threshold: float = 0.2
    key_features: tuple[str, ...] = ()
    accuracy_drop: float = 0.05
    min_labelled: int = 100
    max_age: timedelta = timedelta(days=7)

    def __post_init__(self) -> None:
        if not (self.psi_threshold > 0 and math.isfinite(self.psi_threshold)):
            raise ValueError("psi_threshold: must be a positive number")
        if not 0 < self.accuracy_drop < 1:
            raise ValueError("accuracy_drop: must be in (0, 1)")
        if self.min_labelled < 1:
            raise ValueError("min_labelled: must be at least 1")
        if self.max_age <= timedelta(0):
            raise ValueError("max_age: must be positive")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "RetrainingPolicy":
        """From JSON-like values (``max_age_days`` for ``max_age``); unknown keys are refused."""
        known = {"psi_threshold", "key_features", "accuracy_drop", "min_labelled", "max_age_days"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown policy field")
        kwargs: dict[str, Any] = {k: values[k] for k in ("psi_threshold", "accuracy_drop", "min_labelled")
                                  if k in values}
        if "key_features" in values:
            kwargs["key_features"] = tuple(values["key_features"])
        if "max_age_days" in values:
            kwargs["max_age"] = timedelta(days=float(values["max_age_days"]))
        return cls(**kwargs)


@dataclass(frozen=True)
class RetrainingSignals:
    """What the platform observed; every field is optional."""

    psi: Mapping[str, float] = field(default_factory=dict)
    detector_alarms: Sequence[str] = ()
    accuracy: float | None = None
    baseline_accuracy: float | None = None
    labelled: int = 0
    last_trained_at: datetime | None = None
    manual: bool = False
    scheduled: bool = False


@dataclass(frozen=True)
class RetrainingDecision:
    """Whether to retrain, every reason that holds (a subset of `REASONS`, in that order), and
    the numbers behind them."""

    retrain: bool
    reasons: tuple[str, ...]
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the retraining execution's ``reason``)."""
        return {"retrain": self.retrain, "reasons": list(self.reasons), "details": self.details}


def decide(signals: RetrainingSignals, policy: RetrainingPolicy, now: datetime) -> RetrainingDecision:
    """Every trigger that holds at ``now`` (timezone-aware) under ``policy``."""
    reasons: list[str] = []
    details: dict[str, Any] = {}
    if signals.scheduled:
        reasons.append("schedule")
    if signals.manual:
        reasons.append("manual")
    watched = policy.key_features or tuple(signals.psi)
    drifted = sorted(f for f in watched if f in signals.psi and signals.psi[f] > policy.psi_threshold)
    if drifted or signals.detector_alarms:
        reasons.append("drift")
        details["drift"] = {"features": drifted, "psi": {f: signals.psi[f] for f in drifted},
                            "psi_threshold": policy.psi_threshold, "detectors": list(signals.detector_alarms)}
    if (signals.accuracy is not None and signals.baseline_accuracy is not None
            and signals.baseline_accuracy > 0 and signals.labelled >= policy.min_labelled):
        drop = 1.0 - signals.accuracy / signals.baseline_accuracy
        details["accuracy"] = {"accuracy": signals.accuracy, "baseline": signals.baseline_accuracy,
                               "relative_drop": drop, "labelled": signals.labelled,
                               "threshold": policy.accuracy_drop}
        if drop > policy.accuracy_drop:
            reasons.append("accuracy")
    if signals.last_trained_at is not None:
        age = now - signals.last_trained_at
        details["age_days"] = age.total_seconds() / 86400
        if age > policy.max_age:
            reasons.append("stale")
    return RetrainingDecision(bool(reasons), tuple(reasons), details)
