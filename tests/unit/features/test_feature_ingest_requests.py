"""Pure pieces of ingestion and lookup: entity keys, the latest row per entity, request and
file parsing, the outcome's status, lookup parameters, freshness."""

from __future__ import annotations

import doctest
import importlib
import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops.features.catalog import CATALOG
from mlops.features.definitions import Entity, FeatureView, Field
from mlops.features.errors import BadRequest, UnknownView
from mlops.features.freshness import freshness_report
from mlops.features.ingest import (
    MAX_REPORTED_ROWS,
    MAX_ROWS,
    object_key,
    outcome_status,
    parse_file,
    parse_ingest_request,
    rejection_details,
    rejection_error,
    view_of_key,
)
from mlops.features.keys import encode_entity, entity_values, latest_rows
from mlops.features.serving import parse_lookup
from mlops.features.yield_example import device_parametrics, tester_health

NOW = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
lot_wafer = FeatureView("wafer_map", [Entity("lot", "lot_id"), Entity("wafer", "wafer_id", "int")],
                        [Field("yield_pct", "float")], timedelta(days=1), "s")


@pytest.mark.parametrize("name", ["keys", "freshness"])
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(f"mlops.features.{name}"))
    assert result.attempted > 0 and result.failed == 0


# ------------------------------------------------------------------------------ entity keys


def test_entity_keys_name_the_join_keys_and_escape_separators() -> None:
    assert encode_entity(tester_health, "T1") == "tester_id=T1"
    assert encode_entity(lot_wafer, {"lot_id": "L|7", "wafer_id": 3}) == "lot_id=L%7C7|wafer_id=3"
    # one-to-one: values that contain the separators cannot collide with other keys
    assert encode_entity(lot_wafer, {"lot_id": "a=1|wafer_id=2", "wafer_id": 3}) != \
        encode_entity(lot_wafer, {"lot_id": "a", "wafer_id": 3})


@given(st.text(min_size=1), st.text(min_size=1))
def test_different_entities_never_share_a_key(a: str, b: str) -> None:
    if a != b:
        assert encode_entity(tester_health, a) != encode_entity(tester_health, b)


@pytest.mark.parametrize(("view", "entity", "message"), [
    (lot_wafer, "L1", "several join keys"),
    (lot_wafer, {"lot_id": "L1"}, "needs the join key 'wafer_id'"),
    (lot_wafer, {"lot_id": "L1", "wafer_id": "3"}, "must be a non-empty int"),
    (tester_health, "", "must be a non-empty str"),
    (tester_health, 7, "must be a non-empty str"),
])
def test_entity_keys_are_checked(view: FeatureView, entity: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        entity_values(view, entity)  # type: ignore[arg-type]


rows_strategy = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 5), st.floats(-10, 10)), max_size=30)


@settings(max_examples=200)
@given(rows_strategy)
def test_latest_row_per_entity_with_ties_to_the_last(rows: list[tuple[str, int, float]]) -> None:
    dicts = [{"tester_id": e, "event_timestamp": t, "contact_res_ohm": x} for e, t, x in rows]
    latest = latest_rows(tester_health, dicts)
    for entity in {e for e, _, _ in rows}:
        mine = [d for d in dicts if d["tester_id"] == entity]
        newest = max(d["event_timestamp"] for d in mine)
        expected = [d for d in mine if d["event_timestamp"] == newest][-1]  # ties: the last wins
        assert latest[f"tester_id={entity}"] is expected


# ---------------------------------------------------------------------------- the requests


def _body(**data: object) -> str:
    return json.dumps(data)


def test_a_good_request_names_its_view() -> None:
    request = parse_ingest_request(_body(view="tester_health", rows=[{"tester_id": "T1"}], all_or_nothing=True))
    assert request.view is tester_health and request.all_or_nothing and len(request.rows) == 1


@pytest.mark.parametrize(("body", "code", "details"), [
    (None, "invalid_body", [{"field": None, "problem": "empty body"}]),
    ("{not json", "invalid_json", None),
    ("[1, 2]", "invalid_body", [{"field": None, "problem": "expected an object, got list"}]),
    (_body(rows=[{}]), "invalid_request", [{"field": "view", "problem": "required"}]),
    (_body(view="tester_health", rows=[]), "invalid_request", [{"field": "rows", "problem": "must not be empty"}]),
    (_body(view="tester_health", rows={"a": 1}), "invalid_request",
     [{"field": "rows", "problem": "expected an array, got dict"}]),
    (_body(view="tester_health", rows=[{}], all_or_nothing="yes", extra=1), "invalid_request",
     [{"field": "extra", "problem": "unknown property"},
      {"field": "all_or_nothing", "problem": "expected a boolean, got str"}]),
    (_body(view="nope", rows=[{}]), "unknown_view", [{"field": "view", "problem": "no feature view named 'nope' "
                                                      "(known: device_parametrics, tester_health, device_outcomes)"}]),
    (_body(view="vdd_idd_ratio", rows=[{}]), "not_ingestible",
     [{"field": "view", "problem": "on-demand views cannot be ingested"}]),
])
def test_bad_requests_name_the_field_to_fix(body: str | None, code: str, details: list | None) -> None:
    with pytest.raises(BadRequest) as info:
        parse_ingest_request(body)
    assert info.value.code == code
    answer = info.value.to_dict()
    assert set(answer) == {"error", "message", "details"} and answer["error"] == code
    if details is not None:
        assert answer["details"] == details
    assert all(set(d) == {"field", "problem"} for d in answer["details"])


def test_too_many_rows_is_a_bad_request() -> None:
    with pytest.raises(BadRequest, match="malformed") as info:
        parse_ingest_request(_body(view="tester_health", rows=[{}] * (MAX_ROWS + 1)))
    assert info.value.details[0]["field"] == "rows"


