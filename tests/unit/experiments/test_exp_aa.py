"""A/A tools: the replay keeps the false-positive rate at alpha and its p-values uniform."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mlops.experiments.aa import aa_definition, ks_uniform, replay
from mlops.experiments.errors import ExperimentError

IDS = [f"D{i:06d}" for i in range(2000)]


def test_replay_of_a_healthy_pipeline_is_uniform() -> None:
    values = np.random.default_rng(1).lognormal(3, 1, len(IDS))
    r = replay(IDS, values, splits=100, alpha=0.05)
    assert r.splits == 100
    assert r.false_positive_rate <= 0.12  # 5% expected; binomial(100, 0.05) rarely exceeds 12
    assert r.ks_p_value > 0.001
    assert (r.ks_statistic, r.ks_p_value) == pytest.approx(
        tuple(stats.kstest(r.p_values, "uniform", method="asymp")[:2]), rel=1e-10)


def test_replay_catches_a_broken_test() -> None:
    """Values that depend on the split (a pipeline bug) give non-uniform p-values."""
    from mlops.experiments.assignment import hash_unit
    values = np.array([10.0 + 5 * hash_unit("aa-replay-0", e) for e in IDS])  # leaks split 0's hash
    r = replay(IDS, values, splits=1)
    assert r.false_positive_rate == 1.0
    rates = np.random.default_rng(2).random(len(IDS)) < 0.3
    ok = replay(IDS, rates.astype(float), kind="proportion", splits=60)
    assert ok.ks_p_value > 0.001
    skewed_p = np.random.default_rng(3).random(200) ** 2  # too many small p-values
    assert ks_uniform(skewed_p)[1] < 1e-6


def test_aa_definition() -> None:
    d = aa_definition("aa-1", "model-7", {"name": "pass_rate", "baseline": 0.9}, alpha=0.01)
    assert d.mode == "aa" and {v.model_version for v in d.variants} == {"model-7"}
    assert d.alpha == 0.01 and d.allocation == {"a1": 0.5, "a2": 0.5}
    with pytest.raises(ExperimentError) as info:
        aa_definition("aa-1", "model-7", {"name": "pass_rate", "baseline": 0.9}, weights=[1, 0])
    assert info.value.field == "variants[1].weight"
    with pytest.raises(ExperimentError) as info:
        replay(IDS, np.zeros(3))
    assert info.value.field == "values"
    with pytest.raises(ExperimentError) as info:
        replay(IDS, np.zeros(len(IDS)), kind="median")
    assert info.value.field == "kind"
