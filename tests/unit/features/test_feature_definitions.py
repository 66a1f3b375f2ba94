"""Feature definitions: the worked example, canonical JSON and hashes, diffs, transforms."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops.features import definitions as defs
from mlops.features.definitions import (
    TRANSFORMS,
    Entity,
    FeatureView,
    Field,
    OnDemandFeatureView,
    RequestSource,
    canonical_json,
    content_hash,
    diff,
    from_dict,
    register_transform,
)
from mlops.features.yield_example import (
    ENTITIES,
    FEATURE_VIEWS,
    ON_DEMAND_VIEWS,
    device,
    device_parametrics,
    tester_health,
    vdd_idd_ratio,
)

LAYER = Path(__file__).resolve().parents[3] / "layers" / "common" / "python"


def make_view(**changes: object) -> FeatureView:
    base: dict[str, object] = dict(
        name="v",
        entities=[device],
        schema=[Field("a", "float", min=0.0), Field("b", "int"), Field("c", "str", allowed=("x", "y"))],
        ttl=timedelta(days=1),
        source="s",
        description="d",
        tags={"owner": "me"},
    )
    base.update(changes)
    return FeatureView(**base)  # type: ignore[arg-type]


# --- the worked example -------------------------------------------------------------------


def test_worked_example_has_the_entities_and_views_users_expect() -> None:
    assert [e.join_key for e in ENTITIES] == ["device_id", "lot_id", "wafer_id", "tester_id", "fab_site"]
    assert device_parametrics.join_keys == ("device_id",)
    assert device_parametrics.ttl == timedelta(days=14)
    floats = [f for f in device_parametrics.schema if f.dtype == "float"]
    assert len(floats) >= 100
    for name in ("vdd", "idd", "leakage_na", "fmax_mhz", "temperature_c", "p000", "p099"):
        assert device_parametrics.field(name).dtype == "float"
    assert tester_health.join_keys == ("tester_id",)
    assert {f.dtype for f in tester_health.schema} == {"float", "int", "str", "bool"}
    assert vdd_idd_ratio.input_names == ("vdd_setpoint", "vdd", "idd")


def test_vdd_idd_ratio_divides_and_treats_zero_current_as_missing() -> None:
    assert vdd_idd_ratio.compute({"vdd": 1.2, "idd": 400.0, "vdd_setpoint": 1.0}) == pytest.approx(
        {"vdd_idd_ratio": 0.003, "vdd_margin": 0.2}
    )
    assert vdd_idd_ratio.compute({"vdd": 1.2, "idd": 0.0})["vdd_idd_ratio"] is None
    assert vdd_idd_ratio.compute({"vdd": 1.2, "idd": -0.0})["vdd_idd_ratio"] is None
    assert vdd_idd_ratio.compute({"idd": 3.0}) == {"vdd_idd_ratio": None, "vdd_margin": None}
    assert vdd_idd_ratio.compute({"vdd": float("nan"), "idd": 3.0})["vdd_idd_ratio"] is None


@settings(max_examples=200, deadline=None)
@given(
    vdd=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    idd=st.one_of(st.none(), st.just(0.0), st.floats(allow_nan=True, allow_infinity=True)),
)
def test_vdd_idd_ratio_is_never_inf_or_nan(vdd: float | None, idd: float | None) -> None:
    out = vdd_idd_ratio.compute({"vdd": vdd, "idd": idd, "vdd_setpoint": 1.0})
    for value in out.values():
        assert value is None or math.isfinite(value)
    if vdd is not None and idd is not None and math.isfinite(vdd) and math.isfinite(idd) and idd != 0:
        expected = vdd / idd
        assert out["vdd_idd_ratio"] == (expected if math.isfinite(expected) else None)


def test_compute_rows_applies_the_transform_per_row() -> None:
    rows = [{"vdd": 1.0, "idd": 2.0}, {"vdd": 1.0, "idd": 0.0}]
    assert [r["vdd_idd_ratio"] for r in vdd_idd_ratio.compute_rows(rows)] == [0.5, None]


# --- canonical JSON, round trips, hashes ----------------------------------------------------


@pytest.mark.parametrize("defn", [*ENTITIES, *FEATURE_VIEWS, *ON_DEMAND_VIEWS], ids=lambda d: d.name)
def test_every_definition_round_trips_through_json(defn: defs.Definition) -> None:
    text = canonical_json(defn)
    back = from_dict(json.loads(text))
    assert back == defn
    assert content_hash(back) == content_hash(defn)
    assert canonical_json(back) == text


def test_hash_is_the_same_in_another_process() -> None:
    """Stored hashes are compared across Lambda invocations: nothing may depend on the
    interpreter's hash seed or on object identity."""
    code = (
        "from mlops.features.definitions import content_hash\n"
        "from mlops.features.yield_example import device_parametrics, tester_health, vdd_idd_ratio\n"
        "print(content_hash(device_parametrics), content_hash(tester_health), content_hash(vdd_idd_ratio))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={"PYTHONPATH": str(LAYER), "PYTHONHASHSEED": "12345"},
    ).stdout.split()
    assert out == [content_hash(device_parametrics), content_hash(tester_health), content_hash(vdd_idd_ratio)]


