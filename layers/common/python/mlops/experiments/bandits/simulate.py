"""Bandit simulation: cumulative regret against the oracle on arms with known means.

Regret after T rounds is ``sum_t (mu* - mu_{arm_t})``: what always playing the best arm
would have earned beyond what the policy earned, in expectation (pseudo-regret, so the
reward noise does not blur the comparison). A good policy's regret grows like ``log T``;
uniform random allocation - the A/B test's fixed 1/k split - grows linearly, ``T (mu* -
mean(mu))``, and is the peer every policy is compared with.

The simulation drives the real ``choose``/``update`` functions, one decision and one
immediate reward per round, and draws all rewards up front from ``seed`` (a matrix with one
column per arm), so that every policy - and the uniform peer - faces the same reward
stream: differences come from the policies, not from luck.

>>> from mlops.experiments.bandits import new_state
>>> r = simulate(new_state("thompson_beta", ["a", "b"], floor=0.0), [0.2, 0.8], rounds=2000, seed=1)
>>> r.pulls["b"] > 1900, r.regret < 0.05 * 2000 * 0.6
(True, True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlops.experiments import bandits
from mlops.experiments.errors import ExperimentError, check_choice, check_number

REWARDS = ("bernoulli", "gaussian")


@dataclass
class SimulationResult:
    """Outcome of one simulated run."""

    policy: str
    rounds: int
    regret: float
    cumulative_regret: np.ndarray = field(repr=False)
    pulls: dict[str, int] = field(default_factory=dict)
    total_reward: float = 0.0
    final_state: dict[str, Any] | None = field(default=None, repr=False)


def _check(arm_means: Sequence[float], rounds: int, reward: str, reward_sd: float) -> np.ndarray:
    means = np.asarray([check_number(f"arm_means[{i}]", m) for i, m in enumerate(arm_means)], dtype=float)
    if means.size < 2:
        raise ExperimentError("arm_means", "needs at least two arms")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ExperimentError("rounds", f"must be a whole number >= 1, got {rounds!r}")
    check_choice("reward", reward, REWARDS)
    if reward == "bernoulli" and not np.all((means >= 0) & (means <= 1)):
        raise ExperimentError("arm_means", "Bernoulli arms need means in [0, 1]")
    if check_number("reward_sd", reward_sd) <= 0:
        raise ExperimentError("reward_sd", f"must be > 0, got {reward_sd!r}")
    return means


def reward_matrix(arm_means: Sequence[float], rounds: int, seed: int, reward: str = "bernoulli",
                  reward_sd: float = 1.0) -> np.ndarray:
    """The (rounds, k) rewards every policy in a comparison sees (common random numbers)."""
    means = _check(arm_means, rounds, reward, reward_sd)
    rng = np.random.default_rng([seed, 0])
    if reward == "bernoulli":
        return (rng.random((rounds, means.size)) < means).astype(float)
    return means + reward_sd * rng.standard_normal((rounds, means.size))


def simulate(state: Mapping[str, Any] | str, arm_means: Sequence[float], rounds: int, seed: int = 0, *,
             reward: str = "bernoulli", reward_sd: float = 1.0,
             rewards: np.ndarray | None = None) -> SimulationResult:
    """Run ``rounds`` decisions of the policy in ``state`` (or ``"uniform"``, the peer).

    Arm ``i`` of the state (in its order) has mean ``arm_means[i]``. ``rewards`` may pass a
    precomputed :func:`reward_matrix` to share it across policies.
    """
    means = _check(arm_means, rounds, reward, reward_sd)
    table = reward_matrix(means, rounds, seed, reward, reward_sd) if rewards is None else np.asarray(rewards)
    if table.shape != (rounds, means.size):
        raise ExperimentError("rewards", f"must have shape {(rounds, means.size)}, got {table.shape}")
    rng = np.random.default_rng([seed, 1])
    gaps = means.max() - means
    chosen = np.empty(rounds, dtype=np.int64)
    if isinstance(state, str):
        if state != "uniform":
            raise ExperimentError("state", f"a policy state or 'uniform', got {state!r}")
        chosen = rng.integers(0, means.size, rounds)
        names = [f"arm{i}" for i in range(means.size)]
        policy, final = "uniform", None
    else:
        names = list(state["arms"])
        if len(names) != means.size:
            raise ExperimentError("arm_means", f"has {means.size} means for {len(names)} arms")
        index = {a: i for i, a in enumerate(names)}
        current: Mapping[str, Any] = state
        choose, update = bandits.choose, bandits.update
        for t in range(rounds):
            arm = choose(current, rng)
            i = index[arm]
            chosen[t] = i
            current = update(current, arm, float(table[t, i]))
        policy, final = str(state["policy"]), dict(current)
    cumulative = np.cumsum(gaps[chosen])
    counts = np.bincount(chosen, minlength=means.size)
    return SimulationResult(policy=policy, rounds=rounds, regret=float(cumulative[-1]), cumulative_regret=cumulative,
                            pulls={a: int(c) for a, c in zip(names, counts)},
                            total_reward=float(table[np.arange(rounds), chosen].sum()), final_state=final)
