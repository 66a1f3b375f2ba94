"""Bandit state: a JSON-able dict, validated, copied (never mutated) on every update.

Shape (``policy`` decides the per-arm fields and ``params``)::

    {"policy": "thompson_beta", "version": 7,
     "arms": {"model-v3": {"n": 120, "successes": 96.0}, "model-v4": {...}},
     "params": {"floor": 0.01, "prior_alpha": 1.0, "prior_beta": 1.0}}

``version`` is for optimistic concurrency: every update returns a new dict with ``version + 1``;
the DynamoDB adapter writes it with ``ConditionExpression: version = :old`` and, when another
writer got there first, re-reads and re-applies the (pure) update, so no reward is lost. All
values are ints, finite floats and strings, so the state survives ``json.dumps``/``loads`` (and
Decimal conversion for DynamoDB) unchanged.

The **exploration floor** is a policy-independent guarantee: every arm is chosen with
probability at least ``floor`` on every decision (``floor * k <= 1``). It keeps feeding every
variant a trickle of traffic, so a variant that got unlucky early can recover and the data
stay usable for an unbiased comparison later. :func:`floor_pick` implements it: with
probability ``k * floor`` the arm is drawn uniformly, otherwise the policy decides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mlops.experiments.errors import ExperimentError, check_number

DEFAULT_FLOOR = 0.01


def check_arms(arms: Sequence[str]) -> list[str]:
    """Arm names: a non-empty list of unique non-empty strings."""
    if isinstance(arms, (str, bytes)) or not isinstance(arms, Sequence) or len(arms) < 1:
        raise ExperimentError("arms", f"must be a non-empty list of arm names, got {arms!r}")
    out: list[str] = []
    for i, name in enumerate(arms):
        if not isinstance(name, str) or not name:
            raise ExperimentError(f"arms[{i}]", f"must be a non-empty string, got {name!r}")
        if name in out:
            raise ExperimentError(f"arms[{i}]", f"duplicate arm {name!r}")
        out.append(name)
    return out


def check_floor(floor: Any, k: int) -> float:
    """The floor as a float in [0, 1/k]."""
    value = check_number("floor", floor)
    if value < 0 or value * k > 1.0 + 1e-12:
        raise ExperimentError("floor", f"must be in [0, 1/{k}] for {k} arms (each arm gets at least floor), got {value!r}")
    return value


def new(policy: str, arms: Sequence[str], stats: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """A fresh state: version 0, every arm with a copy of ``stats``."""
    names = check_arms(arms)
    return {"policy": policy, "version": 0, "arms": {a: dict(stats) for a in names}, "params": dict(params)}


def validate(state: Any, policies: Sequence[str], arm_fields: Sequence[str]) -> None:
    """Raise an error naming the field if ``state`` is not a well-formed state of one of ``policies``."""
    if not isinstance(state, Mapping):
        raise ExperimentError("state", f"must be an object, got {type(state).__name__}")
    if state.get("policy") not in policies:
        raise ExperimentError("state.policy", f"must be one of {tuple(policies)}, got {state.get('policy')!r}")
    version = state.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ExperimentError("state.version", f"must be a whole number >= 0, got {version!r}")
    arms = state.get("arms")
    if not isinstance(arms, Mapping) or not arms:
        raise ExperimentError("state.arms", "must be a non-empty object of arm -> statistics")
    for name, stats in arms.items():
        if not isinstance(stats, Mapping):
            raise ExperimentError(f"state.arms.{name}", "must be an object")
        for f in arm_fields:
            if f not in stats:
                raise ExperimentError(f"state.arms.{name}.{f}", "is required")
        n = stats["n"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ExperimentError(f"state.arms.{name}.n", f"must be a whole number >= 0, got {n!r}")
    params = state.get("params")
    if not isinstance(params, Mapping):
        raise ExperimentError("state.params", "must be an object")
    check_floor(params.get("floor", 0.0), len(arms))


def check_update(state: Mapping[str, Any], arm: Any, reward: Any, *, unit: bool) -> float:
    """The reward as a float; errors name ``arm`` (unknown) or ``reward`` (not a number, or
    outside [0, 1] when ``unit``)."""
    if not isinstance(arm, str) or arm not in state["arms"]:
        raise ExperimentError("arm", f"unknown arm {arm!r}; arms are {list(state['arms'])}")
    value = check_number("reward", reward)
    if unit and not 0.0 <= value <= 1.0:
        raise ExperimentError("reward", f"{state['policy']} needs rewards in [0, 1], got {value!r}")
    return value


def with_arm(state: Mapping[str, Any], arm: str, stats: dict[str, Any]) -> dict[str, Any]:
    """A new state with ``arm``'s statistics replaced and ``version + 1`` (the input is untouched)."""
    arms = dict(state["arms"])
    arms[arm] = stats
    return {**state, "version": int(state["version"]) + 1, "arms": arms, "params": dict(state["params"])}


def floor_pick(state: Mapping[str, Any], rng: np.random.Generator) -> str | None:
    """With probability ``k * floor`` a uniformly drawn arm, else None (the policy decides)."""
    floor = float(state["params"].get("floor", 0.0))
    if floor <= 0.0:
        return None
    names = list(state["arms"])
    k = len(names)
    u = rng.random()
    if u < k * floor:
        return names[min(int(u / floor), k - 1)]
    return None


def mix_floor(state: Mapping[str, Any], policy_probs: Mapping[str, float]) -> dict[str, float]:
    """Allocation probabilities after the floor: ``k floor / k + (1 - k floor) p_policy``."""
    floor = float(state["params"].get("floor", 0.0))
    k = len(state["arms"])
    return {a: floor + (1.0 - k * floor) * policy_probs.get(a, 0.0) for a in state["arms"]}


def argmax_random_tie(values: Sequence[float], rng: np.random.Generator) -> int:
    """Index of the largest value, ties broken uniformly at random."""
    best = max(values)
    ties = [i for i, v in enumerate(values) if v == best]
    return ties[0] if len(ties) == 1 else ties[int(rng.integers(len(ties)))]
