"""Multi-armed bandits for allocating traffic between model variants.

Policies (one module each): :mod:`~.epsilon_greedy`, :mod:`~.ucb1`, :mod:`~.thompson`
(Beta-Bernoulli and Gaussian). Their state is a JSON-able dict with a ``version`` for
optimistic concurrency (:mod:`~.state`); every function here is pure: ``choose`` reads the
state and a numpy ``Generator``, ``update`` returns a new state and never mutates the old
one, so the DynamoDB adapter can retry a conditional write by re-applying the update to the
fresh state. :mod:`~.simulate` measures cumulative regret against the oracle.

This module dispatches on ``state["policy"]``:

>>> import numpy as np
>>> s = new_state("thompson_beta", ["champion", "challenger"])
>>> s = update(s, "challenger", 1)
>>> s["version"], s["arms"]["challenger"]
(1, {'n': 1, 'successes': 1.0})
>>> choose(s, np.random.default_rng(0)) in ("champion", "challenger")
True
>>> new_state("softmax", ["a"])
Traceback (most recent call last):
...
mlops.experiments.errors.ExperimentError: policy: must be one of 'epsilon_greedy', 'ucb1', 'thompson_beta', 'thompson_gaussian', got 'softmax'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import ModuleType
from typing import Any

import numpy as np

from mlops.experiments.bandits import epsilon_greedy, thompson, ucb1
from mlops.experiments.errors import ExperimentError, check_choice

POLICIES = ("epsilon_greedy", "ucb1", "thompson_beta", "thompson_gaussian")
_MODULES: dict[str, ModuleType] = {"epsilon_greedy": epsilon_greedy, "ucb1": ucb1,
                                   "thompson_beta": thompson, "thompson_gaussian": thompson}
_CONSTRUCTORS = {"epsilon_greedy": epsilon_greedy.new_state, "ucb1": ucb1.new_state,
                 "thompson_beta": thompson.new_beta_state, "thompson_gaussian": thompson.new_gaussian_state}


def _module(state: Mapping[str, Any]) -> ModuleType:
    if not isinstance(state, Mapping):
        raise ExperimentError("state", f"must be an object, got {type(state).__name__}")
    policy = state.get("policy")
    if policy not in _MODULES:
        raise ExperimentError("state.policy", f"must be one of {POLICIES}, got {policy!r}")
    return _MODULES[policy]


def new_state(policy: str, arms: Sequence[str], **params: Any) -> dict[str, Any]:
    """A fresh state for ``policy`` over ``arms``; ``params`` are the policy's (e.g. ``floor``)."""
    check_choice("policy", policy, POLICIES)
    try:
        return _CONSTRUCTORS[policy](arms, **params)
    except TypeError as err:  # an unknown keyword: name it
        raise ExperimentError("params", f"{policy}: {err}") from None


def choose(state: Mapping[str, Any], rng: np.random.Generator) -> str:
    """The arm for the next decision."""
    return _module(state).choose(state, rng)


def update(state: Mapping[str, Any], arm: str, reward: float) -> dict[str, Any]:
    """A new state with one reward applied (``version + 1``)."""
    return _module(state).update(state, arm, reward)


def update_many(state: Mapping[str, Any], rewards: Iterable[tuple[str, float]]) -> dict[str, Any]:
    """A new state with a batch of ``(arm, reward)`` applied in order (``version`` + the count).

    Batching feedback into one conditional write keeps write conflicts rare under load.
    """
    module = _module(state)
    out: Mapping[str, Any] = state
    for arm, reward in rewards:
        out = module.update(out, arm, reward)
    return dict(out)


def probabilities(state: Mapping[str, Any], rng: np.random.Generator | None = None,
                  draws: int = 10_000) -> dict[str, float]:
    """Each arm's probability of being chosen next (exact, or Monte Carlo for Thompson):
    what the router can use as weights when it does not call ``choose`` per request."""
    return _module(state).probabilities(state, rng, draws)
