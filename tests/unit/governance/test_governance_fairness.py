"""The fairness audit equals fairlearn's metrics on the same data, handles degenerate groups
explicitly, and its gate applies the policy (four-fifths rule, limits, small groups)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference as fl_dpd,
    demographic_parity_ratio as fl_dpr,
    equalized_odds_difference as fl_eod,
    equalized_odds_ratio as fl_eor,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)

from mlops.governance.fairness import (
    FairnessPolicy,
    attribute_fairness,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
    fairness_gate,
    fairness_summary,
    group_rates,
)


def _data(seed: int, n: int = 600, groups: int = 4):
    rng = np.random.default_rng(seed)
    sites = rng.choice([f"fab_{chr(97 + i)}" for i in range(groups)], size=n)
    bias = {s: rng.normal(0, 0.5) for s in np.unique(sites)}
    y = (rng.random(n) < 0.3).astype(int)
    scores = 1 / (1 + np.exp(-(1.5 * y - 1 + np.array([bias[s] for s in sites]) + rng.normal(0, 1, n))))
    return y, scores, sites


@pytest.mark.parametrize("seed", range(6))
def test_metrics_equal_fairlearn_between_groups(seed: int) -> None:
    y, scores, sites = _data(seed, groups=2 + seed % 4)
    pred = (scores >= 0.45).astype(int)
    kw = {"sensitive_features": sites}
    for ours, theirs in ((demographic_parity_difference, fl_dpd), (demographic_parity_ratio, fl_dpr),
                         (equalized_odds_difference, fl_eod), (equalized_odds_ratio, fl_eor)):
        assert ours(y, pred, **kw) == pytest.approx(theirs(y, pred, method="between_groups", **kw), abs=1e-12)
    frame = MetricFrame(metrics={"sel": selection_rate, "tpr": true_positive_rate, "fpr": false_positive_rate},
                        y_true=y, y_pred=pred, sensitive_features=sites)
    audit = attribute_fairness(y, pred, sites)
    for g in audit["groups"]:
        row = frame.by_group.loc[g["value"]]
        assert g["selection_rate"] == pytest.approx(row["sel"], abs=1e-12)
        assert g["tpr"] == pytest.approx(row["tpr"], abs=1e-12)
        assert g["fpr"] == pytest.approx(row["fpr"], abs=1e-12)
        assert g["n"] == int(np.sum(sites == g["value"]))


def test_hand_computed_case_and_the_four_fifths_rule() -> None:
    # fab_a: 10 rows, 4 positives; predicted 5 (3 TP, 2 FP). fab_b: 10 rows, 5 positives; predicted 3 (2 TP, 1 FP).
    y = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0] + [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    p = [1, 1, 1, 0, 1, 1, 0, 0, 0, 0] + [1, 1, 0, 0, 0, 1, 0, 0, 0, 0]
    g = ["fab_a"] * 10 + ["fab_b"] * 10
    audit = attribute_fairness(y, p, g)
    a, b = audit["groups"]
    assert (a["selection_rate"], a["tpr"], a["fpr"]) == (0.5, 0.75, 2 / 6)
    assert (b["selection_rate"], b["tpr"], b["fpr"]) == (0.3, 0.4, 0.2)
    assert audit["demographic_parity_difference"] == pytest.approx(0.2)
    assert audit["demographic_parity_ratio"] == pytest.approx(0.6)
    assert audit["equalized_odds_difference"] == pytest.approx(0.35)  # max(0.35 TPR, 0.1333 FPR)
    assert audit["equalized_odds_ratio"] == pytest.approx(min(0.4 / 0.75, 0.2 / (2 / 6)))
    assert audit["disparate_impact"] == {"ratio": pytest.approx(0.6), "threshold": 0.8, "passed": False,
                                         "lowest_group": "fab_b", "highest_group": "fab_a"}
    assert b["disparate_impact"] == pytest.approx(0.6) and a["disparate_impact"] == 1.0


def test_degenerate_groups_are_undefined_not_zero() -> None:
    # fab_c has no positives: its TPR is undefined and left out (fairlearn would count 0).
    y = [1, 0, 1, 0] + [1, 0, 0, 0] + [0, 0, 0, 0]
    p = [1, 0, 1, 1] + [1, 0, 0, 0] + [1, 0, 0, 0]
    g = ["a"] * 4 + ["b"] * 4 + ["c"] * 4
    audit = attribute_fairness(y, p, g)
    assert [x["tpr"] for x in audit["groups"]] == [1.0, 1.0, None]
    assert "c" in audit["undefined"]["tpr"]
    assert audit["tpr_difference"] == 0.0
    fpr = [0.5, 0.0, 0.25]
    assert [x["fpr"] for x in audit["groups"]] == fpr
    assert audit["equalized_odds_difference"] == pytest.approx(0.5)
    # Nobody selected: the ratios are 0 / 0, undefined, and the four-fifths rule cannot be judged.
    none = attribute_fairness([1, 0, 1, 0], [0, 0, 0, 0], ["a", "a", "b", "b"])
    assert none["demographic_parity_difference"] == 0.0 and none["demographic_parity_ratio"] is None
    assert none["disparate_impact"]["passed"] is None and "demographic_parity_ratio" in none["undefined"]


def test_missing_values_form_their_own_group_and_bad_input_is_refused() -> None:
    rates = group_rates([1, 0, 1], [1, 0, 0], ["a", None, float("nan")])
    assert [r.value for r in rates] == ["<missing>", "a"] and rates[0].n == 2
    with pytest.raises(ValueError, match="rows"):
        group_rates([1, 0], [1, 0], ["a"])
    with pytest.raises(ValueError, match="only 0 and 1"):
        group_rates([1, 2], [1, 0], ["a", "b"])


def test_summary_is_json_and_thresholds_scores() -> None:
    y, scores, sites = _data(1)
    tester = np.where(np.arange(y.shape[0]) % 2 == 0, "T1", "T2")
    summary = fairness_summary(y, scores, 0.45, {"tester": tester, "fab_site": sites})
    assert list(summary["attributes"]) == ["fab_site", "tester"]
    assert summary["threshold"] == 0.45 and summary["rows"] == y.shape[0]
    pred = (scores >= 0.45).astype(int)
    assert summary["attributes"]["fab_site"]["demographic_parity_difference"] == pytest.approx(
        fl_dpd(y, pred, sensitive_features=sites), abs=1e-12)
    assert json.loads(json.dumps(summary, allow_nan=False)) == summary


def _summary(rates: dict[str, tuple[int, int, int, int, int]]) -> dict:
    """A one-attribute summary from (n, positives, selected, tp, fp) per group."""
    y, p, g = [], [], []
    for name, (n, pos, sel, tp, fp) in rates.items():
        fn, tn = pos - tp, n - pos - fp
        assert sel == tp + fp
        y += [1] * tp + [0] * fp + [1] * fn + [0] * tn
        p += [1] * (tp + fp) + [0] * (fn + tn)
        g += [name] * n
    return fairness_summary(y, p, 0.5, {"fab_site": g})


def test_gate_four_fifths_by_default() -> None:
    fair = _summary({"fab_a": (100, 20, 20, 15, 5), "fab_b": (100, 20, 18, 14, 4)})
    assert fairness_gate(fair).passed and fairness_gate(fair).reasons == ()
    unfair = _summary({"fab_a": (100, 20, 30, 18, 12), "fab_b": (100, 20, 15, 12, 3)})
    result = fairness_gate(unfair)
    assert not result.passed
    assert result.reasons == ("fab_site: disparate impact ratio 0.5000 below the minimum 0.8",)


def test_gate_limits_small_groups_and_switches() -> None:
    s = _summary({"fab_a": (100, 20, 20, 16, 4), "fab_b": (100, 20, 18, 10, 8), "fab_c": (10, 5, 0, 0, 0)})
    # fab_c (10 rows, nothing selected) would break the 80% rule; it is below min_group_rows.
    result = fairness_gate(s)
    assert result.passed and any("fab_c" in note for note in result.notes)
    strict = fairness_gate(s, {"max_equalized_odds_difference": 0.1, "max_demographic_parity_difference": 0.01})
    assert not strict.passed
    assert strict.reasons == ("fab_site: demographic parity difference 0.0200 above the maximum 0.01",
                              "fab_site: equalized odds difference 0.3000 above the maximum 0.1")
    every_group = fairness_gate(s, FairnessPolicy(min_group_rows=1))
    assert not every_group.passed and "disparate impact ratio 0.0000" in every_group.reasons[0]
    off = fairness_gate(s, FairnessPolicy(min_disparate_impact_ratio=None, min_group_rows=1))
    assert off.passed
    assert fairness_gate({"attributes": {}}).passed
