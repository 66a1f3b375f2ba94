"""UCB1 (Auer, Cesa-Bianchi and Fischer 2002): optimism in the face of uncertainty.

Each decision takes the arm with the largest upper confidence bound
``mean + c * sqrt(2 ln t / n)`` (``t`` rewards so far in all, ``n`` for the arm), trying every
arm once first. Logarithmic regret for rewards in [0, 1] without any prior, and fully
deterministic given the state - which is also its weakness in serving: between two state
updates every request goes to the same arm, so with delayed feedback the floor (and
batching updates) matters more here than for Thompson sampling.

Arm statistics: ``n`` and running ``mean``; rewards must be in [0, 1] (the bound assumes
it: scale other rewards first). Params: ``c`` (default 1, the textbook bound) and ``floor``.

>>> import numpy as np
>>> s = new_state(["a", "b"], floor=0.0)
>>> choose(s, np.random.default_rng(0)) in ("a", "b")
True
>>> update(s, "a", 2.0)
Traceback (most recent call last):
...
mlops.experiments.errors.ExperimentError: reward: ucb1 needs rewards in [0, 1], got 2.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mlops.experiments.bandits import state as st
from mlops.experiments.errors import ExperimentError, check_number

POLICY = "ucb1"
ARM_FIELDS = ("n", "mean")


def new_state(arms: Sequence[str], *, c: float = 1.0, floor: float = st.DEFAULT_FLOOR) -> dict[str, Any]:
    """A fresh UCB1 state over ``arms``."""
    names = st.check_arms(arms)
    scale = check_number("c", c)
    if scale < 0:
        raise ExperimentError("c", f"must be >= 0, got {scale!r}")
    return st.new(POLICY, names, {"n": 0, "mean": 0.0}, {"c": scale, "floor": st.check_floor(floor, len(names))})


def upper_bounds(state: Mapping[str, Any]) -> list[float]:
    """Each arm's index ``mean + c sqrt(2 ln t / n)`` (inf for an arm with no reward yet)."""
    arms = list(state["arms"].values())
    t = sum(a["n"] for a in arms)
    c = float(state["params"]["c"])
    log_t = math.log(t) if t > 0 else 0.0
    return [math.inf if a["n"] == 0 else a["mean"] + c * math.sqrt(2.0 * log_t / a["n"]) for a in arms]


def choose(state: Mapping[str, Any], rng: np.random.Generator) -> str:
    """The arm for the next decision (ties, e.g. several untried arms, broken at random)."""
    st.validate(state, (POLICY,), ARM_FIELDS)
    picked = st.floor_pick(state, rng)
    if picked is not None:
        return picked
    names = list(state["arms"])
    return names[st.argmax_random_tie(upper_bounds(state), rng)]


def update(state: Mapping[str, Any], arm: str, reward: float) -> dict[str, Any]:
    """A new state with ``reward`` (in [0, 1]) observed for ``arm`` (version + 1)."""
    st.validate(state, (POLICY,), ARM_FIELDS)
    r = st.check_update(state, arm, reward, unit=True)
    a = state["arms"][arm]
    n = a["n"] + 1
    return st.with_arm(state, arm, {"n": n, "mean": a["mean"] + (r - a["mean"]) / n})


def probabilities(state: Mapping[str, Any], rng: np.random.Generator | None = None, draws: int = 0) -> dict[str, float]:
    """Exact probability that each arm is chosen next (the leaders share; then the floor)."""
    st.validate(state, (POLICY,), ARM_FIELDS)
    names = list(state["arms"])
    bounds = upper_bounds(state)
    best = max(bounds)
    leaders = [a for a, b in zip(names, bounds) if b == best]
    return st.mix_floor(state, {a: (1.0 / len(leaders) if a in leaders else 0.0) for a in names})
