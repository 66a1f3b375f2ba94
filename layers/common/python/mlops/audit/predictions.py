"""Which predictions go to the audit trail: all, none, or a deterministic sample.

``AUDIT_PREDICTION_SAMPLE_RATE`` (0 to 1, default 0: none; 1: all) sets the share. A row is
sampled when the sha256 of its request id, read as a number in [0, 1), is below the rate, so
the decision is the same on every retry and in every process, and an auditor can recompute
which request ids had to be audited. Audited predictions go to the model's ``predictions:``
chain (`mlops.audit.chain`). One chain takes on the order of a hundred appends a second (each
append is a read and a conditional put), so "all" suits low-traffic models; busy ones sample.
Pure except `PredictionAudit.record`, which appends through `mlops.audit.trail` (a failure is
logged and counted, and never changes the prediction's answer).

>>> sampled("req-1", 0.0), sampled("req-1", 1.0)
(False, True)
>>> sum(sampled(f"req-{i}", 0.25) for i in range(10_000)) / 10_000
0.2492
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from typing import Any

from mlops.audit.events import PREDICTION, prediction_entity
from mlops.audit.trail import record_change

RATE_VARIABLE = "AUDIT_PREDICTION_SAMPLE_RATE"
DEFAULT_RATE = 0.0
_SCALE = float(2 ** 64)


def sample_point(request_id: str) -> float:
    """Where a request id falls in [0, 1): the first 8 bytes of its sha256."""
    return int.from_bytes(hashlib.sha256(request_id.encode("utf-8")).digest()[:8], "big") / _SCALE


def sampled(request_id: str, rate: float) -> bool:
    """Whether the prediction with this request id is audited at this rate."""
    if rate <= 0.0:
        return False
    return rate >= 1.0 or sample_point(request_id) < rate


def rate_from_env(environ: Mapping[str, str] | None = None) -> float:
    """The configured rate; a value that is not a number in [0, 1] raises ValueError naming
    the variable (a misconfigured function fails at start, not silently)."""
    env = os.environ if environ is None else environ
    text = (env.get(RATE_VARIABLE) or "").strip()
    if not text:
        return DEFAULT_RATE
    try:
        rate = float(text)
    except ValueError:
        rate = float("nan")
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"{RATE_VARIABLE} must be a number from 0 to 1, got {text!r}")
    return rate


def prediction_details(row: Mapping[str, Any]) -> dict[str, Any]:
    """What the audit keeps of one logged prediction row (`RowResult.log_row`'s dict)."""
    return {k: row.get(k) for k in ("request_id", "version", "variant", "entity_id", "probability", "label",
                                    "threshold", "inputs", "imputed", "fallback")}


class PredictionAudit:
    """Audits the sampled rows of each answered request."""

    def __init__(self, store: Any, rate: float, logger: Any, actor: str = "inference") -> None:
        self.store = store
        self.rate = rate
        self.logger = logger
        self.actor = actor

    def record(self, rows: Iterable[Mapping[str, Any]], at: str) -> int:
        """Append the sampled rows (best effort, `mlops.audit.trail`); returns how many were recorded."""
        if self.rate <= 0.0:
            return 0
        done = 0
        for row in rows:
            if sampled(str(row["request_id"]), self.rate):
                done += record_change(self.store, self.logger, PREDICTION, self.actor, model=row["model"],
                                      entity=prediction_entity(str(row["request_id"])),
                                      details=prediction_details(row), at=at) is not None
        return done
