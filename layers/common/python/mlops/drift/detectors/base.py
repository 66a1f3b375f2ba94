"""The streaming detector API (river's) plus JSON state that survives a Lambda's death.

Every detector has river's surface: ``update(x)`` returns the detector, ``drift_detected``
(and ``warning_detected`` where river has it) describe the *last* update, and the update
after a detection starts afresh, as river's do. On top of that:

* ``update_many(values)`` feeds a batch and returns the positions (within the batch) of
  drifts and warnings: what a feedback or drift-check invocation does with its batch;
* ``to_dict()`` / ``from_dict(d)``: the whole state as strict JSON (non-finite floats as
  strings), so that a detector restored from it continues exactly as if it had never
  stopped - the same detections at the same positions;
* ``n_seen`` counts every value ever fed (across resets), so positions can be reported
  stream-wide;
* ``version``: an integer for optimistic concurrency. The state store reads a detector at
  version v, feeds it, and writes its state back *only if* the stored version is still v
  (a DynamoDB ``ConditionExpression``), with version v + 1
  (:func:`~mlops.drift.detectors.state.advance`); a concurrent writer's update is then
  retried on the newer state instead of lost.
"""

from __future__ import annotations

import abc

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

FORMAT = 1
D = TypeVar("D", bound="DriftDetector")


def enc(x: float) -> float | str:
    """A float for strict JSON: non-finite values become "inf", "-inf" or "nan"."""
    return x if math.isfinite(x) else repr(x)


def dec(x: float | int | str) -> float:
    return float(x)


@dataclass
class Detections:
    """Positions (0-based, within the batch) where an update detected drift or warned."""

    drifts: list[int] = field(default_factory=list)
    warnings: list[int] = field(default_factory=list)


class DriftDetector(abc.ABC):
    """Base class: a drift flag, counters, JSON state (subclasses add their own)."""

    kind: ClassVar[str] = ""
    has_warning: ClassVar[bool] = False

    def __init__(self) -> None:
        self._drift_detected = False
        self.n_seen = 0
        self.version = 0

    @property
    def drift_detected(self) -> bool:
        """Whether the last update detected a drift."""
        return self._drift_detected

    @abc.abstractmethod
    def update(self: D, x: float) -> D:
        """Implemented by each detector."""

    def update_many(self, values: Iterable[float]) -> Detections:
        """Feed values in order; the positions where drift (and warnings) were detected."""
        out = Detections()
        for i, x in enumerate(values):
            self.update(x)
            if self._drift_detected:
                out.drifts.append(i)
            if self.has_warning and self._warning_detected:  # type: ignore[attr-defined]
                out.warnings.append(i)
        return out

    # -- state ---------------------------------------------------------------------------

    @abc.abstractmethod
    def params(self) -> dict[str, Any]:
        """Implemented by each detector."""

    @abc.abstractmethod
    def _get_state(self) -> dict[str, Any]:
        """Implemented by each detector."""

    @abc.abstractmethod
    def _set_state(self, state: Mapping[str, Any]) -> None:
        """Implemented by each detector."""

    def to_dict(self) -> dict[str, Any]:
        """The detector's parameters and complete state as a strict-JSON dict."""
        return {"kind": self.kind, "format": FORMAT, "version": self.version, "n_seen": self.n_seen,
                "params": self.params(), "state": self._get_state()}

    @classmethod
    def from_dict(cls: type[D], d: Mapping[str, Any]) -> D:
        """Restore a detector saved by :meth:`to_dict`."""
        if d.get("kind") != cls.kind:
            raise ValueError(f"state is for {d.get('kind')!r}, not {cls.kind!r}")
        if d.get("format") != FORMAT:
            raise ValueError(f"unsupported detector state format {d.get('format')!r}")
        detector = cls(**d["params"])
        detector._set_state(d["state"])
        detector.n_seen = int(d["n_seen"])
        detector.version = int(d["version"])
        return detector


class DriftAndWarningDetector(DriftDetector):
    """A detector that also raises warnings (DDM, EDDM)."""

    has_warning: ClassVar[bool] = True

    def __init__(self) -> None:
        super().__init__()
        self._warning_detected = False

    @property
    def warning_detected(self) -> bool:
        """Whether the last update raised a warning."""
        return self._warning_detected