def test_outcome_status_and_rejection_errors() -> None:
    rejected = [{"row": 1, "errors": [{"field": "vdd", "problem": "above max 5.0"},
                                      {"field": "idd", "problem": "required: missing value"}]}]
    assert outcome_status(2, [], False) == 200
    assert outcome_status(1, rejected, False) == 207
    assert outcome_status(0, rejected, False) == 400
    assert outcome_status(0, rejected, True) == 400
    assert rejection_details(rejected) == [{"row": 1, "field": "vdd", "problem": "above max 5.0"},
                                           {"row": 1, "field": "idd", "problem": "required: missing value"}]
    assert rejection_error(rejected, True, 2).code == "batch_rejected"
    assert rejection_error(rejected, False, 1).code == "invalid_rows"


# --------------------------------------------------------------------------------- the files


def test_files_are_read_by_their_suffix() -> None:
    csv_file = parse_file("incoming/tester_health/a.csv", b"tester_id,event_timestamp,status\nT1,2024-05-01T00:00:00Z,ok\n"
                                                          b"T2,2024-05-01T00:00:00Z,ok,extra\n")
    assert csv_file.from_text and csv_file.rows[0] == {"tester_id": "T1", "event_timestamp": "2024-05-01T00:00:00Z",
                                                       "status": "ok"}
    assert csv_file.rows[1] is None and csv_file.errors[1][0]["problem"] == "more cells than the header has columns"
    lines = parse_file("incoming/tester_health/b.jsonl", b'{"tester_id": "T1"}\n\n{oops\n{"tester_id": "T3"}\n')
    assert not lines.from_text and lines.rows[0] == {"tester_id": "T1"} and lines.rows[1] is None
    assert lines.errors[1][0]["problem"].startswith("not valid JSON") and lines.rows[2] == {"tester_id": "T3"}
    assert parse_file("x/c.json", b'{"rows": [{"a": 1}]}').rows == [{"a": 1}]
    assert parse_file("x/c.json", b'[{"a": 1}]').rows == [{"a": 1}]
    for name, data, code in [("x/d.parquet", b"PAR1", "unsupported_file"), ("x/e.csv", b"", "invalid_file"),
                             ("x/f.json", b'{"rows": 3}', "invalid_file"), ("x/g.csv", b"\xff\xfe", "invalid_file")]:
        with pytest.raises(BadRequest) as info:
            parse_file(name, data)
        assert info.value.code == code


def test_the_view_comes_from_the_key() -> None:
    assert view_of_key("incoming/tester_health/2024/05/a.csv") == "tester_health"
    assert object_key("incoming%2Ftester_health%2Fa+b.csv") == "incoming/tester_health/a b.csv"
    with pytest.raises(BadRequest, match="incoming/<view>/<file>"):
        view_of_key("incoming/a.csv")


# ---------------------------------------------------------------------------------- lookups


def test_lookup_parameters() -> None:
    request = parse_lookup("D1", {"views": "device_parametrics, tester_health", "tester_id": "T7"})
    assert request.entity == {"device_id": "D1", "tester_id": "T7"}
    assert [v.name for v in request.stored] == ["device_parametrics", "tester_health"]
    on_demand = parse_lookup("D1", {"views": "vdd_idd_ratio", "vdd_setpoint": "1.1"})
    assert [v.name for v in on_demand.stored] == ["device_parametrics"]  # read for the on-demand inputs
    assert on_demand.request_data == {"vdd_setpoint": 1.1}
    with pytest.raises(BadRequest) as info:
        parse_lookup("D1", {})
    assert info.value.details == [{"field": "views", "problem": "required: a comma-separated list of feature views"}]
    with pytest.raises(UnknownView) as unknown:
        parse_lookup("D1", {"views": "device_parametrics,nope"})
    assert unknown.value.details[0]["field"] == "views"
    with pytest.raises(BadRequest, match="vdd_setpoint must be a float"):
        parse_lookup("D1", {"views": "vdd_idd_ratio", "vdd_setpoint": "high"})


def test_catalog_lookups() -> None:
    assert CATALOG.feature_view("tester_health") is tester_health
    assert CATALOG.resolve(["device_parametrics", tester_health]) == [device_parametrics, tester_health]
    with pytest.raises(KeyError):
        CATALOG.feature_view("nope")


# -------------------------------------------------------------------------------- freshness


def test_freshness_alert_over_the_threshold() -> None:
    report = freshness_report(
        [device_parametrics, tester_health],
        {"tester_health": NOW - timedelta(minutes=90)},
        NOW,
        {"tester_health": timedelta(hours=1)},
    )
    parametrics, health = report
    assert parametrics.stale and parametrics.freshness is None and parametrics.threshold == device_parametrics.ttl
    assert health.stale and health.freshness == timedelta(minutes=90)
    assert health.to_dict() == {"view": "tester_health", "last_event": "2024-05-01T10:30:00Z",
                                "freshness_seconds": 5400.0, "threshold_seconds": 3600.0, "stale": True}
    [fresh] = freshness_report([tester_health], {"tester_health": NOW - timedelta(minutes=30)}, NOW,
                               {"tester_health": timedelta(hours=1)})
    assert not fresh.stale


def test_answers_list_a_bounded_number_of_rejected_rows() -> None:
    rejected = [{"row": i, "errors": [{"field": "vdd", "problem": "above max 5.0"}]} for i in range(MAX_REPORTED_ROWS + 100)]
    error = rejection_error(rejected, False, len(rejected))
    assert len(error.details) == MAX_REPORTED_ROWS and f"first {MAX_REPORTED_ROWS} listed" in error.message
    assert str(len(rejected)) in error.message
