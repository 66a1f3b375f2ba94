"""Training records a fairness audit per sensitive attribute (by default every slice column),
equal to fairlearn on the validation rows, and the model card shows it with the global
feature importance."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference, equalized_odds_ratio
from models_synthetic import make_yield_data, trained

from mlops.governance.fairness import fairness_gate
from mlops.models.card import build_model_card, card_json, card_markdown
from mlops.models.dataset import TrainingDataError, make_training_set, time_split
from mlops.models.training import TrainingConfig, train_model

INTENDED = "Flag devices likely to fail final test, from their parametric test results."


def _validation_slices() -> dict[str, np.ndarray]:
    d = make_yield_data()
    split = time_split(make_training_set(d["features"], d["labels"], d["timestamps"]).timestamps_ms, 0.2)
    return {column: np.asarray(values)[split.validation] for column, values in d["slices"].items()}


def test_the_record_audits_every_slice_column_as_fairlearn_does() -> None:
    model = trained()
    fairness = model.to_record()["fairness"]
    assert sorted(fairness["attributes"]) == ["fab_site", "tester"]
    assert fairness["threshold"] == model.threshold.threshold and fairness["rows"] == 800
    y = model.validation_labels
    pred = (model.validation_probabilities >= model.threshold.threshold).astype(int)
    for column, values in _validation_slices().items():
        audit = fairness["attributes"][column]
        assert sum(g["n"] for g in audit["groups"]) == 800
        assert audit["demographic_parity_difference"] == pytest.approx(
            demographic_parity_difference(y, pred, sensitive_features=values), abs=1e-12)
        assert audit["equalized_odds_difference"] == pytest.approx(
            equalized_odds_difference(y, pred, sensitive_features=values), abs=1e-12)
        assert audit["equalized_odds_ratio"] == pytest.approx(
            equalized_odds_ratio(y, pred, sensitive_features=values), abs=1e-12)
    json.dumps(fairness, allow_nan=False)
    assert isinstance(fairness_gate(fairness).passed, bool)


def test_sensitive_attributes_are_declared_in_the_config() -> None:
    d = make_yield_data(n=1200, seed=2)
    small = {"n_estimators": 5, "importance_rows": 0}

    def train(**config):
        return train_model(d["features"], d["labels"], d["timestamps"], TrainingConfig(**small, **config),
                           slices=d["slices"], code_version="test")

    only_site = train(sensitive=["fab_site"])
    assert list(only_site.fairness["attributes"]) == ["fab_site"]
    assert only_site.to_record()["explanations"] is None  # importance_rows=0
    assert train(sensitive=[]).to_record()["fairness"] is None
    with pytest.raises(TrainingDataError, match=r"sensitive attributes \['wafer'\]"):
        train(sensitive=["wafer"])
    config = TrainingConfig(sensitive=["fab_site"])
    assert config.sensitive == ("fab_site",)
    assert TrainingConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_the_card_shows_fairness_and_feature_importance() -> None:
    record = json.loads(json.dumps(trained().to_record()))
    card = build_model_card(name="yield", version=2, record=record, intended_use=INTENDED)
    md = card_markdown(card)
    assert "\n## Feature importance\n" in md and "\n## Fairness\n" in md
    assert md.index("## Feature importance") < md.index("## Fairness")
    top = record["explanations"]["ranking"][0]
    assert f"| 1 | {top} | {record['explanations']['mean_abs'][top]:.4f} |" in md
    assert "exact path-dependent TreeSHAP, of the margin (log-odds" in md
    site = record["fairness"]["attributes"]["fab_site"]
    a = site["groups"][0]
    assert "### fab_site" in md and f"| {a['value']} | {a['n']} | {a['positives']} | {a['selected']} |" in md
    verdict = "passes" if site["disparate_impact"]["passed"] else "fails"
    assert f"the four-fifths rule {verdict}" in md
    assert f"Demographic parity difference {site['demographic_parity_difference']:.4f}" in md
    assert card_markdown(json.loads(card_json(card))) == md
