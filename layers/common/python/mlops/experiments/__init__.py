"""Experimentation: A/B and A/A tests, sample size, multiple testing, sequential analysis,
bandits and difference-in-differences - the pure logic behind ``/experiments``.

Nothing here touches AWS. The experiment store (DynamoDB), the API routes and the bandit
state's conditional writes call these functions with plain values. numpy and the standard
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
* :mod:`~.normal` - the normal distribution without scipy; :mod:`~.errors` - error types.
"""

from mlops.experiments.analysis import analyze
from mlops.experiments.assignment import Assigner, assign, hash_unit
from mlops.experiments.definition import ExperimentDefinition, Metric, Variant
from mlops.experiments.errors import ExperimentError, InsufficientData
from mlops.experiments.power import duration, plan, sample_size_means, sample_size_proportions

__all__ = [
    "Assigner", "ExperimentDefinition", "ExperimentError", "InsufficientData", "Metric", "Variant", "analyze",
    "assign", "duration", "hash_unit", "plan", "sample_size_means", "sample_size_proportions",
]
