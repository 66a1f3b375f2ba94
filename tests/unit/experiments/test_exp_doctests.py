"""The examples in the experimentation modules' docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["definition", "assignment", "power", "summary", "welch", "proportions", "correction", "srm",
           "sequential", "did", "normal", "bandits", "bandits.epsilon_greedy", "bandits.ucb1", "bandits.thompson",
           "bandits.simulate", "outcomes", "router"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(f"mlops.experiments.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0


def test_serving_path_does_not_import_scipy() -> None:
    """Assignment, power, SRM, sequential and bandits run in the serving layer (numpy only)."""
    import subprocess
    import sys
    from pathlib import Path

    layer = Path(__file__).resolve().parents[3] / "layers" / "common" / "python"
    code = ("import sys, numpy as np\n"
            "import mlops.experiments.analysis, mlops.experiments.aa, mlops.experiments.did\n"
            "import mlops.experiments.router, mlops.experiments.store, mlops.experiments.report\n"
            "from mlops.experiments import bandits, assignment, power, srm, sequential, proportions\n"
            "s = bandits.new_state('thompson_gaussian', ['a', 'b'])\n"
            "bandits.update(s, bandits.choose(s, np.random.default_rng(0)), 1.0)\n"
            "assignment.Assigner('x', {'a': 1, 'b': 1}).assign('e')\n"
            "power.sample_size_proportions(0.1, 0.12)\n"
            "srm.check({'a': 10, 'b': 12}, {'a': 1, 'b': 1})\n"
            "proportions.two_proportion_ztest(proportions.ProportionStats(10, 3), proportions.ProportionStats(10, 5))\n"
            "sequential.confidence_sequence(0.1, 0.05, 0.5)\n"
            "print(any(m == 'scipy' or m.startswith('scipy.') for m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(layer)}, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "False"
