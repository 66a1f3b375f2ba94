"""Threshold policies: how a probability becomes a pass/fail label, declared per model.

A policy is data (`ThresholdPolicy`), chosen on validation predictions by `choose_threshold`
into a `ThresholdChoice` that records the threshold and what it achieves. Predicting positive
means `probability >= threshold`; candidate thresholds are the observed scores, so the
achieved precision and recall are exactly those on the data the choice was made on.

- max_f1: the threshold with the highest F1 (the highest such threshold on ties).
- target_recall r: the highest threshold whose recall is >= r (fewest alarms for that recall).
- target_precision p: among thresholds with precision >= p, the one with the highest recall
  (the highest such threshold on ties); unreachable -> ThresholdError.
- fixed t: t as given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from mlops.models.evaluation import confusion, rates_from_counts, ranking_counts

PolicyKind = Literal["max_f1", "target_recall", "target_precision", "fixed"]
KINDS: tuple[str, ...] = ("max_f1", "target_recall", "target_precision", "fixed")


class ThresholdError(ValueError):
    """A policy cannot be met on the data (no positives, or a precision never reached)."""


@dataclass(frozen=True)
class ThresholdPolicy:
    """A declared threshold policy: its kind and, except for max_f1, its target value."""

    kind: PolicyKind = "max_f1"
    value: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown threshold policy {self.kind!r}; one of {KINDS}")
        if self.kind == "max_f1":
            if self.value is not None:
                raise ValueError("max_f1 takes no value")
        elif self.value is None or not 0.0 <= float(self.value) <= 1.0:
            raise ValueError(f"{self.kind} needs a value in [0, 1], got {self.value!r}")
        if self.kind in ("target_recall", "target_precision") and float(self.value) == 0.0:  # type: ignore[arg-type]
            raise ValueError(f"{self.kind} of 0 is meaningless; give a target in (0, 1]")

    @classmethod
    def max_f1(cls) -> "ThresholdPolicy":
        """The threshold that maximises F1."""
        return cls("max_f1")

    @classmethod
    def target_recall(cls, recall: float) -> "ThresholdPolicy":
        """The highest threshold that still catches at least `recall` of the positives."""
        return cls("target_recall", float(recall))

    @classmethod
    def target_precision(cls, precision: float) -> "ThresholdPolicy":
        """The most sensitive threshold whose precision is at least `precision`."""
        return cls("target_precision", float(precision))

    @classmethod
    def fixed(cls, threshold: float) -> "ThresholdPolicy":
        """A threshold given by hand."""
        return cls("fixed", float(threshold))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"kind": self.kind, "value": self.value}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ThresholdPolicy":
        """Rebuild from `to_dict` output."""
        value = data.get("value")
        return cls(data["kind"], None if value is None else float(value))

    def describe(self) -> str:
        """One line for people (model card, logs)."""
        if self.kind == "max_f1":
            return "maximise F1 on the validation set"
        if self.kind == "target_recall":
            return f"highest threshold with recall >= {self.value:g} on the validation set"
        if self.kind == "target_precision":
            return f"highest-recall threshold with precision >= {self.value:g} on the validation set"
        return f"fixed threshold {self.value:g}"


@dataclass(frozen=True)
class ThresholdChoice:
    """A chosen threshold and what it achieves on the data it was chosen on."""

    policy: ThresholdPolicy
    threshold: float
    precision: float | None
    recall: float | None
    f1: float | None
    predicted_positive_rate: float
    n: int
    positives: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, with the policy and its description."""
        return {
            "policy": self.policy.to_dict(),
            "description": self.policy.describe(),
            "threshold": self.threshold,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "predicted_positive_rate": self.predicted_positive_rate,
            "n": self.n,
            "positives": self.positives,
        }


def _choice(policy: ThresholdPolicy, threshold: float, tp: int, fp: int, n: int, positives: int) -> ThresholdChoice:
    rates = rates_from_counts(tp, fp, n - positives - fp, positives - tp)
    return ThresholdChoice(
        policy=policy,
        threshold=float(threshold),
        precision=rates["precision"],
        recall=rates["recall"],
        f1=rates["f1"],
        predicted_positive_rate=(tp + fp) / n,
        n=n,
        positives=positives,
    )


def choose_threshold(y_true: ArrayLike, scores: ArrayLike, policy: ThresholdPolicy) -> ThresholdChoice:
    """Apply `policy` to labelled scores (usually validation probabilities).

    Raises ThresholdError when the data cannot support it: no positives (for any policy but
    fixed) or a target precision that no threshold reaches.
    """
    y = np.asarray(y_true)
    n = int(y.shape[0])
    if n == 0:
        raise ThresholdError("cannot choose a threshold on zero rows")
    if policy.kind == "fixed":
        c = confusion(y_true, scores, float(policy.value))  # type: ignore[arg-type]
        return _choice(policy, float(policy.value), c["tp"], c["fp"], n, c["tp"] + c["fn"])  # type: ignore[arg-type]
    thresholds, tps, fps = ranking_counts(y_true, scores)
    positives = int(tps[-1])
    if positives == 0:
        raise ThresholdError(f"policy {policy.kind} needs positives; the data has none")
    if policy.kind == "max_f1":
        f1 = 2 * tps / (tps + fps + positives)
        k = int(np.argmax(f1))
    elif policy.kind == "target_recall":
        recall = tps / positives
        # Recall only grows as the threshold falls; the first hit is the highest threshold.
        k = int(np.argmax(recall >= float(policy.value)))  # type: ignore[arg-type]
    else:
        precision = tps / (tps + fps)
        reached = precision >= float(policy.value)  # type: ignore[arg-type]
        if not reached.any():
            raise ThresholdError(
                f"no threshold reaches precision {policy.value:g}; the best is {precision.max():.4g}"
            )
        best_tp = tps[reached].max()
        k = int(np.argmax(reached & (tps == best_tp)))
    return _choice(policy, float(thresholds[k]), int(tps[k]), int(fps[k]), n, positives)
