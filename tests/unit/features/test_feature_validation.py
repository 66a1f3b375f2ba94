"""Validation of ingestion rows: field-level errors, normalisation, batches, speed."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops.features.definitions import Entity, FeatureView, Field
from mlops.features.validation import validate_rows
from mlops.features.yield_example import device_parametrics, tester_health

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
NOW_US = 1714564800_000000
TS = "2024-05-01T11:00:00Z"
TS_US = NOW_US - 3600_000000


def param_row(**values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"device_id": "D1", "event_timestamp": TS, "vdd": 1.2, "idd": 300.0}
    row.update(values)
    return row


def errors_of(view: FeatureView, row: dict[str, Any], **kw: Any) -> list[dict[str, Any]]:
    result = validate_rows(view, [row], now=NOW, **kw)
    assert len(result.accepted) + len(result.rejected) == 1
    return result.rejected[0]["errors"] if result.rejected else []


def test_a_good_row_is_accepted_and_normalised() -> None:
    result = validate_rows(device_parametrics, [param_row(idd=300, p005=None)], now=NOW)
    assert result.ok and not result.rejected
    (row,) = result.accepted
    assert row["event_timestamp"] == TS_US
    assert row["idd"] == 300.0 and type(row["idd"]) is float  # an int in a float column
    assert set(row) == {"device_id", "event_timestamp", *device_parametrics.feature_names}
    assert row["p005"] is None and row["leakage_na"] is None  # explicit null and absent: missing


@pytest.mark.parametrize(
    "stamp, micros",
    [
        ("2024-05-01T11:00:00Z", TS_US),
        ("2024-05-01T13:00:00+02:00", TS_US),
        ("2024-05-01T11:00:00.250000+00:00", TS_US + 250_000),
        (TS_US // 1_000_000, TS_US),
        (TS_US / 1e6 + 0.5, TS_US + 500_000),
        (datetime(2024, 5, 1, 11, tzinfo=timezone.utc), TS_US),
    ],
)
def test_timestamps_in_any_accepted_form_become_epoch_micros(stamp: Any, micros: int) -> None:
    result = validate_rows(device_parametrics, [param_row(event_timestamp=stamp)], now=NOW)
    assert result.accepted[0]["event_timestamp"] == micros


@pytest.mark.parametrize(
    "change, field, problem",
    [
        ({"vdd": True}, "vdd", "expected float, got bool"),
        ({"vdd": "1.2"}, "vdd", "expected float, got str"),
        ({"vdd": None}, "vdd", "required"),
        ({"vdd": 5.0001}, "vdd", "above max 5.0"),
        ({"idd": -1}, "idd", "below min 0.0"),
        ({"p001": float("nan")}, "p001", "NaN not allowed"),
        ({"p001": float("inf")}, "p001", "not finite"),
        ({"p001": -float("inf")}, "p001", "not finite"),
        ({"p001": 10**400}, "p001", "out of float range"),
        ({"vddd": 1.0}, "vddd", "unknown feature"),
        ({"device_id": None}, "device_id", "missing entity key"),
        ({"device_id": 17}, "device_id", "must be str"),
        ({"device_id": ""}, "device_id", "empty"),
        ({"event_timestamp": None}, "event_timestamp", "missing"),
        ({"event_timestamp": "2024-05-01T11:00:00"}, "event_timestamp", "time zone"),
        ({"event_timestamp": "yesterday"}, "event_timestamp", "not an ISO-8601"),
        ({"event_timestamp": True}, "event_timestamp", "bool"),
        ({"event_timestamp": float("nan")}, "event_timestamp", "not finite"),
        ({"event_timestamp": "2024-05-01T12:05:00.000001Z"}, "event_timestamp", "clock skew"),
    ],
)
def test_each_problem_is_named_on_its_field(change: dict[str, Any], field: str, problem: str) -> None:
    errors = errors_of(device_parametrics, param_row(**change))
    assert [e["field"] for e in errors] == [field]
    assert problem in errors[0]["problem"]


def test_a_missing_required_column_and_a_missing_key_column_are_errors() -> None:
    row = param_row()
    del row["vdd"], row["device_id"]
    errors = errors_of(device_parametrics, row)
    assert [(e["field"], e["problem"]) for e in errors] == [
        ("device_id", "missing entity key"),
        ("vdd", "required: missing value"),
    ]


def test_clock_skew_edge_is_inclusive() -> None:
    edge = param_row(event_timestamp="2024-05-01T12:05:00Z")
    assert validate_rows(device_parametrics, [edge], now=NOW, max_skew=timedelta(minutes=5)).ok
    assert not validate_rows(device_parametrics, [edge], now=NOW, max_skew=timedelta(minutes=4)).ok
    # the clock comes from the caller: the same row is fine an hour later
    assert validate_rows(device_parametrics, [edge], now=NOW_US + 3600_000000, max_skew=timedelta(0)).ok


def test_other_types_follow_their_own_rules() -> None:
    good = {"tester_id": "T1", "event_timestamp": TS, "alarms_24h": 3, "status": "ok", "in_calibration": False}
    assert validate_rows(tester_health, [good], now=NOW).ok
    cases = [
        ({"alarms_24h": 3.0}, "alarms_24h", "expected int, got float"),
        ({"alarms_24h": True}, "alarms_24h", "expected int, got bool"),
        ({"alarms_24h": -1}, "alarms_24h", "below min 0"),
        ({"alarms_24h": 2**63}, "alarms_24h", "64-bit"),
        ({"status": "broken"}, "status", "allowed"),
        ({"status": 1}, "status", "expected str"),
        ({"in_calibration": 1}, "in_calibration", "expected bool, got int"),
        ({"calibration_age_h": False}, "calibration_age_h", "expected float, got bool"),
    ]
    for change, field, problem in cases:
        errors = errors_of(tester_health, {**good, **change})
        assert [e["field"] for e in errors] == [field], change
        assert problem in errors[0]["problem"], change


def test_allow_nan_accepts_nan_as_missing_and_allowed_floats_are_checked() -> None:
    view = FeatureView(
        "v", [Entity("e", "k", value_type="int")],
        [Field("x", "float", allow_nan=True), Field("grade", "float", allowed=(0.5, 1, 2))],
        ttl=timedelta(days=1), source="s",
    )
    ok = validate_rows(view, [{"k": 1, "event_timestamp": TS, "x": float("nan"), "grade": 1}], now=NOW)
    assert ok.accepted == [{"k": 1, "event_timestamp": TS_US, "x": None, "grade": 1.0}]
    bad = validate_rows(view, [{"k": 1, "event_timestamp": TS, "x": float("inf"), "grade": 1.5},
                               {"k": True, "event_timestamp": TS}], now=NOW)
    assert bad.rejected == [
        {"row": 0, "errors": [{"field": "x", "problem": "not finite (inf)"},
                              {"field": "grade", "problem": "not one of the allowed values [0.5, 1.0, 2.0]"}]},
        {"row": 1, "errors": [{"field": "k", "problem": "entity key must be int, got bool"}]},
    ]


def test_a_bad_row_rejects_only_itself_unless_all_or_nothing() -> None:
    rows = [param_row(device_id=f"D{i}") for i in range(5)]
    rows[1]["vdd"] = 9.0
    rows[3] = "not a row"  # type: ignore[call-overload]
    result = validate_rows(device_parametrics, rows, now=NOW)
    assert [r["row"] for r in result.rejected] == [1, 3]
    assert result.accepted_index == [0, 2, 4]
    assert [r["device_id"] for r in result.accepted] == ["D0", "D2", "D4"]
    strict = validate_rows(device_parametrics, rows, now=NOW, all_or_nothing=True)
    assert strict.batch_rejected and strict.accepted == [] and strict.accepted_index == []
    assert strict.rejected == result.rejected
    assert strict.to_dict()["batch_rejected"] is True


def test_the_input_rows_are_not_modified() -> None:
    row = param_row(idd=300)
    snapshot = dict(row)
    validate_rows(device_parametrics, [row], now=NOW)
    assert row == snapshot


def test_text_cells_are_parsed_by_the_schema() -> None:
    rows = [
        {"device_id": "D1", "event_timestamp": TS, "vdd": "1.5", "idd": "12", "p001": ""},
        {"device_id": "D2", "event_timestamp": str(TS_US // 1_000_000), "vdd": "abc", "idd": "1"},
    ]
    result = validate_rows(device_parametrics, rows, now=NOW, from_text=True)
    assert result.accepted[0]["vdd"] == 1.5 and result.accepted[0]["idd"] == 12.0
    assert result.accepted[0]["p001"] is None
    assert result.rejected == [{"row": 1, "errors": [{"field": "vdd", "problem": "expected float, got str"}]}]
    health = validate_rows(
        tester_health,
        [{"tester_id": "T", "event_timestamp": TS, "alarms_24h": "4", "in_calibration": "true", "status": ""}],
        now=NOW, from_text=True,
    )
    assert health.accepted[0]["alarms_24h"] == 4 and health.accepted[0]["in_calibration"] is True
    assert health.accepted[0]["status"] is None


def test_empty_batches_and_views_with_one_or_no_float_field() -> None:
    assert validate_rows(device_parametrics, [], now=NOW).accepted == []
    one = FeatureView("one", [Entity("e", "k")], [Field("x", "float", required=True)], timedelta(days=1), "s")
    result = validate_rows(one, [{"k": "a", "event_timestamp": TS, "x": 2}, {"k": "b", "event_timestamp": TS}], now=NOW)
    assert result.accepted == [{"k": "a", "event_timestamp": TS_US, "x": 2.0}]
    assert result.rejected == [{"row": 1, "errors": [{"field": "x", "problem": "required: missing value"}]}]
    words = FeatureView("words", [Entity("e", "k")], [Field("w", "str")], timedelta(days=1), "s")
    assert validate_rows(words, [{"k": "a", "event_timestamp": TS}], now=NOW).accepted == [
        {"k": "a", "event_timestamp": TS_US, "w": None}
    ]


def test_columns_match_the_accepted_rows() -> None:
    rows = [param_row(device_id=f"D{i}", p003=float(i) if i % 2 else None) for i in range(6)]
    rows[2]["vdd"] = -1.0
    result = validate_rows(device_parametrics, rows, now=NOW)
    cols = result.columns()
    assert list(cols["device_id"]) == [r["device_id"] for r in result.accepted]
    assert cols["event_timestamp"].dtype == np.int64
    expected = [np.nan if r["p003"] is None else r["p003"] for r in result.accepted]
    np.testing.assert_array_equal(cols["p003"], expected)


# --- a reference: the same rules, value by value ---------------------------------------------

REF_VIEW = FeatureView(
    "ref", [Entity("dev", "device_id")],
    [Field("a", "float", required=True, min=-1.0, max=1.0), Field("b", "float"),
     Field("c", "float", allow_nan=True, max=0.0), Field("n", "int", min=0)],
    ttl=timedelta(days=1), source="s",
)

CELL = st.one_of(
    st.floats(-2, 2), st.integers(-3, 3), st.none(), st.just(float("nan")), st.just(float("inf")),
    st.booleans(), st.sampled_from(["x", "1.0"]),
)


def reference_problems(row: dict[str, Any]) -> set[tuple[str, str]]:
    """The rules written out plainly, one value at a time."""
    out: set[tuple[str, str]] = set()
    for f in REF_VIEW.schema:
        v = row.get(f.name)
        if v is None:
            if f.required:
                out.add((f.name, "required"))
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (f.dtype == "int" and isinstance(v, float)):
            out.add((f.name, "type"))
            continue
        if isinstance(v, float) and math.isnan(v):
            if not f.allow_nan:
                out.add((f.name, "nan"))
            continue
        if math.isinf(v):
            out.add((f.name, "inf"))
            continue
        if (f.min is not None and v < f.min) or (f.max is not None and v > f.max):
            out.add((f.name, "range"))
    return out


def classify(problem: str) -> str:
    for word, kind in (("required", "required"), ("expected", "type"), ("NaN", "nan"), ("finite", "inf"),
                       ("below", "range"), ("above", "range")):
        if word in problem:
            return kind
    return problem


@settings(max_examples=150, deadline=None)
@given(st.lists(st.fixed_dictionaries({}, optional={k: CELL for k in "abcn"}), min_size=1, max_size=30))
def test_batch_checks_agree_with_the_rules_value_by_value(cells: list[dict[str, Any]]) -> None:
    rows = [{"device_id": f"d{i}", "event_timestamp": TS_US // 1_000_000, **c} for i, c in enumerate(cells)]
    result = validate_rows(REF_VIEW, rows, now=NOW)
    got = {r["row"]: {(e["field"], classify(e["problem"])) for e in r["errors"]} for r in result.rejected}
    want = {i: p for i, row in enumerate(rows) if (p := reference_problems(row))}
    assert got == want
    for i, row in zip(result.accepted_index, result.accepted):
        for f in REF_VIEW.schema:
            v = rows[i].get(f.name)
            expected = None if v is None or (isinstance(v, float) and math.isnan(v)) else (
                float(v) if f.dtype == "float" else v)
            assert row[f.name] == expected and type(row[f.name]) is type(expected)


def test_ten_thousand_wide_rows_validate_column_wise() -> None:
    """A wide batch with one bad cell: only that row is rejected, ints become floats.
    (Its speed is measured in benchmarks, never asserted here: the machines are shared.)"""
    rng = np.random.default_rng(0)
    names = device_parametrics.feature_names
    values = rng.uniform(0.1, 1.0, size=(10_000, len(names))).tolist()
    rows = [{"device_id": f"D{i}", "event_timestamp": TS, **dict(zip(names, vals))} for i, vals in enumerate(values)]
    rows[17]["p042"] = "bad"
    rows[99]["idd"] = 7  # an int: that column is rewritten as floats
    result = validate_rows(device_parametrics, rows, now=NOW)
    assert [r["row"] for r in result.rejected] == [17]
    assert len(result.accepted) == 9_999
    assert result.accepted[98]["idd"] == 7.0