def test_hash_ignores_the_order_of_sets_but_not_of_fields() -> None:
    a = make_view(tags={"owner": "me", "team": "t"}, schema=[Field("c", "str", allowed=("y", "x"))])
    b = make_view(tags={"team": "t", "owner": "me"}, schema=[Field("c", "str", allowed=("x", "y"))])
    assert content_hash(a) == content_hash(b)
    f1, f2 = Field("a", "float"), Field("b", "float")
    assert content_hash(make_view(schema=[f1, f2])) != content_hash(make_view(schema=[f2, f1]))


def test_numbers_are_canonical_whatever_the_literal() -> None:
    assert content_hash(make_view(schema=[Field("a", "float", min=0, max=1)])) == content_hash(
        make_view(schema=[Field("a", "float", min=0.0, max=1.0)])
    )
    assert content_hash(make_view(ttl=timedelta(hours=24))) == content_hash(make_view(ttl=timedelta(days=1)))


@pytest.mark.parametrize(
    "change",
    [
        {"schema": [Field("a", "float", min=0.0), Field("b", "float"), Field("c", "str", allowed=("x", "y"))]},
        {"schema": [Field("a", "float", min=1.0), Field("b", "int"), Field("c", "str", allowed=("x", "y"))]},
        {"schema": [Field("a", "float", min=0.0), Field("b", "int")]},
        {"ttl": timedelta(days=2)},
        {"entities": [Entity("device", "device_id", value_type="int")]},
        {"source": "other"},
        {"description": "other"},
        {"tags": {"owner": "you"}},
    ],
)
def test_any_change_gives_a_new_hash_and_a_diff_that_says_so(change: dict[str, object]) -> None:
    old, new = make_view(), make_view(**change)
    assert content_hash(old) != content_hash(new)
    assert diff(old, new).changed
    assert not diff(old, make_view()).changed


def test_diff_names_added_removed_retyped_fields_and_ttl() -> None:
    old = make_view()
    new = make_view(
        schema=[Field("b", "float"), Field("a", "float", min=0.0, required=True), Field("d", "bool")],
        ttl=timedelta(days=14),
    )
    d = diff(old, new)
    assert d.added == ("d",)
    assert d.removed == ("c",)
    assert d.retyped == {"b": ("int", "float")}
    assert d.constraints == {"a": {"required": (False, True)}}
    assert d.ttl == (86400, 14 * 86400)
    assert d.reordered
    assert d.breaking
    assert json.loads(json.dumps(d.to_dict()))["retyped"] == {"b": ["int", "float"]}


