"""Fairness audit of a binary classifier per declared sensitive (or slice) attribute, and its gate.

For each attribute (fab site, tester, product line ...) and each of its groups: rows,
positives, predicted positives ("selected": score >= threshold), the selection rate, the true
positive rate and the false positive rate. Across the groups, with fairlearn's definitions
(``method="between_groups"``, ``agg="worst_case"``):

- demographic parity difference = max - min group selection rate; ratio = min / max
  (fairlearn `demographic_parity_difference` / `demographic_parity_ratio`);
- equalized odds difference = max(TPR difference, FPR difference); ratio = min(TPR ratio,
  FPR ratio) (fairlearn `equalized_odds_difference` / `equalized_odds_ratio`);
- disparate impact = each group's selection rate over the highest one; the four-fifths (80%)
  rule passes when the lowest is at least 0.8 (it equals the demographic parity ratio).

Where fairlearn and this module differ, on purpose: a rate with no rows to stand on (TPR of a
group without positives, FPR of a group without negatives) is None here and the group is left
out of that rate's comparison (fairlearn counts it as 0, which reports a disparity that is an
artifact of the data); a ratio whose largest rate is 0 (0 / 0: every group at 0) is None here
(fairlearn: NaN). Both are listed under ``undefined``. On data where every group has both
classes and some selections, the numbers are fairlearn's; the tests check it to 1e-12.

`fairness_gate(summary, policy)` turns a summary into a decision for the retraining gate:
passed, and the reasons it did not. Pure: numpy and plain values only.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from mlops.models.evaluation import _labels, _scores, _slice_key

SCHEMA = "mlops.fairness/1"
#: The four-fifths rule of the US Uniform Guidelines on Employee Selection Procedures.
FOUR_FIFTHS = 0.8


@dataclass(frozen=True)
class GroupRates:
    """Counts and rates of one group; a rate is None when its denominator is 0."""

    value: str
    n: int
    positives: int
    selected: int
    true_positives: int
    false_positives: int

    @property
    def selection_rate(self) -> float:
        return self.selected / self.n

    @property
    def tpr(self) -> float | None:
        return self.true_positives / self.positives if self.positives else None

    @property
    def fpr(self) -> float | None:
        negatives = self.n - self.positives
        return self.false_positives / negatives if negatives else None

    def to_dict(self, highest_selection: float) -> dict[str, Any]:
        return {
            "value": self.value, "n": self.n, "positives": self.positives, "selected": self.selected,
            "true_positives": self.true_positives, "false_positives": self.false_positives,
            "selection_rate": self.selection_rate, "tpr": self.tpr, "fpr": self.fpr,
            "disparate_impact": self.selection_rate / highest_selection if highest_selection > 0 else None,
        }


def _predictions(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = _labels(y_true)
    pred = _labels(y_pred)
    if pred.shape != y.shape:
        raise ValueError(f"y_pred has shape {pred.shape}, y_true {y.shape}")
    return y, pred


def group_rates(y_true: ArrayLike, y_pred: ArrayLike, groups: Sequence[Hashable] | np.ndarray) -> list[GroupRates]:
    """Per group (sorted by its string value; None/NaN become "<missing>"), the counts behind
    the selection rate, TPR and FPR of 0/1 predictions."""
    y, pred = _predictions(y_true, y_pred)
    values = list(groups)
    if len(values) != y.shape[0]:
        raise ValueError(f"the sensitive attribute has {len(values)} rows, labels have {y.shape[0]}")
    if y.shape[0] == 0:
        raise ValueError("a fairness audit needs at least one row")
    keys = np.array([_slice_key(v) for v in values], dtype=object)
    out = []
    for key in sorted(set(keys.tolist())):
        mask = keys == key
        yk, pk = y[mask], pred[mask]
        out.append(GroupRates(key, int(mask.sum()), int(yk.sum()), int(pk.sum()),
                              int(np.sum((pk == 1) & (yk == 1))), int(np.sum((pk == 1) & (yk == 0)))))
    return out


def _spread(rates: Sequence[float | None]) -> tuple[float | None, float | None]:
    """(max - min, min / max) over the defined rates; the ratio is None when max is 0."""
    defined = [r for r in rates if r is not None]
    if not defined:
        return None, None
    hi, lo = max(defined), min(defined)
    return hi - lo, (lo / hi if hi > 0 else None)


def _worst(values: Sequence[float | None], pick: Any) -> float | None:
    defined = [v for v in values if v is not None]
    return pick(defined) if defined else None


def disparities(groups: Sequence[GroupRates]) -> dict[str, Any]:
    """The between-group metrics of `groups`, and which are undefined and why."""
    dp_diff, dp_ratio = _spread([g.selection_rate for g in groups])
    tpr_diff, tpr_ratio = _spread([g.tpr for g in groups])
    fpr_diff, fpr_ratio = _spread([g.fpr for g in groups])
    undefined: dict[str, str] = {}
    no_pos = [g.value for g in groups if g.tpr is None]
    no_neg = [g.value for g in groups if g.fpr is None]
    if no_pos:
        undefined["tpr"] = f"groups without positives (left out of the TPR comparison): {', '.join(no_pos)}"
    if no_neg:
        undefined["fpr"] = f"groups without negatives (left out of the FPR comparison): {', '.join(no_neg)}"
    if dp_ratio is None:
        undefined["demographic_parity_ratio"] = "no group has a predicted positive (0 / 0)"
    if tpr_ratio is None and tpr_diff is not None:
        undefined["tpr_ratio"] = "every group's TPR is 0 (0 / 0)"
    if fpr_ratio is None and fpr_diff is not None:
        undefined["fpr_ratio"] = "every group's FPR is 0 (0 / 0)"
    if len(groups) < 2:
        undefined["groups"] = "a single group: nothing to compare"
    return {
        "demographic_parity_difference": dp_diff,
        "demographic_parity_ratio": dp_ratio,
        "equalized_odds_difference": _worst([tpr_diff, fpr_diff], max),
        "equalized_odds_ratio": _worst([tpr_ratio, fpr_ratio], min),
        "tpr_difference": tpr_diff, "fpr_difference": fpr_diff,
        "undefined": undefined,
    }


# -- fairlearn-named functions (between groups, worst case) ----------------------------------
def demographic_parity_difference(y_true: ArrayLike, y_pred: ArrayLike, *, sensitive_features: Any) -> float | None:
    """max - min selection rate over the groups (fairlearn's definition)."""
    return disparities(group_rates(y_true, y_pred, sensitive_features))["demographic_parity_difference"]


def demographic_parity_ratio(y_true: ArrayLike, y_pred: ArrayLike, *, sensitive_features: Any) -> float | None:
    """min / max selection rate over the groups (fairlearn's definition)."""
    return disparities(group_rates(y_true, y_pred, sensitive_features))["demographic_parity_ratio"]


def equalized_odds_difference(y_true: ArrayLike, y_pred: ArrayLike, *, sensitive_features: Any) -> float | None:
    """The larger of the TPR and FPR differences between groups (fairlearn's worst case)."""
    return disparities(group_rates(y_true, y_pred, sensitive_features))["equalized_odds_difference"]


def equalized_odds_ratio(y_true: ArrayLike, y_pred: ArrayLike, *, sensitive_features: Any) -> float | None:
    """The smaller of the TPR and FPR min/max ratios between groups (fairlearn's worst case)."""
    return disparities(group_rates(y_true, y_pred, sensitive_features))["equalized_odds_ratio"]


def attribute_fairness(y_true: ArrayLike, y_pred: ArrayLike, groups: Sequence[Hashable] | np.ndarray,
                       *, di_threshold: float = FOUR_FIFTHS) -> dict[str, Any]:
    """The audit of one attribute: groups with their counts and rates, the between-group
    metrics and the disparate-impact verdict."""
    rates = group_rates(y_true, y_pred, groups)
    metrics = disparities(rates)
    highest = max(g.selection_rate for g in rates)
    ratio = metrics["demographic_parity_ratio"]
    low = min(rates, key=lambda g: (g.selection_rate, g.value))
    high = max(rates, key=lambda g: (g.selection_rate, g.value))
    return {
        "groups": [g.to_dict(highest) for g in rates],
        **metrics,
        "disparate_impact": {
            "ratio": ratio, "threshold": di_threshold,
            "passed": None if ratio is None else bool(ratio >= di_threshold),
            "lowest_group": low.value, "highest_group": high.value,
        },
    }


def fairness_summary(y_true: ArrayLike, scores: ArrayLike, threshold: float,
                     sensitive: Mapping[str, Sequence[Hashable] | np.ndarray]) -> dict[str, Any]:
    """The fairness audit of scores at `threshold` (``score >= threshold`` is a predicted
    positive) for every sensitive attribute (column name -> value per row)."""
    y = _labels(y_true)
    p = _scores(scores, y.shape[0])
    pred = (p >= threshold).astype(np.int64)
    return {
        "schema": SCHEMA,
        "threshold": float(threshold),
        "selection": "predicted positive (score >= threshold)",
        "rows": int(y.shape[0]),
        "attributes": {column: attribute_fairness(y, pred, values) for column, values in sorted(sensitive.items())},
    }


# -- the gate ------------------------------------------------------------------------------
@dataclass(frozen=True)
class FairnessPolicy:
    """What the gate requires of every attribute; None switches a check off.

    Groups with fewer than `min_group_rows` rows are left out of the gate's comparisons (their
    rates are noise), and named in the notes.
    """

    max_demographic_parity_difference: float | None = None
    min_disparate_impact_ratio: float | None = FOUR_FIFTHS
    max_equalized_odds_difference: float | None = None
    min_group_rows: int = 30

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "FairnessPolicy":
        return cls(**dict(data or {}))


@dataclass(frozen=True)
class FairnessGateResult:
    """The gate's decision: passed, the reasons it failed, and notes (skipped groups/checks)."""

    passed: bool
    reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "reasons": list(self.reasons), "notes": list(self.notes)}


