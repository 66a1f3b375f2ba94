"""The registry's plain values: names, version numbers, move times and the alias-at-time answer;
and the features of an entity (online answer + on-demand features + warnings)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from mlops.features.online_store import OnlineFeatures, ViewFeatures
from mlops.features.yield_example import device_parametrics, tester_health, vdd_idd_ratio
from mlops.models.entity_features import FeatureSource, assemble, explicit_with_on_demand, source_from_views
from mlops.models.registry import (
    AliasMove,
    alias_problem,
    alias_version_at,
    iso_utc,
    model_name_problem,
    next_move_time,
    parse_time,
    parse_version,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


def move(seq: int, version: int | None, minutes: int) -> AliasMove:
    return AliasMove("yield", "champion", version, None, seq, iso_utc(T0 + timedelta(minutes=minutes)))


def test_which_version_an_alias_pointed_at_at_a_time() -> None:
    history = [move(2, 3, 10), move(1, 1, 0), move(3, None, 20), move(4, 2, 30)]  # any order in
    at = lambda minutes: alias_version_at(history, iso_utc(T0 + timedelta(minutes=minutes)))  # noqa: E731
    assert [at(-1), at(0), at(9), at(10), at(15), at(20), at(29), at(30), at(10_000)] == [None, 1, 1, 3, 3, None, None, 2, 2]
    assert alias_version_at([], iso_utc(T0)) is None


def test_move_times_never_go_back() -> None:
    later = iso_utc(T0 + timedelta(seconds=5))
    assert next_move_time(T0, later) == later  # a writer whose clock lags keeps the order
    assert next_move_time(T0 + timedelta(seconds=9), later) == iso_utc(T0 + timedelta(seconds=9))
    assert next_move_time(T0, None) == "2026-01-05T09:00:00.000000Z"


def test_names_versions_and_times() -> None:
    assert model_name_problem("yield-v2_b") is None and model_name_problem("2fast") is None
    for bad in ("", "Yield", "a b", "-x", "x" * 65, 7):
        assert model_name_problem(bad)
    assert alias_problem("champion") is None
    for bad in ("7", "Champion", "", "a/b"):
        assert alias_problem(bad)
    assert [parse_version(v) for v in (1, "12", 0, -1, "x", "1.0", True, 2.0)] == [1, 12, None, None, None, None, None, None]
    assert parse_time("2026-01-05T10:00:00+01:00") == "2026-01-05T09:00:00.000000Z"
    with pytest.raises(ValueError, match="no time zone"):
        parse_time("2026-01-05T10:00:00")


def _online(status: str, age: timedelta | None, values: dict) -> OnlineFeatures:
    event = None if age is None else T0 - age
    view = ViewFeatures("device_parametrics", "device_id=D1", status,
                        {n: values.get(n) for n in device_parametrics.feature_names}, event, age)
    return OnlineFeatures("D1", {"device_parametrics": view})


def test_entity_features_with_on_demand_features_and_warnings() -> None:
    source = source_from_views([device_parametrics], [vdd_idd_ratio])
    assert source.to_dict() == {"entity": "device", "join_key": "device_id", "views": ["device_parametrics"],
                                "on_demand": ["vdd_idd_ratio"]}
    assert FeatureSource.from_dict(source.to_dict()) == source
    values, warnings = assemble(source, "D1", _online("ok", timedelta(hours=2), {"vdd": 1.2, "idd": 400.0}),
                                {"vdd_setpoint": 1.0})
    assert values["vdd"] == 1.2 and values["vdd_idd_ratio"] == pytest.approx(0.003)
    assert values["vdd_margin"] == pytest.approx(0.2) and warnings == []

    values, warnings = assemble(source, "D1", _online("expired", timedelta(days=20), {}), {})
    assert values["vdd"] is None and values["vdd_idd_ratio"] is None
    assert [w["code"] for w in warnings] == ["stale_features", "missing_request_input"]
    assert warnings[0]["age_seconds"] == 20 * 86400 and warnings[0]["ttl_seconds"] == 14 * 86400
    assert "20.0 days old" in warnings[0]["message"] and warnings[1]["fields"] == ["vdd_setpoint"]

    _, warnings = assemble(source, "D1", _online("missing", None, {}), {"vdd_setpoint": 1.0})
    assert [w["code"] for w in warnings] == ["missing_features"]


def test_explicit_features_get_the_on_demand_features_the_model_wants() -> None:
    source = source_from_views([device_parametrics], [vdd_idd_ratio])
    out = explicit_with_on_demand(source, {"vdd": 1.0, "idd": 500.0}, {}, ["vdd", "idd", "vdd_idd_ratio"])
    assert out == {"vdd": 1.0, "idd": 500.0, "vdd_idd_ratio": 0.002}
    sent = explicit_with_on_demand(source, {"vdd": 1.0, "idd": 500.0, "vdd_idd_ratio": 9.0}, {}, ["vdd_idd_ratio"])
    assert sent["vdd_idd_ratio"] == 9.0  # what the client sent wins
    assert explicit_with_on_demand(None, {"a": 1.0}, {}, ["a", "b"]) == {"a": 1.0}


def test_composite_keys_come_from_the_request() -> None:
    source = source_from_views([device_parametrics, tester_health])
    assert source.join_keys == ("device_id", "tester_id")
    assert source.entity_key("D1", {"tester_id": "T3"}) == {"device_id": "D1", "tester_id": "T3"}
    assert source.missing_keys({}) == ["tester_id"]
    assert source_from_views([device_parametrics]).entity_key("D1", {"tester_id": "T3"}) == "D1"
    with pytest.raises(ValueError, match="no view is keyed by entity 'lot'"):
        source_from_views([device_parametrics], entity="lot")