def test_diff_of_an_added_optional_field_is_not_breaking_and_works_on_stored_dicts() -> None:
    old = make_view()
    new = make_view(schema=[*make_view().schema, Field("z", "float")])
    d = diff(json.loads(canonical_json(old)), json.loads(canonical_json(new)))
    assert d.added == ("z",) and not d.removed and not d.retyped and not d.reordered
    assert not d.breaking


def test_diff_refuses_different_definitions() -> None:
    with pytest.raises(ValueError, match="different definitions"):
        diff(make_view(), make_view(name="w"))
    with pytest.raises(ValueError, match="cannot diff"):
        diff(make_view(), device)


# --- transforms -----------------------------------------------------------------------------


def test_transform_code_is_part_of_the_version() -> None:
    stored = vdd_idd_ratio.to_dict()
    assert stored["transform"]["name"] == "vdd_idd_ratio"
    assert stored["transform"]["code_sha256"] == TRANSFORMS["vdd_idd_ratio"].code_sha256
    tampered = json.loads(json.dumps(stored))
    tampered["transform"]["code_sha256"] = "0" * 64
    assert content_hash(tampered) != content_hash(stored)
    with pytest.raises(ValueError, match="code hash"):
        OnDemandFeatureView.from_dict(tampered)
    assert OnDemandFeatureView.from_dict(tampered, check_code=False) == vdd_idd_ratio


def test_different_code_under_a_taken_name_is_refused() -> None:
    name = "test_defs_ratio"
    try:
        @register_transform(name)
        def first(inputs: defs.OnDemandInputs) -> dict[str, object]:
            return {"r": 1.0}

        register_transform(name)(first)  # the same code again: fine (a module reload)
        with pytest.raises(ValueError, match="already registered"):
            @register_transform(name)
            def second(inputs: defs.OnDemandInputs) -> dict[str, object]:
                return {"r": 2.0}
    finally:
        TRANSFORMS.pop(name, None)


def test_unregistered_transform_and_bad_outputs_are_errors() -> None:
    def loose(inputs: defs.OnDemandInputs) -> dict[str, object]:
        return {"r": 1.0}

    req = RequestSource("req", [Field("x", "float")])
    with pytest.raises(ValueError, match="not registered"):
        OnDemandFeatureView("odfv", [req], [Field("r", "float")], transform=loose)
    with pytest.raises(KeyError, match="no transform registered"):
        OnDemandFeatureView("odfv", [req], [Field("r", "float")], transform="nope_not_there")
    name = "test_defs_wrong_outputs"
    try:
        register_transform(name)(loose)
        view = OnDemandFeatureView("odfv", [req], [Field("other", "float")], transform=name)
        with pytest.raises(ValueError, match="expected"):
            view.compute({"x": 1.0})
    finally:
        TRANSFORMS.pop(name, None)


# --- definitions refuse nonsense ------------------------------------------------------------


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: Field("a", "decimal"), "dtype"),
        (lambda: Field("a b", "float"), "identifier"),
        (lambda: Field("a", "float", min=2.0, max=1.0), "min"),
        (lambda: Field("a", "str", min=1), "min/max"),
        (lambda: Field("a", "int", min=0.5), "whole"),
        (lambda: Field("a", "int", allow_nan=True), "allow_nan"),
        (lambda: Field("a", "int", allowed=(1, "2")), "allowed"),
        (lambda: Field("a", "int", allowed=(True,)), "allowed"),
        (lambda: make_view(ttl=timedelta(0)), "ttl"),
        (lambda: make_view(schema=[Field("a", "float"), Field("a", "int")]), "duplicate"),
        (lambda: make_view(schema=[Field("device_id", "float")]), "clashes"),
        (lambda: make_view(schema=[Field("event_timestamp", "float")]), "clashes"),
        (lambda: make_view(entities=[]), "entity"),
        (lambda: Entity("e", "k", value_type="float"), "value_type"),  # type: ignore[arg-type]
    ],
)
def test_invalid_definitions_are_refused(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]
