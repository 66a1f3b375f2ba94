"""Experimentation: A/B and A/A tests, sample size, multiple testing, sequential analysis,
bandits and difference-in-differences - the pure logic behind ``/experiments``.

Everything but :mod:`~.store` is pure (no AWS): the store (DynamoDB: definitions, bandit
states with conditional writes, outcome totals) and the API routes call it with plain values. numpy and the standard
library are enough everywhere except the t distribution of Welch's test and of DiD, which
come from ``scipy.special`` on the analysis path (see :mod:`~.welch`).

* :mod:`~.definition` - experiment definitions, validated, errors naming the field;
* :mod:`~.assignment` - deterministic, uniform, salt-independent hashing of entities;
* :mod:`~.power` - sample size and power (means, proportions), duration, the plan;
* :mod:`~.summary` - per-variant totals (n, sum, sum of squares) -> test inputs;
* :mod:`~.welch` - Welch's t-test, interval, lift;
* :mod:`~.proportions` - the two-proportion z-test, Newcomb / Wald intervals, lift;
* :mod:`~.correction` - Bonferroni and Holm;
* :mod:`~.srm` - the sample-ratio-mismatch check that blocks conclusions;
* :mod:`~.sequential` - the always-valid normal-mixture confidence sequence;
* :mod:`~.aa` - A/A experiments, replays and the peeking simulation;
* :mod:`~.analysis` - the analysis result of ``GET /experiments/{id}/analysis``;
* :mod:`~.did` - difference-in-differences for rollouts that cannot be randomised;
* :mod:`~.bandits` - epsilon-greedy, UCB1, Thompson sampling, and regret simulation;
* :mod:`~.normal` - the normal distribution without scipy; :mod:`~.errors` - error types;
* :mod:`~.outcomes` - the per-prediction outcomes recorded from feedback, and the bandit reward;
* :mod:`~.router` - the variant of each prediction request (sticky hash or bandit);
* :mod:`~.store` - experiments, bandit states and outcome totals in DynamoDB;
* :mod:`~.report` - the bodies of ``GET /experiments/{id}`` and ``.../analysis``.
"""

from importlib import import_module
from typing import Any

# Names re-exported here, imported on first use: the inference function imports
# ``mlops.experiments.router`` and ``.store`` only, and should not pay for the analysis modules.
_EXPORTS = {
    "analyze": "analysis", "Assigner": "assignment", "assign": "assignment", "hash_unit": "assignment",
    "ExperimentDefinition": "definition", "Metric": "definition", "Variant": "definition",
    "ExperimentError": "errors", "InsufficientData": "errors", "duration": "power", "plan": "power",
    "sample_size_means": "power", "sample_size_proportions": "power",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f"mlops.experiments.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'mlops.experiments' has no attribute {name!r}")
