"""Request validation of /predict, /predict/batch and /feedback: every problem, with its field."""

from __future__ import annotations

import pytest

from mlops.api_errors import ApiError, parse_json_body
from mlops.models.feedback import parse_feedback
from mlops.models.predict_request import MAX_BATCH_ROWS, PredictRow, parse_batch, parse_predict


def problems(call, *args) -> tuple[int, str, dict[str, str]]:
    with pytest.raises(ApiError) as err:
        call(*args)
    body = err.value.body()
    return err.value.status, body["error"], {d["field"]: d["problem"] for d in body["details"]}


def test_a_valid_row_by_features_or_entity() -> None:
    req = parse_predict({"model": "yield", "features": {"vdd": 1.2, "idd": 400, "p000": None}})
    assert (req.model, req.version, req.alias, req.batch) == ("yield", None, None, False)
    assert req.rows == (PredictRow(None, {"vdd": 1.2, "idd": 400, "p000": None}, {}),)
    req = parse_predict({"model": "yield", "entity_id": 1042, "request": {"vdd_setpoint": 1.1}, "alias": "challenger"})
    assert req.rows[0].entity_id == "1042" and req.rows[0].features is None and req.alias == "challenger"
    assert parse_predict({"model": "yield", "features": {}, "version": "3"}).version == 3


def test_non_finite_literals_are_named_not_swallowed() -> None:
    body = parse_json_body('{"model": "yield", "features": {"a": NaN, "b": Infinity, "c": -Infinity, "d": 1e999}}')
    status, code, fields = problems(parse_predict, body)
    assert (status, code) == (400, "invalid_request")
    assert fields == {"features.a": "NaN is not allowed; send null for a missing value", "features.b": "must be finite",
                      "features.c": "must be finite", "features.d": "must be finite"}


@pytest.mark.parametrize(("body", "fields"), [
    ([1, 2], {"body": "expected a JSON object, got an array"}),
    ({"features": {"a": 1}}, {"model": "required"}),
    ({"model": "yield"}, {"features": "give features, or an entity_id to read them from the online store"}),
    ({"model": "yield", "features": [1, 2]}, {"features": "expected an object of feature values, got an array"}),
    ({"model": "yield", "features": {"a": "1", "b": True, "c": [1], "d": {"x": 1}}},
     {"features.a": "expected a number or null, got a string", "features.b": "expected a number or null, got a boolean",
      "features.c": "expected a number or null, got an array", "features.d": "expected a number or null, got an object"}),
    ({"model": "yield", "entity_id": "", "extra": 1},
     {"entity_id": "expected a non-empty string (at most 256 characters) or an integer", "extra": "unknown field"}),
    ({"model": "yield", "features": {}, "version": 0}, {"version": "expected a positive integer version"}),
    ({"model": "yield", "features": {}, "version": True}, {"version": "expected a positive integer version"}),
    ({"model": "yield", "features": {}, "alias": "1st"},
     {"alias": "must be 1-64 characters of a-z, 0-9, '_' or '-', starting with a letter"}),
    ({"model": "yield", "features": {}, "version": 1, "alias": "champion"}, {"alias": "give version or alias, not both"}),
    ({"model": "yield", "features": {}, "request": {"vdd_setpoint": "high"}},
     {"request.vdd_setpoint": "expected a number or null, got a string"}),
])
def test_single_row_problems(body, fields) -> None:
    assert problems(parse_predict, body) == (400, "invalid_request", fields)


def test_bodies_that_are_not_json() -> None:
    assert problems(parse_json_body, "{nope")[2]["body"].startswith("not valid JSON")
    assert problems(parse_json_body, "")[2] == {"body": "a JSON object is required"}
    assert problems(parse_json_body, None)[2] == {"body": "a JSON object is required"}


def test_batches() -> None:
    req = parse_batch({"model": "yield", "rows": [{"features": {"a": 1.0}}, {"entity_id": "D1"}]})
    assert req.batch and len(req.rows) == 2 and req.rows[1].entity_id == "D1"
    rows = [{"features": {"a": 1.0}}, {"features": {"a": "x"}}, {"model": "yield"}, 7]
    assert problems(parse_batch, {"model": "yield", "rows": rows}) == (400, "invalid_request", {
        "rows[1].features.a": "expected a number or null, got a string",
        "rows[2].model": "unknown field",
        "rows[2].features": "give features, or an entity_id to read them from the online store",
        "rows[3]": "expected an object, got int",
    })
    assert problems(parse_batch, {"model": "yield"})[2] == {"rows": "required"}
    assert problems(parse_batch, {"model": "yield", "rows": []})[2] == {"rows": "expected a non-empty array of rows"}


def test_the_batch_limit() -> None:
    assert len(parse_batch({"model": "yield", "rows": [{"features": {}}] * MAX_BATCH_ROWS}).rows) == MAX_BATCH_ROWS
    status, code, fields = problems(parse_batch, {"model": "yield", "rows": [{"features": {}}] * (MAX_BATCH_ROWS + 1)})
    assert (status, code) == (400, "batch_too_large")
    assert fields == {"rows": f"{MAX_BATCH_ROWS + 1} rows; the maximum is {MAX_BATCH_ROWS}"}


def test_feedback_requests() -> None:
    f = parse_feedback({"request_id": "r1", "label": True})
    assert (f.request_id, f.label, f.entity_id) == ("r1", 1, None)
    f = parse_feedback({"entity_id": 7, "timestamp": "2026-01-05T10:00:00+01:00", "label": 0, "model": "yield"})
    assert (f.entity_id, f.at, f.model) == ("7", "2026-01-05T09:00:00.000000Z", "yield")
    assert parse_feedback({"entity_id": "D1", "timestamp": 0, "label": 0}).at == "1970-01-01T00:00:00.000000Z"
    assert problems(parse_feedback, {"label": 3})[2] == {"label": "expected 0 or 1",
                                                         "request_id": "required (or give entity_id and timestamp)"}
    assert problems(parse_feedback, {"entity_id": "D1", "label": 1})[2] == {"timestamp": "required with entity_id"}
    assert problems(parse_feedback, {"entity_id": "D1", "timestamp": "2026-01-05T10:00:00", "label": 1})[2] == {
        "timestamp": "timestamp has no time zone; add an offset or 'Z'"}
    assert problems(parse_feedback, {"request_id": "r", "entity_id": "D1", "label": 1})[2] == {
        "entity_id": "give request_id, or entity_id with timestamp, not both"}
    assert problems(parse_feedback, {"request_id": "r", "label": 1.0})[2] == {"label": "expected 0 or 1"}
