"""Outcomes: the per-prediction numbers an experiment on a model compares, computed when the
ground truth arrives through ``POST /feedback``.

A model experiment's metrics (primary and guardrails) must each name one of these, with the
matching kind, because these are the only outcomes the platform records by itself:

* ``correct`` (proportion, higher is better) - the predicted label equals the true label;
* ``label`` (proportion) - the true label itself (the positive rate; the model cannot change
  it, so it is a guardrail that catches a biased split or a broken feedback path);
* ``brier`` (mean, lower is better) - ``(probability - label)^2``;
* ``log_loss`` (mean, lower is better) - ``-(y log p + (1 - y) log(1 - p))``, ``p`` clipped to
  ``[1e-15, 1 - 1e-15]`` as scikit-learn does.

The bandit reward is the primary metric's outcome, turned so that larger is better
(:func:`reward`): ``1 - x`` for a proportion that should decrease, ``-x`` for such a mean.
Pure: the standard library only.

>>> values({"correct": "proportion", "brier": "mean"}, probability=0.8, predicted_label=1, label=1)
{'correct': 1.0, 'brier': 0.03999999999999998}
"""

from __future__ import annotations

import math
from collections.abc import Mapping

OUTCOMES: dict[str, str] = {"correct": "proportion", "label": "proportion", "brier": "mean", "log_loss": "mean"}
_EPS = 1e-15


def problem(name: str, kind: str) -> str | None:
    """Why a metric ``name`` of ``kind`` cannot be recorded from feedback, or None."""
    if name not in OUTCOMES:
        return (f"a model experiment's metrics are outcomes recorded from feedback: one of "
                f"{', '.join(OUTCOMES)}; got {name!r}")
    if OUTCOMES[name] != kind:
        return f"{name!r} is a {OUTCOMES[name]} metric, got kind {kind!r}"
    return None


def outcome(name: str, probability: float, predicted_label: int, label: int) -> float:
    """The value of outcome ``name`` for one prediction and its true label."""
    y = float(label)
    if name == "correct":
        return float(int(predicted_label) == int(label))
    if name == "label":
        return y
    if name == "brier":
        return (float(probability) - y) ** 2
    if name == "log_loss":
        p = min(max(float(probability), _EPS), 1.0 - _EPS)
        return -(y * math.log(p) + (1.0 - y) * math.log(1.0 - p))
    raise ValueError(f"unknown outcome {name!r}; outcomes are {list(OUTCOMES)}")


def values(metrics: Mapping[str, str], *, probability: float, predicted_label: int, label: int) -> dict[str, float]:
    """``{metric name: value}`` for each metric (name -> kind) of an experiment."""
    return {name: outcome(name, probability, predicted_label, label) for name in metrics}


def reward(value: float, kind: str, direction: str) -> float:
    """The bandit reward of a primary-metric value: larger is better."""
    if direction == "increase":
        return value
    return 1.0 - value if kind == "proportion" else -value
