"""Bandits: JSON state, purity and versions, the exploration floor, concentration, bad input."""

from __future__ import annotations

import copy
import json
from collections import Counter

import numpy as np
import pytest
from scipy import stats

from mlops.experiments import bandits
from mlops.experiments.bandits import epsilon_greedy, thompson, ucb1
from mlops.experiments.bandits.simulate import reward_matrix, simulate
from mlops.experiments.errors import ExperimentError

ARMS = ["v1", "v2", "v3"]
POLICIES = list(bandits.POLICIES)


def played(policy: str, rounds: int = 300, seed: int = 0, **params) -> dict:
    """A state after some rounds on arms with means 0.2, 0.5, 0.7."""
    s = bandits.new_state(policy, ARMS, **params)
    rng = np.random.default_rng(seed)
    for _ in range(rounds):
        arm = bandits.choose(s, rng)
        s = bandits.update(s, arm, float(rng.random() < {"v1": 0.2, "v2": 0.5, "v3": 0.7}[arm]))
    return s


@pytest.mark.parametrize("policy", POLICIES)
def test_state_round_trips_through_json_and_decides_the_same(policy: str) -> None:
    s = played(policy)
    again = json.loads(json.dumps(s, allow_nan=False))
    assert again == s
    picks = [bandits.choose(s, np.random.default_rng(k)) for k in range(50)]
    assert [bandits.choose(again, np.random.default_rng(k)) for k in range(50)] == picks
    assert bandits.update(again, "v2", 1.0) == bandits.update(s, "v2", 1.0)


@pytest.mark.parametrize("policy", POLICIES)
def test_update_is_pure_and_bumps_the_version(policy: str) -> None:
    s = played(policy, rounds=20)
    before = copy.deepcopy(s)
    out = bandits.update(s, "v1", 1.0)
    assert s == before  # the input is untouched
    assert out["version"] == s["version"] + 1
    assert out["arms"]["v1"]["n"] == s["arms"]["v1"]["n"] + 1
    assert out["arms"]["v2"] == s["arms"]["v2"]
    assert s["version"] == 20
    batch = bandits.update_many(s, [("v1", 1.0), ("v2", 0.0), ("v1", 0.0)])
    assert batch["version"] == 23 and batch["arms"]["v1"]["n"] == s["arms"]["v1"]["n"] + 2


def test_running_statistics_are_exact() -> None:
    rewards = np.random.default_rng(1).normal(3.0, 2.0, 500)
    g = bandits.new_state("thompson_gaussian", ["a", "b"])
    e = bandits.new_state("epsilon_greedy", ["a", "b"])
    for r in rewards:
        g, e = bandits.update(g, "a", float(r)), bandits.update(e, "a", float(r))
    assert g["arms"]["a"]["mean"] == pytest.approx(rewards.mean(), rel=1e-12)
    assert g["arms"]["a"]["m2"] == pytest.approx(((rewards - rewards.mean()) ** 2).sum(), rel=1e-10)
    assert e["arms"]["a"]["mean"] == pytest.approx(rewards.mean(), rel=1e-12)
    b = bandits.new_state("thompson_beta", ["a", "b"])
    for r in (1, 0, 1, 1, 0.5):
        b = bandits.update(b, "a", r)
    assert b["arms"]["a"] == {"n": 5, "successes": 3.5}


