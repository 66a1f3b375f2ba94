"""Thompson sampling: choose each arm with the posterior probability that it is the best.

Each decision draws one plausible mean per arm from its posterior and takes the largest.
Arms that are clearly worse are drawn on top less and less often, so traffic concentrates on
the best arm as evidence accumulates (logarithmic regret, usually the lowest of the three
policies here), while uncertain arms keep being tried. Being randomised, it also spreads
requests sensibly between two state updates, which suits delayed feedback.

Two reward models:

* ``thompson_beta`` - Beta-Bernoulli, for 0/1 rewards (a correct prediction, a pass): arm
  statistics ``n`` and ``successes`` (sum of rewards in [0, 1]; fractional rewards are the
  usual Bernoulli relaxation), posterior ``Beta(prior_alpha + successes, prior_beta + n -
  successes)``; params ``prior_alpha``, ``prior_beta`` (default 1, 1: uniform).
* ``thompson_gaussian`` - Normal with unknown mean and variance, for continuous rewards
  (negative latency, revenue): arm statistics ``n``, ``mean``, ``m2`` (Welford's running sum of
  squared deviations), conjugate Normal-Inverse-Gamma prior with ``prior_mean``,
  ``prior_count`` (kappa0, pseudo-observations behind the prior mean), ``prior_shape``
  (alpha0) and ``prior_scale`` (beta0; set it near the reward variance times alpha0). A draw
  is ``sigma^2 = beta_n / Gamma(alpha_n)``, ``mu ~ N(mu_n, sigma^2 / kappa_n)``.

Both take the exploration ``floor`` (see :mod:`~mlops.experiments.bandits.state`).

>>> import numpy as np
>>> s = new_beta_state(["a", "b"], floor=0.0)
>>> for _ in range(50):
...     s = update(update(s, "a", 1.0), "b", 0.0)
>>> probabilities(s, np.random.default_rng(1), draws=2000)["a"]
1.0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mlops.experiments.bandits import state as st
from mlops.experiments.errors import ExperimentError, check_number

BETA = "thompson_beta"
GAUSSIAN = "thompson_gaussian"
POLICIES = (BETA, GAUSSIAN)
_FIELDS = {BETA: ("n", "successes"), GAUSSIAN: ("n", "mean", "m2")}


def _positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    v = check_number(name, value)
    if v < 0 or (v == 0 and not allow_zero):
        raise ExperimentError(name, f"must be {'>= 0' if allow_zero else '> 0'}, got {v!r}")
    return v


def new_beta_state(arms: Sequence[str], *, prior_alpha: float = 1.0, prior_beta: float = 1.0,
                   floor: float = st.DEFAULT_FLOOR) -> dict[str, Any]:
    """A fresh Beta-Bernoulli Thompson state over ``arms``."""
    names = st.check_arms(arms)
    params = {"prior_alpha": _positive("prior_alpha", prior_alpha), "prior_beta": _positive("prior_beta", prior_beta),
              "floor": st.check_floor(floor, len(names))}
    return st.new(BETA, names, {"n": 0, "successes": 0.0}, params)


def new_gaussian_state(arms: Sequence[str], *, prior_mean: float = 0.0, prior_count: float = 1.0,
                       prior_shape: float = 1.0, prior_scale: float = 1.0,
                       floor: float = st.DEFAULT_FLOOR) -> dict[str, Any]:
    """A fresh Gaussian (Normal-Inverse-Gamma) Thompson state over ``arms``."""
    names = st.check_arms(arms)
    params = {"prior_mean": check_number("prior_mean", prior_mean),
              "prior_count": _positive("prior_count", prior_count),
              "prior_shape": _positive("prior_shape", prior_shape),
              "prior_scale": _positive("prior_scale", prior_scale),
              "floor": st.check_floor(floor, len(names))}
    return st.new(GAUSSIAN, names, {"n": 0, "mean": 0.0, "m2": 0.0}, params)


def _validate(state: Mapping[str, Any]) -> str:
    policy = state.get("policy") if isinstance(state, Mapping) else None
    st.validate(state, POLICIES, _FIELDS.get(policy, ("n",)))  # type: ignore[arg-type]
    return policy  # type: ignore[return-value]


def sample_means(state: Mapping[str, Any], rng: np.random.Generator, size: int | None = None) -> np.ndarray:
    """Posterior draws of each arm's mean: shape (k,) or (size, k)."""
    policy = _validate(state)
    arms = list(state["arms"].values())
    p = state["params"]
    shape = (len(arms),) if size is None else (size, len(arms))
    if policy == BETA:
        a = np.array([p["prior_alpha"] + x["successes"] for x in arms], dtype=float)
        b = np.array([p["prior_beta"] + x["n"] - x["successes"] for x in arms], dtype=float)
        return rng.beta(a, b, size=shape)
    n = np.array([x["n"] for x in arms], dtype=float)
    mean = np.array([x["mean"] for x in arms], dtype=float)
    m2 = np.array([x["m2"] for x in arms], dtype=float)
    mu0, k0, a0, b0 = p["prior_mean"], p["prior_count"], p["prior_shape"], p["prior_scale"]
    kn = k0 + n
    mun = (k0 * mu0 + n * mean) / kn
    an = a0 + n / 2.0
    bn = b0 + 0.5 * m2 + k0 * n * (mean - mu0) ** 2 / (2.0 * kn)
    sigma2 = bn / rng.gamma(an, size=shape)
    return mun + np.sqrt(sigma2 / kn) * rng.standard_normal(shape)


