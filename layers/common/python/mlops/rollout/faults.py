"""Fault injection for tests and the demo: make a model version fail, slow down, or lose its
prediction-log rows, so rollbacks can be shown and tested on purpose.

Off by default and honoured only when the stack enables it: the template parameter
``FaultInjection`` (``disabled`` | ``enabled``) becomes ``FAULT_INJECTION`` in the inference and
model-admin functions; with ``disabled`` the admin route refuses to set faults and the
inference function ignores any that are stored. Faults are stored per version in the model's
deployment record (attribute ``faults``, JSON ``{"<version>": {...}}``):

* ``error_rate`` (0-1): that share of the version's requests fail as if the model errored;
* ``delay_ms`` (>= 0): each request the version answers takes that much longer;
* ``log_drop_rate`` (0-1): that share of its answered rows never reach the prediction log
  (lost telemetry: the classic cause of a sample-ratio mismatch).

Which requests are hit is decided by a hash of the row id, not a random draw, so a replayed
request meets the same fate. Pure: plain values in and out.

>>> f = Fault.from_dict({"error_rate": 0.5})
>>> sum(f.fails(f"req-{i}") for i in range(1000))
486
>>> Fault.from_dict({"error_rate": 2})
Traceback (most recent call last):
...
ValueError: error_rate: must be a number within 0-1
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

ENV = "FAULT_INJECTION"


def enabled(environ: Mapping[str, str]) -> bool:
    """Whether the stack honours faults (``FAULT_INJECTION=enabled``)."""
    return environ.get(ENV, "disabled").strip().lower() == "enabled"


def _share(key: str, salt: str) -> float:
    digest = hashlib.blake2b(f"{salt}\x1f{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass(frozen=True)
class Fault:
    """What to do to one version's requests (see the module docstring)."""

    error_rate: float = 0.0
    delay_ms: float = 0.0
    log_drop_rate: float = 0.0

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "Fault":
        """Checked; ValueError names the field."""
        if not isinstance(values, Mapping):
            raise ValueError("fault: expected an object")
        unknown = sorted(set(values) - {"error_rate", "delay_ms", "log_drop_rate"})
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown fault field")
        out = {}
        for name in ("error_rate", "log_drop_rate"):
            v = values.get(name, 0.0)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
                raise ValueError(f"{name}: must be a number within 0-1")
            out[name] = float(v)
        d = values.get("delay_ms", 0.0)
        if isinstance(d, bool) or not isinstance(d, (int, float)) or not (math.isfinite(d) and 0.0 <= d <= 10_000):
            raise ValueError("delay_ms: must be a number within 0-10000")
        return cls(delay_ms=float(d), **out)

    def to_dict(self) -> dict[str, float]:
        """JSON form."""
        return asdict(self)

    def fails(self, row_id: str) -> bool:
        """Whether this row's request fails."""
        return self.error_rate > 0 and _share(row_id, "error") < self.error_rate

    def drops_log(self, row_id: str) -> bool:
        """Whether this row is kept out of the prediction log."""
        return self.log_drop_rate > 0 and _share(row_id, "log") < self.log_drop_rate


def parse_faults(text: str | None) -> dict[int, Fault]:
    """The deployment record's ``faults`` attribute (JSON) as ``{version: Fault}``."""
    if not text:
        return {}
    raw = json.loads(text)
    if not isinstance(raw, Mapping):
        raise ValueError("faults: expected an object of version -> fault")
    out = {}
    for key, value in raw.items():
        if not str(key).isdigit() or int(key) < 1:
            raise ValueError(f"faults.{key}: expected a positive version number")
        out[int(key)] = Fault.from_dict(value)
    return out


def faults_json(faults: Mapping[int, Fault]) -> str:
    """The ``faults`` attribute for ``{version: Fault}`` (versions with no fault left out)."""
    return json.dumps({str(v): f.to_dict() for v, f in sorted(faults.items()) if f != Fault()},
                      separators=(",", ":"), sort_keys=True)
