"""Deterministic assignment: which variant an entity sees, from a hash of (salt, entity).

What: ``u = sha256(salt + "\\x1f" + entity)`` read as a number in [0, 1) (its top 53 bits, so
every value is an exact double), then a lookup in the variants' ranges.

Why this way:

* **Stable** - the same (salt, entity) gives the same variant in every call, process, machine
  and Python version: sha256 is fixed, unlike ``hash()`` which is salted per process.
* **Uniform** - sha256's output bits are indistinguishable from uniform, so the share of
  entities in a variant converges to its weight (the tests check this with a chi-square).
* **Independent across experiments** - each experiment hashes with its own salt; two salts
  give unrelated hash values, so being in variant B of one experiment says nothing about the
  variant in another (the tests check the joint table).
* **Ramp-safe** - variant ``i`` owns ``[C_i, C_i + traffic * w_i)`` where ``C_i`` is the sum of
  the earlier weights (GrowthBook's layout). Raising ``traffic`` only adds entities: no entity
  already enrolled changes variant. Changing the *weights* does move entities, which is why a
  running experiment's allocation should be locked.

>>> a = Assigner("exp-1", {"control": 0.5, "treatment": 0.5})
>>> a.assign("device-42") == a.assign("device-42")
True
>>> sorted({a.assign(f"d{i}") for i in range(100)})
['control', 'treatment']
>>> Assigner("exp-1", {"a": 1.0, "b": 0.0})
Traceback (most recent call last):
...
mlops.experiments.errors.ExperimentError: allocation.b: variant 'b' must get traffic (weight > 0), got 0.0
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Iterable, Mapping

from mlops.experiments.definition import ExperimentDefinition
from mlops.experiments.errors import ExperimentError

_SEPARATOR = "\x1f"  # the ASCII unit separator: cannot be confused with ordinary id characters
_SCALE = 2.0 ** -53


def hash_unit(salt: str, entity_id: str) -> float:
    """The entity's position in [0, 1) for this salt: sha256(salt, entity), top 53 bits."""
    digest = hashlib.sha256(f"{salt}{_SEPARATOR}{entity_id}".encode("utf-8")).digest()
    return (int.from_bytes(digest[:8], "big") >> 11) * _SCALE


class Assigner:
    """Maps entity ids to variants for one experiment (salt, allocation, enrolled traffic).

    ``allocation`` maps variant name -> positive weight (normalised here); ``traffic`` in (0, 1]
    is the share of all entities enrolled. :meth:`assign` returns ``None`` for an entity that is
    not enrolled.
    """

    def __init__(self, salt: str, allocation: Mapping[str, float], traffic: float = 1.0) -> None:
        if not isinstance(salt, str) or not salt:
            raise ExperimentError("salt", f"must be a non-empty string, got {salt!r}")
        if len(allocation) < 1:
            raise ExperimentError("allocation", "needs at least one variant")
        weights: list[float] = []
        for name, weight in allocation.items():
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
                raise ExperimentError(f"allocation.{name}", f"must be a finite number, got {weight!r}")
            if weight <= 0:
                raise ExperimentError(f"allocation.{name}",
                                      f"variant {name!r} must get traffic (weight > 0), got {float(weight)!r}")
            weights.append(float(weight))
        if isinstance(traffic, bool) or not isinstance(traffic, (int, float)) or not 0.0 < traffic <= 1.0:
            raise ExperimentError("traffic", f"must be in (0, 1], got {traffic!r}")
        total = math.fsum(weights)
        self.salt = salt
        self.traffic = float(traffic)
        self.names: tuple[str, ...] = tuple(allocation)
        self.weights: tuple[float, ...] = tuple(w / total for w in weights)
        starts, acc = [], 0.0
        for w in self.weights:
            starts.append(acc)
            acc += w
        self._starts = starts
        if self.traffic == 1.0:  # contiguous ranges; the last one ends at exactly 1
            self._ends = starts[1:] + [1.0]
        else:
            self._ends = [s + self.traffic * w for s, w in zip(starts, self.weights)]

    @classmethod
    def for_definition(cls, definition: ExperimentDefinition) -> "Assigner":
        """The assigner of a validated experiment definition."""
        return cls(definition.salt, definition.allocation, definition.traffic)

    def assign_unit(self, u: float) -> str | None:
        """The variant owning position ``u`` in [0, 1), or None (not enrolled)."""
        i = bisect.bisect_right(self._starts, u) - 1
        if u < self._ends[i]:
            return self.names[i]
        return None

    def assign(self, entity_id: str) -> str | None:
        """The entity's variant (stable for this salt and allocation), or None if not enrolled."""
        return self.assign_unit(hash_unit(self.salt, str(entity_id)))

    def assign_many(self, entity_ids: Iterable[str]) -> list[str | None]:
        """:meth:`assign` for each id, in order."""
        return [self.assign(e) for e in entity_ids]


def assign(definition: ExperimentDefinition, entity_id: str) -> str | None:
    """The variant ``entity_id`` sees in ``definition`` (None if it is outside the enrolled traffic)."""
    return Assigner.for_definition(definition).assign(entity_id)
