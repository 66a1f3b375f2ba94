"""The inference router with a running experiment (`mlops.models.serving.Predictor`, in-memory
registry and stores, real ONNX sessions): rows the experiment enrolls go to its variants (the
sticky hash for a fixed split, the bandit's choice for a bandit), carry the experiment into the
answer and the log; pinned requests, rows outside the enrolled traffic and experiments outside
their time window fall back to the deployment's routing; the experiment is read once per TTL."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from models_synthetic import FEATURES, trained  # noqa: E402

from mlops.experiments import bandits  # noqa: E402
from mlops.experiments.assignment import Assigner  # noqa: E402
from mlops.experiments.definition import ExperimentDefinition  # noqa: E402
from mlops.experiments.router import LiveExperiment, count_exposures  # noqa: E402
from mlops.models.predict_request import parse_batch, parse_predict  # noqa: E402
from mlops.models.prediction_log import prediction_item  # noqa: E402
from mlops.models.registry import ModelVersion  # noqa: E402
from mlops.models.routing import Deployment  # noqa: E402
from mlops.models.serving import Predictor  # noqa: E402

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)


class Registry:
    def __init__(self, model: Any) -> None:
        self.model = model

    def get_version(self, name: str, number: int) -> ModelVersion:
        record = self.model.to_record()
        return ModelVersion(name, number, "2026-01-05T09:00:00.000000Z", "approved", record["sha256"],
                            "x.onnx", 1, "c.json", "c.md", "test", None, "impute", 0.5, record)

    def read_artifact(self, version: ModelVersion) -> bytes:
        return self.model.onnx

    def get_model(self, name: str) -> dict:
        return {"name": name}


class Deployments:
    def get(self, model: str) -> Deployment:
        return Deployment(model, champion=1)


class Experiments:
    def __init__(self, live: LiveExperiment | None) -> None:
        self.current = live
        self.reads = 0

    def live(self, model: str) -> LiveExperiment | None:
        self.reads += 1
        return self.current


class Clock:
    t = 0.0

    def __call__(self) -> float:
        return self.t


def definition(**extra: Any) -> ExperimentDefinition:
    return ExperimentDefinition.from_dict({
        "experiment_id": "exp-1", "model": "yield", "mde": 0.05,
        "variants": [{"name": "control", "weight": 1, "model_version": "3"},
                     {"name": "treatment", "weight": 1, "model_version": "4"}],
        "primary_metric": {"name": "correct", "baseline": 0.8}, **extra})


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry(trained("gradient_boosting", 20))


def predictor(registry: Registry, live: LiveExperiment | None, clock: Clock | None = None) -> tuple[Predictor, Experiments]:
    experiments = Experiments(live)
    return Predictor(registry, Deployments(), experiments=experiments, experiment_cache_s=5.0,
                     monotonic=clock or Clock()), experiments


def features() -> dict[str, float]:
    return {f: 0.1 for f in FEATURES}


def test_a_fixed_split_routes_enrolled_entities_stickily(registry: Registry) -> None:
    d = definition(traffic=0.6)
    p, experiments = predictor(registry, LiveExperiment(d))
    assigner = Assigner.for_definition(d)
    rows = [{"entity_id": f"dev-{i}", "features": features()} for i in range(60)]
    outcome = p.predict(parse_batch({"model": "yield", "rows": rows}), "req", NOW)
    assert experiments.reads == 1
    for i, r in enumerate(outcome.rows):
        variant = assigner.assign(f"dev-{i}")
        if variant is None:  # not enrolled: the deployment's champion
            assert (r.version, r.variant, r.experiment) == (1, "champion", None)
            assert "experiment" not in r.response("yield") and r.log_row("yield", 1.0)["experiment"] is None
        else:
            assert (r.version, r.variant) == ({"control": 3, "treatment": 4}[variant], variant)
            assert r.response("yield")["experiment"] == {"id": "exp-1", "variant": variant}
            item = prediction_item(r.log_row("yield", 1.0), ts="t", expires_at=0)
            assert (item["experiment_id"], item["experiment_variant"]) == ({"S": "exp-1"}, {"S": variant})
    enrolled = [assigner.assign(f"dev-{i}") for i in range(60)]
    assert count_exposures(r.experiment for r in outcome.rows) == {
        ("exp-1", v): enrolled.count(v) for v in ("control", "treatment") if enrolled.count(v)}
    assert {v for v in enrolled if v} == {"control", "treatment"} and None in enrolled
    again = p.predict(parse_predict({"model": "yield", "entity_id": "dev-7", "features": features()}), "r2", NOW)
    assert again.rows[0].variant == (outcome.rows[7].variant)  # sticky per entity
    assert experiments.reads == 1  # cached


def test_a_bandit_routes_by_its_state(registry: Registry) -> None:
    d = definition(bandit={"policy": "thompson_beta", "params": {"floor": 0.0}})
    state = bandits.update_many(d.bandit.new_state(["control", "treatment"]),
                                [("treatment", 1.0)] * 100 + [("control", 0.0)] * 100)
    p, _ = predictor(registry, LiveExperiment(d, state))
    rows = [{"entity_id": "same", "features": features()} for _ in range(40)]
    outcome = p.predict(parse_batch({"model": "yield", "rows": rows}), "req", NOW)
    assert {(r.version, r.variant) for r in outcome.rows} == {(4, "treatment")}


def test_pinned_requests_and_idle_experiments_use_the_deployment(registry: Registry) -> None:
    clock = Clock()
    p, experiments = predictor(registry, LiveExperiment(definition(start="2026-03-03T00:00:00Z")), clock)
    before = p.predict(parse_predict({"model": "yield", "entity_id": "e", "features": features()}), "r1", NOW)
    assert (before.rows[0].variant, before.rows[0].experiment) == ("champion", None)  # not started yet
    pinned = p.predict(parse_predict({"model": "yield", "version": 3, "features": features()}), "r2",
                       datetime(2026, 3, 4, tzinfo=timezone.utc))
    assert (pinned.rows[0].variant, pinned.rows[0].experiment) == ("pinned", None)
    experiments.current = None
    clock.t = 6.0  # the cache expired: the experiment was stopped meanwhile
    later = p.predict(parse_predict({"model": "yield", "entity_id": "e", "features": features()}), "r3",
                      datetime(2026, 3, 4, tzinfo=timezone.utc))
    assert later.rows[0].variant == "champion" and experiments.reads == 2
