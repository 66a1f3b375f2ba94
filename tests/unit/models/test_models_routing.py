"""The router: weights per version from the deployment record, sticky per entity, and the
record's DynamoDB form (the schema the canary rollout and the alias moves write)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlops.models.routing import Deployment, DeploymentError, Route, bucket_of, deployment_from_item, route

KEYS = [f"device-{i}" for i in range(20_000)]


def share(deployment: Deployment, keys: list[str] = KEYS) -> float:
    return sum(route(deployment, k).variant == "challenger" for k in keys) / len(keys)


@pytest.mark.parametrize("percent", [1, 10, 25, 50, 90])
def test_the_challenger_gets_its_percentage_of_entities(percent: float) -> None:
    deployment = Deployment("yield", champion=1, challenger=2, challenger_percent=percent)
    assert share(deployment) == pytest.approx(percent / 100, abs=0.01)


@given(st.text(min_size=1, max_size=40), st.floats(min_value=0, max_value=100))
def test_an_entity_always_sees_the_same_variant_within_a_stage(key: str, percent: float) -> None:
    deployment = Deployment("yield", champion=3, challenger=4, challenger_percent=percent)
    first = route(deployment, key)
    assert all(route(deployment, key) == first for _ in range(3))
    assert first.version == (4 if first.variant == "challenger" else 3)


def test_entities_on_the_challenger_stay_there_as_its_share_grows() -> None:
    stages = [1, 10, 50, 100]
    on = [{k for k in KEYS if route(Deployment("yield", 1, 2, p), k).variant == "challenger"} for p in stages]
    assert all(a <= b for a, b in zip(on, on[1:]))
    assert on[-1] == set(KEYS)


def test_each_challenger_samples_its_own_entities() -> None:
    a = {k for k in KEYS if route(Deployment("yield", 1, 2, 50), k).variant == "challenger"}
    b = {k for k in KEYS if route(Deployment("yield", 1, 3, 50), k).variant == "challenger"}
    assert len(a & b) / len(KEYS) == pytest.approx(0.25, abs=0.02)  # independent halves


def test_edge_weights() -> None:
    assert share(Deployment("yield", 1, 2, 0)) == 0.0
    assert share(Deployment("yield", 1, 2, 100)) == 1.0
    assert route(Deployment("yield", 1, 1, 50), "x") == Route(1, "champion")  # challenger is the champion
    assert route(Deployment("yield", None), "x") is None
    assert route(Deployment("yield", None, 2, 100), "x") == Route(2, "challenger")
    assert Deployment("yield", 1, 2, 30).weights() == {1: 70.0, 2: 30.0}
    assert Deployment("yield", 1, 2, 0).weights() == {1: 100.0}
    assert Deployment("yield", 1, None, 30).weights() == {1: 100.0}
    with pytest.raises(DeploymentError, match="0-100"):
        Deployment("yield", 1, 2, 101)


def test_buckets_are_uniform_and_stable() -> None:
    counts = [0] * 10
    for k in KEYS:
        counts[bucket_of(k, "salt") * 10 // 10_000] += 1
    assert max(counts) - min(counts) < 300  # 2000 expected per tenth, sd about 42
    assert bucket_of("device-1", "salt") == bucket_of("device-1", "salt") != bucket_of("device-1", "pepper")


def test_the_record_as_the_canary_and_the_alias_moves_write_it() -> None:
    item = {"model": {"S": "yield"}, "sk": {"S": "DEPLOYMENT"}, "champion": {"N": "3"}, "challenger": {"N": "4"},
            "challenger_percent": {"N": "12.5"}, "shadow": {"N": "5"}, "updated_at": {"S": "2026-01-05T09:00:00Z"}}
    d = deployment_from_item(item)
    assert (d.champion, d.challenger, d.challenger_percent, d.shadow) == (3, 4, 12.5, 5)
    assert d.to_api()["weights"] == {"3": 87.5, "4": 12.5}
    only_champion = deployment_from_item({"model": {"S": "yield"}, "champion": {"N": "1"}})
    assert (only_champion.challenger, only_champion.challenger_percent, only_champion.shadow) == (None, 0.0, None)
    assert deployment_from_item({"model": {"S": "y"}, "champion": {"S": "2"}}).champion == 2
    with pytest.raises(DeploymentError, match="champion must be a positive integer"):
        deployment_from_item({"model": {"S": "y"}, "champion": {"N": "1.5"}})
    with pytest.raises(DeploymentError, match="challenger must be a number"):
        deployment_from_item({"model": {"S": "y"}, "challenger": {"S": "v7"}})