def choose(state: Mapping[str, Any], rng: np.random.Generator) -> str:
    """The arm for the next decision: the largest of one posterior draw per arm."""
    _validate(state)
    picked = st.floor_pick(state, rng)
    if picked is not None:
        return picked
    draws = sample_means(state, rng)
    return list(state["arms"])[int(np.argmax(draws))]


def update(state: Mapping[str, Any], arm: str, reward: float) -> dict[str, Any]:
    """A new state with ``reward`` observed for ``arm`` (version + 1)."""
    policy = _validate(state)
    r = st.check_update(state, arm, reward, unit=policy == BETA)
    a = state["arms"][arm]
    n = a["n"] + 1
    if policy == BETA:
        return st.with_arm(state, arm, {"n": n, "successes": a["successes"] + r})
    delta = r - a["mean"]
    mean = a["mean"] + delta / n
    return st.with_arm(state, arm, {"n": n, "mean": mean, "m2": a["m2"] + delta * (r - mean)})


def probabilities(state: Mapping[str, Any], rng: np.random.Generator | None = None,
                  draws: int = 10_000) -> dict[str, float]:
    """Monte Carlo estimate (``draws`` posterior draws) of each arm's chance to be chosen next."""
    _validate(state)
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise ExperimentError("draws", f"must be a whole number >= 1, got {draws!r}")
    rng = rng if rng is not None else np.random.default_rng()
    winners = np.argmax(sample_means(state, rng, size=draws), axis=1)
    counts = np.bincount(winners, minlength=len(state["arms"]))
    return st.mix_floor(state, {a: float(c) / draws for a, c in zip(state["arms"], counts)})


def posterior_mean(state: Mapping[str, Any]) -> dict[str, float]:
    """Each arm's posterior mean reward (for reports)."""
    policy = _validate(state)
    p = state["params"]
    out: dict[str, float] = {}
    for name, a in state["arms"].items():
        if policy == BETA:
            out[name] = (p["prior_alpha"] + a["successes"]) / (p["prior_alpha"] + p["prior_beta"] + a["n"])
        else:
            out[name] = (p["prior_count"] * p["prior_mean"] + a["n"] * a["mean"]) / (p["prior_count"] + a["n"])
    return out