def _rates_of(entry: Mapping[str, Any]) -> GroupRates:
    """A summary's group entry back as counts."""
    return GroupRates(str(entry["value"]), int(entry["n"]), int(entry["positives"]), int(entry["selected"]),
                      int(entry["true_positives"]), int(entry["false_positives"]))


def fairness_gate(summary: Mapping[str, Any], policy: FairnessPolicy | Mapping[str, Any] | None = None
                  ) -> FairnessGateResult:
    """Check a `fairness_summary` against `policy` (default: the four-fifths rule on every
    attribute, groups of at least 30 rows)."""
    if not isinstance(policy, FairnessPolicy):
        policy = FairnessPolicy.from_dict(policy)
    reasons: list[str] = []
    notes: list[str] = []
    for column, audit in sorted((summary.get("attributes") or {}).items()):
        groups = [_rates_of(g) for g in audit["groups"]]
        small = [g.value for g in groups if g.n < policy.min_group_rows]
        kept = [g for g in groups if g.n >= policy.min_group_rows]
        if small:
            notes.append(f"{column}: groups with fewer than {policy.min_group_rows} rows not gated: {', '.join(small)}")
        if len(kept) < 2:
            notes.append(f"{column}: fewer than two groups to compare")
            continue
        m = disparities(kept)
        checks = (
            ("demographic parity difference", m["demographic_parity_difference"],
             policy.max_demographic_parity_difference, "max"),
            ("disparate impact ratio", m["demographic_parity_ratio"], policy.min_disparate_impact_ratio, "min"),
            ("equalized odds difference", m["equalized_odds_difference"], policy.max_equalized_odds_difference, "max"),
        )
        for name, value, limit, kind in checks:
            if limit is None:
                continue
            if value is None:
                notes.append(f"{column}: {name} undefined, not gated")
            elif (kind == "max" and value > limit) or (kind == "min" and value < limit):
                word = "above the maximum" if kind == "max" else "below the minimum"
                reasons.append(f"{column}: {name} {value:.4f} {word} {limit:g}")
    return FairnessGateResult(not reasons, tuple(reasons), tuple(notes))
