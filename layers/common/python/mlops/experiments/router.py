"""Which experiment variant a prediction request gets: what the inference router asks when an
experiment is running on the model.

:class:`LiveExperiment` is a running experiment as the router sees it (its definition and, for
a bandit, the bandit state read a moment ago). :meth:`LiveExperiment.pick` answers for one
routing key (the entity id, else the request id):

* **fixed allocation** (an A/B or A/A test) - the deterministic hash assignment
  (:class:`~mlops.experiments.assignment.Assigner`), so an entity sees the same variant on
  every request, and entities outside the enrolled ``traffic`` are not in the experiment
  (``None``: the deployment's champion/challenger routing answers them);
* **bandit** - enrolment is the same sticky hash (``hash_unit < traffic``), the variant is the
  bandit's choice for this request (:func:`mlops.experiments.bandits.choose`, exploration floor
  included). A bandit re-decides per request on purpose: its allocation follows the rewards.

Before ``start`` and from ``stop`` on, the experiment is not live (:meth:`is_live`). numpy and
the standard library only: this runs in the inference function (no scipy).

>>> from mlops.experiments.definition import ExperimentDefinition
>>> d = ExperimentDefinition.from_dict({"experiment_id": "e1", "model": "yield", "mde": 0.05,
...     "variants": [{"name": "a", "weight": 1, "model_version": "1"},
...                  {"name": "b", "weight": 1, "model_version": "2"}],
...     "primary_metric": {"name": "correct", "baseline": 0.8}})
>>> live = LiveExperiment(d)
>>> live.pick("device-7") == live.pick("device-7")
True
>>> live.pick("device-7").version in (1, 2)
True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from mlops.experiments import bandits
from mlops.experiments.assignment import Assigner, hash_unit
from mlops.experiments.definition import ExperimentDefinition


@dataclass(frozen=True)
class Assignment:
    """A request routed by an experiment: the experiment, its variant and the model version."""

    experiment_id: str
    variant: str
    version: int

    def to_api(self) -> dict[str, str]:
        return {"id": self.experiment_id, "variant": self.variant}


class LiveExperiment:
    """A running experiment of a model: picks the variant of each request (see module doc)."""

    def __init__(self, definition: ExperimentDefinition, bandit_state: Mapping[str, Any] | None = None, *,
                 rng: np.random.Generator | None = None) -> None:
        self.definition = definition
        self.bandit_state = bandit_state if definition.bandit is not None else None
        self.assigner = Assigner.for_definition(definition)
        self.versions = {v.name: int(v.model_version or 0) for v in definition.variants}
        self.rng = rng if rng is not None else np.random.default_rng()
        self._start = datetime.fromisoformat(definition.start) if definition.start else None
        self._stop = datetime.fromisoformat(definition.stop) if definition.stop else None

    @property
    def experiment_id(self) -> str:
        return self.definition.experiment_id

    def is_live(self, now: datetime) -> bool:
        """Whether ``now`` (aware) is inside [start, stop)."""
        return (self._start is None or now >= self._start) and (self._stop is None or now < self._stop)

    def pick(self, routing_key: str) -> Assignment | None:
        """The variant for this routing key, or None when it is not enrolled."""
        d = self.definition
        if self.bandit_state is None:  # fixed split (also a bandit whose state is not readable yet)
            variant = self.assigner.assign(routing_key)
            if variant is None:
                return None
        else:
            if d.traffic < 1.0 and hash_unit(d.salt, str(routing_key)) >= d.traffic:
                return None
            variant = bandits.choose(self.bandit_state, self.rng)
        return Assignment(d.experiment_id, variant, self.versions[variant])


def count_exposures(assignments: Iterable[Assignment | None]) -> dict[tuple[str, str], int]:
    """Predictions per ``(experiment id, variant)`` among ``assignments`` (None: not in one)."""
    counts: dict[tuple[str, str], int] = {}
    for a in assignments:
        if a is not None:
            key = (a.experiment_id, a.variant)
            counts[key] = counts.get(key, 0) + 1
    return counts
