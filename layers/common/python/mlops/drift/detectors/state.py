"""Save and restore any streaming detector by kind; the version rule for concurrent writers.

A detector's state is ``detector.to_dict()``: ``{"kind", "format", "version", "n_seen",
"params", "state"}``, strict JSON (no NaN/inf numbers; a KSWIN carries its random
generator's 625-word state, about 7 kB). :func:`load` rebuilds the right class.

**Optimistic concurrency.** Two invocations may feed the same detector at once (two
feedback batches). The store keeps ``version`` next to the state and writes with a
condition: read the item at version v, ``load`` it, feed it, then ``advance(dump(d))``
(version v + 1) and write *only if the stored version is still v* (DynamoDB
``ConditionExpression="version = :v"``; a new item: ``attribute_not_exists``). The loser
of a race re-reads and re-applies its batch, so no update is lost and none is applied
twice. Floats survive DynamoDB's Decimal numbers exactly via ``Decimal(repr(x))``.

>>> from mlops.drift.detectors import PageHinkley
>>> d = PageHinkley()
>>> _ = d.update_many([0.0] * 50)
>>> s = advance(dump(d))
>>> s["version"], load(s).n_seen
(1, 50)
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from mlops.drift.detectors.adwin import ADWIN
from mlops.drift.detectors.base import DriftDetector
from mlops.drift.detectors.ddm import DDM
from mlops.drift.detectors.eddm import EDDM
from mlops.drift.detectors.kswin import KSWIN
from mlops.drift.detectors.page_hinkley import PageHinkley

KINDS: dict[str, type[DriftDetector]] = {c.kind: c for c in (ADWIN, DDM, EDDM, KSWIN, PageHinkley)}


def create(kind: str, **params: Any) -> DriftDetector:
    """A fresh detector of the named kind ("ADWIN", "DDM", "EDDM", "KSWIN", "PageHinkley")."""
    if kind not in KINDS:
        raise ValueError(f"unknown detector {kind!r}; expected one of {sorted(KINDS)}")
    return KINDS[kind](**params)


def dump(detector: DriftDetector) -> dict[str, Any]:
    """The detector's JSON state (its ``version`` unchanged)."""
    return detector.to_dict()


def load(state: Mapping[str, Any]) -> DriftDetector:
    """Rebuild a detector from :func:`dump`'s output, whatever its kind."""
    kind = state.get("kind")
    if kind not in KINDS:
        raise ValueError(f"unknown detector {kind!r}; expected one of {sorted(KINDS)}")
    return KINDS[kind].from_dict(state)


def advance(state: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``state`` with ``version`` + 1: what a conditional write stores."""
    out = copy.deepcopy(dict(state))
    out["version"] = int(state["version"]) + 1
    return out
