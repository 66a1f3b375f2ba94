"""Experiment definitions: valid ones round-trip; invalid ones name the field."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops.experiments.definition import ExperimentDefinition
from mlops.experiments.errors import ExperimentError, InsufficientData, UnknownExperiment


def body(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "experiment_id": "exp-yield-7",
        "variants": [{"name": "control", "weight": 50, "model_version": "3"},
                     {"name": "challenger", "weight": 50, "model_version": "4"}],
        "primary_metric": {"name": "pass_rate", "kind": "proportion", "direction": "increase", "baseline": 0.9},
        "guardrail_metrics": [{"name": "latency_ms", "kind": "mean", "direction": "decrease"}],
        "mde": 0.02,
        "alpha": 0.05,
        "power": 0.8,
        "start": "2025-03-01T00:00:00+01:00",
        "stop": "2025-03-15T00:00:00Z",
    }
    base.update(overrides)
    return base


def field_of(data: dict[str, Any]) -> str:
    with pytest.raises(ExperimentError) as info:
        ExperimentDefinition.from_dict(data)
    assert info.value.status == 400
    assert info.value.field in str(info.value)
    return info.value.field


def test_valid_definition_defaults_and_round_trip() -> None:
    d = ExperimentDefinition.from_dict(body())
    assert d.control == "control" and d.salt == "exp-yield-7" and d.traffic == 1.0
    assert d.allocation == {"control": 0.5, "challenger": 0.5}
    assert d.treatments == ("challenger",)
    assert d.start == "2025-02-28T23:00:00Z"  # normalised to UTC
    assert d.correction == "holm" and d.sequential is True and d.mode == "ab"
    assert d.absolute_mde() == pytest.approx(0.018)
    again = ExperimentDefinition.from_dict(json.loads(json.dumps(d.to_dict())))
    assert again == d


@pytest.mark.parametrize("alpha", [0, 0.0, -0.1, 0.6, 1, 1.5, "0.05", True, float("nan"), float("inf")])
def test_invalid_alpha_names_alpha(alpha: Any) -> None:
    assert field_of(body(alpha=alpha)) == "alpha"


@pytest.mark.parametrize("power", [0, 1, 1.2, -0.5, "high", 0.04])
def test_invalid_power_names_power(power: Any) -> None:
    assert field_of(body(power=power)) == "power"


@pytest.mark.parametrize("weight", [0, 0.0, -1, "50", None, float("inf")])
def test_zero_traffic_or_bad_weight_names_the_variant_weight(weight: Any) -> None:
    data = body()
    data["variants"][1]["weight"] = weight
    assert field_of(data) == "variants[1].weight"


def test_zero_traffic_message_says_so() -> None:
    data = body()
    data["variants"][0]["weight"] = 0
    with pytest.raises(ExperimentError, match=r"variants\[0\]\.weight: variant 'control' must get traffic"):
        ExperimentDefinition.from_dict(data)


@pytest.mark.parametrize("path,expected", [
    (("alhpa",), "alhpa"),
    (("variants", 0, "colour"), "variants[0].colour"),
    (("primary_metric", "threshold"), "primary_metric.threshold"),
    (("guardrail_metrics", 0, "limit"), "guardrail_metrics[0].limit"),
])
def test_unknown_fields_are_refused_by_name(path: tuple[Any, ...], expected: str) -> None:
    data = body()
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = 1
    assert field_of(data) == expected


@pytest.mark.parametrize("mutate,expected", [
    (lambda d: d.pop("experiment_id"), "experiment_id"),
    (lambda d: d.pop("mde"), "mde"),
    (lambda d: d.update(mde=0), "mde"),
    (lambda d: d.update(mde=0.2), "mde"),  # 0.9 * 1.2 = 1.08: not a rate
    (lambda d: d.pop("primary_metric"), "primary_metric"),
    (lambda d: d["primary_metric"].pop("baseline"), "primary_metric.baseline"),
    (lambda d: d["primary_metric"].update(baseline=1.0), "primary_metric.baseline"),
    (lambda d: d["primary_metric"].update(kind="median"), "primary_metric.kind"),
    (lambda d: d["primary_metric"].update(direction="up"), "primary_metric.direction"),
    (lambda d: d.update(primary_metric={"name": "t", "kind": "mean", "baseline": 3.0}), "primary_metric.std"),
    (lambda d: d["guardrail_metrics"][0].update(name="pass_rate"), "guardrail_metrics[0].name"),
    (lambda d: d.update(variants=[{"name": "only", "weight": 1}]), "variants"),
    (lambda d: d["variants"][1].update(name="control"), "variants[1].name"),
    (lambda d: d["variants"][1].update(model_version=4), "variants[1].model_version"),
    (lambda d: d.update(control="nobody"), "control"),
    (lambda d: d.update(traffic=0), "traffic"),
    (lambda d: d.update(traffic=1.5), "traffic"),
    (lambda d: d.update(start="2025-03-01"), "start"),
    (lambda d: d.update(stop="next week"), "stop"),
    (lambda d: d.update(stop="2025-02-01T00:00:00Z"), "stop"),
    (lambda d: d.update(mode="ab-test"), "mode"),
    (lambda d: d.update(mode="aa"), "variants[1].model_version"),
    (lambda d: d.update(sequential="yes"), "sequential"),
    (lambda d: d.update(correction="fdr"), "correction"),
    (lambda d: d.update(salt=""), "salt"),
])
def test_bad_input_names_the_field(mutate: Any, expected: str) -> None:
    data = copy.deepcopy(body())
    mutate(data)
    assert field_of(data) == expected


def test_every_problem_is_listed() -> None:
    data = body(alpha=2, power=7)
    data["variants"][1]["weight"] = 0
    with pytest.raises(ExperimentError) as info:
        ExperimentDefinition.from_dict(data)
    fields = [e["field"] for e in info.value.errors]
    assert fields == ["variants[1].weight", "alpha", "power"]
    assert [d["field"] for d in info.value.to_dict()["details"]] == fields


def test_aa_mode_with_one_model_version_is_valid() -> None:
    data = body(mode="aa")
    data["variants"][1]["model_version"] = "3"
    assert ExperimentDefinition.from_dict(data).mode == "aa"


def test_variant_lookup_names_the_field() -> None:
    d = ExperimentDefinition.from_dict(body())
    assert d.variant("challenger").model_version == "4"
    with pytest.raises(ExperimentError) as info:
        d.variant("ghost")
    assert info.value.field == "variant"


names = st.text(st.characters(min_codepoint=48, max_codepoint=122), min_size=1, max_size=8)


@settings(max_examples=60, deadline=None)
@given(weights=st.lists(st.floats(0.01, 100), min_size=2, max_size=5),
       alpha=st.floats(0.001, 0.5), power=st.floats(0.51, 0.99), mde=st.floats(0.001, 0.05),
       baseline=st.floats(0.05, 0.9), traffic=st.floats(0.01, 1.0), salt=names)
def test_round_trip_property(weights: list[float], alpha: float, power: float, mde: float, baseline: float,
                             traffic: float, salt: str) -> None:
    data = body(variants=[{"name": f"v{i}", "weight": w, "model_version": str(i)} for i, w in enumerate(weights)],
                alpha=alpha, power=power, mde=mde, traffic=traffic, salt=salt,
                primary_metric={"name": "rate", "baseline": baseline})
    d = ExperimentDefinition.from_dict(data)
    assert ExperimentDefinition.from_dict(json.loads(json.dumps(d.to_dict()))) == d
    assert sum(d.allocation.values()) == pytest.approx(1.0, abs=1e-12)
    assert all(share > 0 for share in d.allocation.values())


def test_error_types_carry_their_status_and_field() -> None:
    unknown = UnknownExperiment("exp-404")
    assert unknown.status == 404 and unknown.field == "experiment_id" and "exp-404" in unknown.message
    assert isinstance(unknown, ExperimentError)
    assert InsufficientData("n", "too few").status == 409
    assert ExperimentError("alpha", "bad").to_dict() == {
        "error": "invalid_experiment", "message": "alpha: bad", "details": [{"field": "alpha", "problem": "bad"}]}
    assert unknown.to_dict()["error"] == "experiment_not_found"
