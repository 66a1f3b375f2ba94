"""Model cards: content taken from the training record, derived limitations, fairness, determinism."""

from __future__ import annotations

import copy
import json

import pytest
from models_synthetic import trained

from mlops.models.card import build_model_card, card_json, card_markdown, derived_limitations

INTENDED = "Flag devices likely to fail final test, from their parametric test results."
FAIRNESS = {
    "attribute": "fab_site",
    "metric": "true positive rate",
    "groups": {"fab_b": {"tpr": 0.55, "fpr": 0.08}, "fab_a": {"tpr": 0.61, "fpr": 0.07}},
    "max_gap": 0.06,
}


def _record() -> dict:
    return json.loads(json.dumps(trained().to_record()))


def _reversed(obj):
    """The same data with every mapping's key order reversed."""
    if isinstance(obj, dict):
        return {k: _reversed(obj[k]) for k in reversed(list(obj))}
    if isinstance(obj, list):
        return [_reversed(v) for v in obj]
    return obj


def test_card_carries_the_record() -> None:
    record = _record()
    card = build_model_card(name="yield", version=3, record=record, intended_use=INTENDED,
                            out_of_scope=["Wafer-level dispositions"], created_at="2024-04-01T00:00:00Z")
    assert card["model"]["sha256"] == record["sha256"] and card["model"]["version"] == 3
    assert card["model"]["algorithm"] == "gradient_boosting"
    assert card["intended_use"] == {"summary": INTENDED, "out_of_scope": ["Wafer-level dispositions"]}
    assert card["data"]["time_range"] == record["data"]["time_range"]
    assert card["data"]["label_balance"]["validation"]["rows"] == 800
    assert card["data"]["label_balance"]["overall"]["positive_rate"] == record["data"]["positive_rate"]
    assert card["metrics"]["roc_auc"] == record["metrics"]["roc_auc"]
    assert card["metrics"]["threshold"] == record["threshold"]["threshold"]
    assert len(card["calibration"]) == 10
    assert [e["value"] for e in card["slices"]["tester"]] == ["T1", "T2", "T3", "T4"]
    assert "confusion" not in card["slices"]["tester"][0]
    assert card["inputs"]["features"][:2] == ["p00", "p01"]
    assert card["fairness"] == record["fairness"]  # the record's own audit when none is given
    assert card["feature_importance"] == record["explanations"]
    json.dumps(card)


def test_markdown_has_every_section_and_the_numbers() -> None:
    record = _record()
    card = build_model_card(name="yield", version=3, record=record, intended_use=INTENDED, fairness=FAIRNESS)
    md = card_markdown(card)
    for heading in ("# Model card: yield version 3", "## Intended use", "## Data", "## Inputs",
                    "## Metrics (validation set)", "### Calibration", "## Slices", "### tester",
                    "### fab_site", "## Threshold", "## Limitations", "## Fairness"):
        assert f"\n{heading}\n" in f"\n{md}", heading
    assert INTENDED in md
    assert f"| roc_auc | {record['metrics']['roc_auc']:.4f} |" in md
    t4 = next(e for e in record["slices"]["tester"] if e["value"] == "T4")
    assert f"| T4 | {t4['n']} | {t4['positives']} | {t4['roc_auc']:.4f} |" in md
    assert "| fab_a | 0.0700 | 0.6100 |" in md and md.index("| fab_a") < md.index("| fab_b")
    assert "- max_gap: 0.0600" in md
    assert "Policy: max_f1" in md and record["data"]["content_sha256"] in md
    no_fairness = card_markdown(build_model_card(name="yield", version=3, record={**record, "fairness": None},
                                                 intended_use=INTENDED))
    assert "## Fairness" not in no_fairness


def test_output_is_deterministic() -> None:
    record = _record()
    kwargs = dict(name="yield", version=3, intended_use=INTENDED, fairness=FAIRNESS, created_at="2024-04-01T00:00:00Z")
    a = build_model_card(record=record, **kwargs)
    b = build_model_card(record=_reversed(copy.deepcopy(record)), **{**kwargs, "fairness": _reversed(FAIRNESS)})
    assert card_json(a) == card_json(b)
    assert card_markdown(a) == card_markdown(b)
    assert card_markdown(a) == card_markdown(json.loads(card_json(a)))


def test_limitations_given_first_then_derived_without_duplicates() -> None:
    record = _record()
    derived = derived_limitations(record)
    assert any("balanced class weights" in item for item in derived)
    assert any("same validation rows" in item for item in derived)
    card = build_model_card(name="yield", version=1, record=record, intended_use=INTENDED,
                            limitations=["Not validated on the new probe cards.", derived[0]])
    assert card["limitations"][0] == "Not validated on the new probe cards."
    assert card["limitations"][1:] == derived


def test_single_class_and_small_slices_are_stated() -> None:
    record = _record()
    record["slices"]["tester"].append({
        "value": "T9", "n": 12, "positives": 0, "roc_auc": None, "pr_auc": None, "precision": None,
        "recall": None, "f1": None, "undefined": {"roc_auc": "only one class present (no positives)",
                                                   "pr_auc": "no positives, recall is undefined"},
    })
    record["parameters"]["config"]["class_weight"] = "none"
    record["threshold"]["policy"] = {"kind": "fixed", "value": 0.5}
    derived = derived_limitations(record)
    assert "Slice tester=T9: roc_auc undefined (only one class present (no positives))." in derived
    assert any(item.startswith("Slice tester=T9 has 12 validation rows") for item in derived)
    assert not any("balanced class weights" in item or "same validation rows" in item for item in derived)
    md = card_markdown(build_model_card(name="yield", version=1, record=record, intended_use=INTENDED))
    assert "| T9 | 12 | 0 | n/a | n/a |" in md


def test_intended_use_is_required() -> None:
    with pytest.raises(ValueError, match="intended use"):
        build_model_card(name="yield", version=1, record=_record(), intended_use="  ")
