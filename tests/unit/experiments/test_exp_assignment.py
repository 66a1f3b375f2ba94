"""Assignment: stable, uniform at the configured allocation, independent across experiments."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from mlops.experiments.assignment import Assigner, assign, hash_unit
from mlops.experiments.definition import ExperimentDefinition
from mlops.experiments.errors import ExperimentError

IDS = [f"D{i:07d}" for i in range(60_000)]
LAYER = Path(__file__).resolve().parents[3] / "layers" / "common" / "python"


def test_stable_across_calls_and_instances() -> None:
    a = Assigner("exp-1", {"control": 1, "treatment": 1})
    first = a.assign_many(IDS[:2000])
    assert a.assign_many(IDS[:2000]) == first
    assert Assigner("exp-1", {"control": 1, "treatment": 1}).assign_many(IDS[:2000]) == first


def test_stable_across_processes_with_different_hash_seeds() -> None:
    """sha256, not hash(): a fresh interpreter with another PYTHONHASHSEED agrees."""
    code = ("import sys; from mlops.experiments.assignment import Assigner; "
            "a = Assigner('exp-1', {'control': 1, 'treatment': 1}); "
            "print(','.join(str(a.assign(f'D{i:07d}')) for i in range(500)))")
    here = ",".join(str(v) for v in Assigner("exp-1", {"control": 1, "treatment": 1}).assign_many(IDS[:500]))
    for seed in ("1", "987654"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(LAYER)}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == here


def test_hash_values_are_pinned() -> None:
    """Changing the hash (or its input format) would reshuffle every running experiment."""
    assert hash_unit("exp-1", "D0000001") == 0.5065780056535085
    a = Assigner("exp-1", {"control": 1, "treatment": 1})
    assert a.assign_many(IDS[:8]) == ["control", "treatment", "control", "treatment",
                                      "control", "control", "control", "treatment"]


@pytest.mark.parametrize("allocation", [{"a": 0.5, "b": 0.5}, {"a": 0.2, "b": 0.3, "c": 0.5},
                                        {"control": 90, "treatment": 10}])
def test_uniform_at_the_configured_allocation(allocation: dict[str, float]) -> None:
    a = Assigner("exp-uniform", allocation)
    counts = Counter(a.assign_many(IDS))
    names = list(allocation)
    observed = np.array([counts[n] for n in names])
    shares = np.array([allocation[n] for n in names], dtype=float)
    expected = len(IDS) * shares / shares.sum()
    assert observed.sum() == len(IDS)
    p = stats.chisquare(observed, expected).pvalue
    assert p > 0.001, (observed, expected, p)
    # the same chi-square does catch a wrong allocation: these counts are not 1/k each
    if len(set(shares)) > 1:
        assert stats.chisquare(observed, np.full(len(names), len(IDS) / len(names))).pvalue < 1e-12


def test_hash_positions_are_uniform_over_the_unit_interval() -> None:
    u = np.array([hash_unit("exp-u", e) for e in IDS[:20000]])
    assert stats.kstest(u, "uniform").pvalue > 0.001
    observed = np.histogram(u, bins=50, range=(0, 1))[0]
    assert stats.chisquare(observed).pvalue > 0.001


def test_independent_across_experiments() -> None:
    first = Assigner("exp-A", {"a": 1, "b": 1, "c": 1}).assign_many(IDS)
    second = Assigner("exp-B", {"x": 0.3, "y": 0.7}).assign_many(IDS)
    table = np.zeros((3, 2))
    for f, s in zip(first, second):
        table["abc".index(f), "xy".index(s)] += 1
    assert stats.chi2_contingency(table).pvalue > 0.001
    # and the test detects dependence: the same salt makes the joint table degenerate
    again = Assigner("exp-A", {"x": 1, "y": 1, "z": 1}).assign_many(IDS)
    same = np.zeros((3, 3))
    for f, s in zip(first, again):
        same["abc".index(f), "xyz".index(s)] += 1
    assert stats.chi2_contingency(same).pvalue < 1e-12


def test_partial_traffic_enrolls_the_share_and_ramping_up_keeps_variants() -> None:
    low = Assigner("exp-ramp", {"a": 1, "b": 3}, traffic=0.2).assign_many(IDS)
    high = Assigner("exp-ramp", {"a": 1, "b": 3}, traffic=0.6).assign_many(IDS)
    full = Assigner("exp-ramp", {"a": 1, "b": 3}, traffic=1.0).assign_many(IDS)
    enrolled = sum(v is not None for v in low) / len(IDS)
    assert enrolled == pytest.approx(0.2, abs=0.01)
    for lo, hi, fu in zip(low, high, full):
        if lo is not None:
            assert hi == lo and fu == lo
        if hi is not None:
            assert fu == hi
    counts = Counter(v for v in low if v is not None)
    assert counts["b"] / (counts["a"] + counts["b"]) == pytest.approx(0.75, abs=0.02)


def test_full_traffic_always_assigns_even_at_range_edges() -> None:
    a = Assigner("s", {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})
    for u in [0.0, 1 / 3, 2 / 3, np.nextafter(1 / 3, 0), np.nextafter(1.0, 0)]:
        assert a.assign_unit(float(u)) is not None


def test_definition_helper_uses_salt_allocation_and_traffic() -> None:
    d = ExperimentDefinition.from_dict({
        "experiment_id": "exp-9", "salt": "pepper", "traffic": 0.5,
        "variants": [{"name": "c", "weight": 1}, {"name": "t", "weight": 1}],
        "primary_metric": {"name": "m", "baseline": 0.5}, "mde": 0.1})
    reference = Assigner("pepper", {"c": 0.5, "t": 0.5}, traffic=0.5)
    assert [assign(d, e) for e in IDS[:300]] == reference.assign_many(IDS[:300])


@pytest.mark.parametrize("kwargs,field", [
    ({"salt": "", "allocation": {"a": 1}}, "salt"),
    ({"salt": "s", "allocation": {"a": 1, "b": 0}}, "allocation.b"),
    ({"salt": "s", "allocation": {"a": -1, "b": 1}}, "allocation.a"),
    ({"salt": "s", "allocation": {"a": 1, "b": 1}, "traffic": 0}, "traffic"),
    ({"salt": "s", "allocation": {"a": 1, "b": 1}, "traffic": 1.01}, "traffic"),
])
def test_bad_input_names_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ExperimentError) as info:
        Assigner(**kwargs)
    assert info.value.field == field
