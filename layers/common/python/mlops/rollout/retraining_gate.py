"""The retraining gate: may a freshly trained candidate become the challenger?

The candidate and the current champion are scored on the same holdout (the candidate's
time-based validation split), so their numbers compare like for like. The candidate passes
when every check passes:

============  =======================================================================
``auc``       candidate ROC AUC >= champion ROC AUC - ``auc_tolerance`` (0.01; a negative
              tolerance demands an improvement)
``slices``    no slice value (tester, fab site...) with at least ``min_slice_rows`` rows
              has an AUC (accuracy where AUC is undefined) worse than the champion's on
              the same rows by more than ``slice_margin`` (0.05)
``parity``    ONNX parity held: max |p_onnx - p_sklearn| <= its tolerance
``fairness``  the fairness check passed (when the candidate has a fairness summary and
              the policy asks for it)
============  =======================================================================

Without a champion (the first version) only parity and fairness apply. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class RetrainingGatePolicy:
    """Thresholds of the retraining gate."""

    auc_tolerance: float = 0.01
    slice_margin: float = 0.05
    min_slice_rows: int = 30
    require_fairness: bool = True

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> "RetrainingGatePolicy":
        """From JSON; ValueError names an unknown field."""
        values = dict(values or {})
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown retraining gate field")
        return cls(**values)


@dataclass(frozen=True)
class GateCheck:
    """One check: passed or not, and why."""

    name: str
    passed: bool
    detail: str
    values: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def _slice_score(entry: Mapping[str, Any]) -> tuple[str, float | None]:
    if entry.get("roc_auc") is not None:
        return "roc_auc", entry["roc_auc"]
    return "accuracy", entry.get("accuracy")


def _slices(candidate: Mapping[str, Sequence[Mapping[str, Any]]], champion: Mapping[str, Sequence[Mapping[str, Any]]],
            policy: RetrainingGatePolicy) -> GateCheck:
    worse = []
    compared = 0
    for column, entries in candidate.items():
        theirs = {e["value"]: e for e in champion.get(column, [])}
        for entry in entries:
            other = theirs.get(entry["value"])
            if other is None or entry.get("n", 0) < policy.min_slice_rows:
                continue
            metric, mine = _slice_score(entry)
            theirs_score = other.get(metric)
            if mine is None or theirs_score is None:
                continue
            compared += 1
            if mine < theirs_score - policy.slice_margin:
                worse.append({"slice": f"{column}={entry['value']}", "metric": metric, "candidate": mine,
                              "champion": theirs_score})
    detail = (f"{len(worse)} slice(s) worse by more than {policy.slice_margin}: "
              + ", ".join(w["slice"] for w in worse)) if worse else f"{compared} slice(s) compared, none worse"
    return GateCheck("slices", not worse, detail, {"worse": worse, "compared": compared})


def decide(candidate: Mapping[str, Any], champion: Mapping[str, Any] | None, policy: RetrainingGatePolicy,
           fairness_gate: Callable[[Mapping[str, Any]], tuple[bool, Sequence[str]]] | None = None
           ) -> dict[str, Any]:
    """``candidate`` and ``champion`` are ``{"metrics": {...}, "slices": {column: [{value, n,
    roc_auc, accuracy...}]}}`` on the same holdout; the candidate also carries ``parity``
    (``max_abs_diff``, ``tolerance``) and optionally ``fairness``. Returns ``{"passed",
    "reasons", "checks"}``."""
    checks: list[GateCheck] = []
    if champion is not None:
        mine, theirs = candidate["metrics"].get("roc_auc"), champion["metrics"].get("roc_auc")
        if mine is None or theirs is None:
            checks.append(GateCheck("auc", False, "ROC AUC is undefined on the holdout (one class only)",
                                    {"candidate": mine, "champion": theirs}))
        else:
            ok = mine >= theirs - policy.auc_tolerance
            checks.append(GateCheck("auc", ok, f"candidate {mine:.4f} vs champion {theirs:.4f} "
                                    f"(tolerance {policy.auc_tolerance})", {"candidate": mine, "champion": theirs}))
        checks.append(_slices(candidate.get("slices") or {}, champion.get("slices") or {}, policy))
    parity = candidate["parity"]
    checks.append(GateCheck("parity", parity["max_abs_diff"] <= parity["tolerance"],
                            f"max |p_onnx - p_sklearn| {parity['max_abs_diff']:.2e} (tolerance {parity['tolerance']})",
                            dict(parity)))
    fairness = candidate.get("fairness")
    if fairness and policy.require_fairness and fairness_gate is not None:
        ok, reasons = fairness_gate(fairness)
        checks.append(GateCheck("fairness", ok, "; ".join(reasons) or "passed", {"reasons": list(reasons)}))
    failed = [c.name for c in checks if not c.passed]
    return {"passed": not failed, "reasons": failed, "checks": [c.to_dict() for c in checks]}