def test_gaussian_posterior_draws_follow_the_normal_inverse_gamma_posterior() -> None:
    """The marginal of mu is Student t: location mu_n, scale sqrt(beta_n / (alpha_n kappa_n)), 2 alpha_n df."""
    rewards = np.random.default_rng(2).normal(5.0, 3.0, 40)
    s = thompson.new_gaussian_state(["a", "b"], prior_mean=1.0, prior_count=2.0, prior_shape=2.0, prior_scale=4.0)
    for r in rewards:
        s = thompson.update(s, "a", float(r))
    n, xbar = len(rewards), rewards.mean()
    kn, an = 2.0 + n, 2.0 + n / 2
    mun = (2.0 * 1.0 + n * xbar) / kn
    bn = 4.0 + 0.5 * ((rewards - xbar) ** 2).sum() + 2.0 * n * (xbar - 1.0) ** 2 / (2 * kn)
    draws = thompson.sample_means(s, np.random.default_rng(3), size=20000)[:, 0]
    marginal = stats.t(df=2 * an, loc=mun, scale=np.sqrt(bn / (an * kn)))
    assert stats.kstest(draws, marginal.cdf).pvalue > 0.001
    assert thompson.posterior_mean(s)["a"] == pytest.approx(mun)


def test_beta_posterior_draws_follow_the_beta_posterior() -> None:
    s = thompson.new_beta_state(["a", "b"], prior_alpha=2.0, prior_beta=3.0)
    for r in (1, 1, 0, 1, 0, 0, 0, 1, 1, 1):
        s = thompson.update(s, "a", r)
    draws = thompson.sample_means(s, np.random.default_rng(4), size=20000)[:, 0]
    assert stats.kstest(draws, stats.beta(2 + 6, 3 + 4).cdf).pvalue > 0.001


@pytest.mark.parametrize("policy", POLICIES)
def test_exploration_floor_holds(policy: str) -> None:
    """After the policy has settled on v3, every arm still gets at least `floor` of the decisions."""
    floor = 0.05
    s = played(policy, rounds=600, floor=floor)
    probs = bandits.probabilities(s, np.random.default_rng(0), draws=4000)
    assert sum(probs.values()) == pytest.approx(1.0)
    assert min(probs.values()) >= floor - 1e-12
    rng = np.random.default_rng(6)
    counts = Counter(bandits.choose(s, rng) for _ in range(6000))
    for arm in ARMS:  # binomial lower bound: 6000 * 0.05 = 300, sd about 17
        assert counts[arm] >= 6000 * floor - 4 * np.sqrt(6000 * floor * (1 - floor)), (arm, counts)


def test_floor_frequency_matches_for_deterministic_ucb() -> None:
    """UCB1 alone would send every request to one arm; with the floor the others get exactly floor each."""
    s = played("ucb1", rounds=600, floor=0.1)
    leader = max(ucb1.upper_bounds(s))
    probs = ucb1.probabilities(s)
    for arm, bound in zip(ARMS, ucb1.upper_bounds(s)):
        assert probs[arm] == pytest.approx(0.1 + (0.7 if bound == leader else 0.0))
    rng = np.random.default_rng(9)
    counts = Counter(bandits.choose(s, rng) for _ in range(20000))
    observed = np.array([counts[a] for a in ARMS])
    expected = 20000 * np.array([probs[a] for a in ARMS])
    assert stats.chisquare(observed, expected).pvalue > 0.001


def test_epsilon_greedy_probabilities_are_exact() -> None:
    s = played("epsilon_greedy", rounds=400, epsilon=0.2, floor=0.02)
    probs = epsilon_greedy.probabilities(s)
    best = max(ARMS, key=lambda a: s["arms"][a]["mean"])
    k, f, eps = 3, 0.02, 0.2
    for arm in ARMS:
        expected = f + (1 - k * f) * (eps / k + ((1 - eps) if arm == best else 0.0))
        assert probs[arm] == pytest.approx(expected)
    rng = np.random.default_rng(10)
    counts = Counter(bandits.choose(s, rng) for _ in range(20000))
    assert stats.chisquare([counts[a] for a in ARMS], [20000 * probs[a] for a in ARMS]).pvalue > 0.001


