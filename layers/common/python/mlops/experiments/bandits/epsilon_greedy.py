"""epsilon-greedy: exploit the best mean so far, explore uniformly with probability epsilon.

The simplest policy, and a useful baseline: easy to explain ("90% of traffic to the current
best, 10% spread evenly") and robust to delayed or batched feedback, because its allocation
changes only when the leader changes. Its cost is linear regret: it keeps spending
``epsilon (k - 1) / k`` of the traffic on arms it already knows are worse.

Arm statistics: ``n`` and the running ``mean`` of its rewards (any finite numbers). An arm
with no reward yet is tried before any greedy choice. Params: ``epsilon`` in [0, 1] (default
0.1) and the exploration ``floor`` (see :mod:`~mlops.experiments.bandits.state`).

>>> import numpy as np
>>> s = new_state(["a", "b"], epsilon=0.1, floor=0.0)
>>> s = update(update(s, "a", 1.0), "b", 0.0)
>>> {a: round(p, 12) for a, p in probabilities(s).items()}
{'a': 0.95, 'b': 0.05}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mlops.experiments.bandits import state as st
from mlops.experiments.errors import ExperimentError, check_number

POLICY = "epsilon_greedy"
ARM_FIELDS = ("n", "mean")


def new_state(arms: Sequence[str], *, epsilon: float = 0.1, floor: float = st.DEFAULT_FLOOR) -> dict[str, Any]:
    """A fresh epsilon-greedy state over ``arms``."""
    names = st.check_arms(arms)
    eps = check_number("epsilon", epsilon)
    if not 0.0 <= eps <= 1.0:
        raise ExperimentError("epsilon", f"must be in [0, 1], got {eps!r}")
    return st.new(POLICY, names, {"n": 0, "mean": 0.0}, {"epsilon": eps, "floor": st.check_floor(floor, len(names))})


def choose(state: Mapping[str, Any], rng: np.random.Generator) -> str:
    """The arm for the next decision."""
    st.validate(state, (POLICY,), ARM_FIELDS)
    picked = st.floor_pick(state, rng)
    if picked is not None:
        return picked
    names = list(state["arms"])
    if rng.random() < float(state["params"]["epsilon"]):
        return names[int(rng.integers(len(names)))]
    return names[st.argmax_random_tie(_scores(state), rng)]


def _scores(state: Mapping[str, Any]) -> list[float]:
    return [float("inf") if a["n"] == 0 else float(a["mean"]) for a in state["arms"].values()]


def update(state: Mapping[str, Any], arm: str, reward: float) -> dict[str, Any]:
    """A new state with ``reward`` observed for ``arm`` (version + 1)."""
    st.validate(state, (POLICY,), ARM_FIELDS)
    r = st.check_update(state, arm, reward, unit=False)
    a = state["arms"][arm]
    n = a["n"] + 1
    return st.with_arm(state, arm, {"n": n, "mean": a["mean"] + (r - a["mean"]) / n})


def probabilities(state: Mapping[str, Any], rng: np.random.Generator | None = None, draws: int = 0) -> dict[str, float]:
    """Exact probability that each arm is chosen next (greedy ties share)."""
    st.validate(state, (POLICY,), ARM_FIELDS)
    names = list(state["arms"])
    k = len(names)
    scores = _scores(state)
    best = max(scores)
    leaders = [a for a, s in zip(names, scores) if s == best]
    eps = float(state["params"]["epsilon"])
    policy = {a: eps / k + ((1.0 - eps) / len(leaders) if a in leaders else 0.0) for a in names}
    return st.mix_floor(state, policy)
