"""Benchmark: bandit regret over 100k rounds on known Bernoulli arms, and decisions per second.

Issue 9's simulation benchmark. Four model variants whose rewards (a correct prediction) are
Bernoulli with means 0.50, 0.52, 0.55 and 0.60. Each policy - epsilon-greedy (epsilon 0.1),
UCB1, Thompson sampling Beta-Bernoulli and Gaussian - runs 100,000 rounds through the real
``mlops.experiments.bandits.choose``/``update`` (one decision, then its reward, per round) with
the default exploration floor of 1% per arm; Thompson Beta-Bernoulli also runs without the floor,
to price the floor. Regret is the pseudo-regret against the oracle (always the 0.60 arm):
``sum(0.60 - mean of the chosen arm)``. Every policy and the peer - uniform random allocation,
i.e. a fixed 25/25/25/25 A/B/n split - see the same reward stream per seed (common random
numbers); the figure is the mean over ``--seeds`` seeds (3), the spread is in the notes with
the regret at 1k and 10k rounds, which shows the growth is sub-linear.

Decisions per second: ``choose`` on each policy's state after its 100k rounds (a settled
state, 4 arms), timed over 20,000 calls in this process, best of 3; the peer is a uniform draw
with the same numpy Generator (``rng.integers``), the cheapest possible decision.

Writes ``benchmarks/results/bandits.json``; ``--quick`` runs 10k rounds and 1 seed and prints
without writing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "layers" / "common" / "python"))

from mlops.experiments import bandits  # noqa: E402
from mlops.experiments.bandits.simulate import reward_matrix, simulate  # noqa: E402

RESULTS = HERE / "results" / "bandits.json"
MEANS = [0.50, 0.52, 0.55, 0.60]
ARMS = ["v1", "v2", "v3", "v4"]
POLICIES = [
    ("Thompson sampling, Beta-Bernoulli", "thompson_beta", {}),
    ("Thompson sampling, Gaussian (NIG)", "thompson_gaussian", {}),
    ("UCB1", "ucb1", {}),
    ("epsilon-greedy, epsilon 0.1", "epsilon_greedy", {"epsilon": 0.1}),
    ("Thompson sampling, Beta-Bernoulli, no floor", "thompson_beta", {"floor": 0.0}),
]
CHECKPOINTS = (1_000, 10_000, 100_000)


def decisions_per_second(state: dict | None, calls: int = 20_000, repeat: int = 3) -> float:
    """Best-of-``repeat`` rate of ``choose`` (or a uniform numpy draw when ``state`` is None)."""
    best = 0.0
    for r in range(repeat):
        rng = np.random.default_rng(r)
        if state is None:
            t0 = time.perf_counter()
            for _ in range(calls):
                ARMS[int(rng.integers(len(ARMS)))]
        else:
            choose = bandits.choose
            t0 = time.perf_counter()
            for _ in range(calls):
                choose(state, rng)
        best = max(best, calls / (time.perf_counter() - t0))
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100_000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="10k rounds, 1 seed, print only")
    args = parser.parse_args()
    rounds, seeds = (10_000, 1) if args.quick else (args.rounds, args.seeds)

    uniform: list[float] = []
    uniform_checkpoints: list[list[float]] = []
    streams = {}
    for seed in range(seeds):
        streams[seed] = reward_matrix(MEANS, rounds, seed)
        u = simulate("uniform", MEANS, rounds, seed, rewards=streams[seed])
        uniform.append(u.regret)
        uniform_checkpoints.append([float(u.cumulative_regret[c - 1]) for c in CHECKPOINTS if c <= rounds])
    peer = float(np.mean(uniform))
    rows, notes = [], []
    settled: dict[str, dict] = {}
    for title, policy, params in POLICIES:
        regrets, checkpoints, seconds, best_share = [], [], [], []
        for seed in range(seeds):
            state = bandits.new_state(policy, ARMS, **params)
            t0 = time.perf_counter()
            r = simulate(state, MEANS, rounds, seed, rewards=streams[seed])
            seconds.append(time.perf_counter() - t0)
            regrets.append(r.regret)
            checkpoints.append([float(r.cumulative_regret[c - 1]) for c in CHECKPOINTS if c <= rounds])
            best_share.append(r.pulls["v4"] / rounds)
            settled.setdefault(title, r.final_state)
        value = float(np.mean(regrets))
        floor = params.get("floor", 0.01)
        rows.append({
            "figure": f"Cumulative regret after {rounds:,} rounds, {title}",
            "value": round(value, 1),
            "unit": "reward",
            "how": (f"4 Bernoulli arms {MEANS}, oracle 0.60; real choose/update per round, floor {floor:g} per arm; "
                    f"mean of {seeds} seeds, same reward stream as the peer"),
            "peer": "uniform random allocation (fixed 1/4 split)",
            "peer_value": round(peer, 1),
            "ratio": round(value / peer, 4),
            "target": "< uniform, sub-linear growth",
        })
        at = ", ".join(f"{c:,}: {np.mean([x[i] for x in checkpoints]):.1f}"
                       for i, c in enumerate(CHECKPOINTS) if c <= rounds)
        notes.append(f"{title}: regret per seed {[round(x, 1) for x in regrets]}; mean regret at {at}; "
                     f"share of rounds on the best arm {np.mean(best_share):.3f}; "
                     f"simulation {np.mean(seconds):.1f} s per {rounds:,} rounds.")
        print(rows[-1]["figure"], rows[-1]["value"], "vs uniform", rows[-1]["peer_value"], flush=True)
    at = ", ".join(f"{c:,}: {np.mean([x[i] for x in uniform_checkpoints]):.1f}"
                   for i, c in enumerate(CHECKPOINTS) if c <= rounds)
    notes.append(f"Uniform allocation: regret per seed {[round(x, 1) for x in uniform]} (expected "
                 f"{rounds * (max(MEANS) - np.mean(MEANS)):.1f}); at {at}.")
    notes.append("The 1% floor keeps every arm at >= 1% of traffic, which costs about "
                 f"{rounds * 0.04 * (max(MEANS) - np.mean(MEANS)):.0f} regret over {rounds:,} rounds by itself "
                 "(4% uniform traffic); compare the no-floor Thompson row.")

    peer_rate = decisions_per_second(None)
    for title, policy, params in POLICIES[:4]:
        rate = decisions_per_second(settled[title])
        rows.append({
            "figure": f"Decisions per second, {title}",
            "value": round(rate),
            "unit": "decisions/s",
            "how": "choose() on the state after the 100k-round run (4 arms), 20k calls, best of 3, one process",
            "peer": "uniform draw with the same numpy Generator",
            "peer_value": round(peer_rate),
            "ratio": round(rate / peer_rate, 4),
            "target": ">= 10,000/s (well inside the 50 ms p95 prediction budget)",
        })
        print(rows[-1]["figure"], rows[-1]["value"], flush=True)

    machine = (f"{len(os.sched_getaffinity(0))} cpus (nproc), {platform.machine()}, "
               f"Python {platform.python_version()}, numpy {np.__version__}")
    result = {
        "name": "bandits",
        "title": "Bandits",
        "machine": machine,
        "measured_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python benchmarks/bench_bandits.py",
        "rows": rows,
        "notes": notes,
    }
    if args.quick:
        print(json.dumps(result, indent=2))
        return 0
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