@pytest.mark.parametrize("policy", ["thompson_beta", "thompson_gaussian", "ucb1"])
def test_policies_concentrate_on_the_best_arm(policy: str) -> None:
    means = [0.3, 0.45, 0.6]
    r = simulate(bandits.new_state(policy, ARMS, floor=0.01), means, rounds=4000, seed=12)
    uniform = simulate("uniform", means, rounds=4000, seed=12)
    share = r.pulls["v3"] / r.rounds
    assert share >= (0.8 if policy.startswith("thompson") else 0.6), r.pulls
    assert r.regret < 0.35 * uniform.regret
    # the tail of the run is mostly on the best arm
    chosen_late = np.diff(r.cumulative_regret[-1000:]) == 0
    assert chosen_late.mean() >= 0.85


def test_simulation_regret_is_the_gap_sum_and_uniform_is_linear() -> None:
    means = [0.1, 0.2, 0.4]
    u = simulate("uniform", means, rounds=30000, seed=1)
    expected = 30000 * (0.4 - np.mean(means))
    assert u.regret == pytest.approx(expected, rel=0.03)
    assert np.all(np.diff(u.cumulative_regret) >= 0)
    shared = reward_matrix(means, 500, seed=5)
    a = simulate(bandits.new_state("thompson_beta", ARMS), means, 500, seed=5, rewards=shared)
    b = simulate(bandits.new_state("thompson_beta", ARMS), means, 500, seed=5)
    assert a.regret == b.regret and a.pulls == b.pulls  # same seed, same reward stream
    g = simulate(bandits.new_state("thompson_gaussian", ARMS, prior_scale=4.0), [1.0, 2.0, 3.0], 2000, seed=3,
                 reward="gaussian", reward_sd=2.0)
    assert g.pulls["v3"] > 1200


@pytest.mark.parametrize("call,field", [
    (lambda: bandits.new_state("softmax", ARMS), "policy"),
    (lambda: bandits.new_state("ucb1", []), "arms"),
    (lambda: bandits.new_state("ucb1", ["a", "a"]), "arms[1]"),
    (lambda: bandits.new_state("ucb1", ARMS, floor=0.5), "floor"),
    (lambda: bandits.new_state("ucb1", ARMS, floor=-0.1), "floor"),
    (lambda: bandits.new_state("ucb1", ARMS, temperature=2), "params"),
    (lambda: bandits.new_state("epsilon_greedy", ARMS, epsilon=1.5), "epsilon"),
    (lambda: bandits.new_state("thompson_beta", ARMS, prior_alpha=0), "prior_alpha"),
    (lambda: bandits.new_state("thompson_gaussian", ARMS, prior_scale=-1), "prior_scale"),
    (lambda: bandits.update(bandits.new_state("ucb1", ARMS), "v9", 1.0), "arm"),
    (lambda: bandits.update(bandits.new_state("ucb1", ARMS), "v1", 1.5), "reward"),
    (lambda: bandits.update(bandits.new_state("thompson_beta", ARMS), "v1", -0.1), "reward"),
    (lambda: bandits.update(bandits.new_state("thompson_gaussian", ARMS), "v1", float("nan")), "reward"),
    (lambda: bandits.update(bandits.new_state("epsilon_greedy", ARMS), "v1", "1"), "reward"),
    (lambda: bandits.choose({"policy": "ucb1", "version": -1, "arms": {}, "params": {}},
                            np.random.default_rng(0)), "state.version"),
    (lambda: bandits.choose({**bandits.new_state("ucb1", ARMS), "arms": {"v1": {"n": 1}}},
                            np.random.default_rng(0)), "state.arms.v1.mean"),
    (lambda: bandits.choose({"version": 0}, np.random.default_rng(0)), "state.policy"),
    (lambda: thompson.probabilities(bandits.new_state("thompson_beta", ARMS), draws=0), "draws"),
    (lambda: simulate(bandits.new_state("ucb1", ARMS), [0.1, 0.2], 10), "arm_means"),
    (lambda: simulate("uniform", [0.1, 1.2], 10), "arm_means"),
    (lambda: simulate("uniform", [0.1, 0.2], 0), "rounds"),
])
def test_bad_input_names_the_field(call, field: str) -> None:
    with pytest.raises(ExperimentError) as info:
        call()
    assert info.value.field == field
