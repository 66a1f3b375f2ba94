"""What a client may send to ``POST /predict`` and ``POST /predict/batch``, checked field by field.

One row (``/predict``)::

    {"model": "yield",                       required
     "entity_id": "D-1042",                  features from the online store (+ on-demand features)
     "features": {"p00": 0.3, "p01": null},  or explicit features (null = missing)
     "request": {"vdd_setpoint": 1.1},       request-time inputs of on-demand features (optional)
     "version": 3 | "alias": "challenger"}   pin a version or an alias (optional; default: the
                                             deployment's routing)

A row needs ``entity_id`` or ``features`` (both: the explicit features are used, and the entity
id routes and labels the prediction). Feature values are numbers or null; NaN and infinities
are refused (send null for a missing value). A batch is ``{"model", "rows": [row, ...]}`` plus
an optional ``version``/``alias``, each row without ``model``; at most `MAX_BATCH_ROWS` rows.

`parse_predict` and `parse_batch` return the checked request or raise `ApiError` 400 listing
every problem with its field (``features.p01``, ``rows[3].entity_id``). Whether the features
match the model (missing, unexpected) is checked later against the model's signature. Pure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops.api_errors import ApiError, check_keys
from mlops.models.registry import alias_problem, model_name_problem, parse_version

#: The largest batch ``POST /predict/batch`` takes (documented in the API; more is a 400).
MAX_BATCH_ROWS = 100
MAX_FEATURES = 1000
_ROW_KEYS = ("entity_id", "features", "request")
_PIN_KEYS = ("version", "alias")


@dataclass(frozen=True)
class PredictRow:
    """One row to score: explicit features and/or an entity id, plus request-time inputs."""

    entity_id: str | None = None
    features: Mapping[str, Any] | None = None
    request: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PredictRequest:
    """A checked prediction request: the model, how the version is chosen, and its rows."""

    model: str
    rows: tuple[PredictRow, ...]
    version: int | None = None
    alias: str | None = None
    batch: bool = False


def value_problem(value: Any) -> str | None:
    """Why a feature value is unusable, or None (numbers and null are fine)."""
    kind = type(value)
    if value is None or kind is int:
        return None
    if kind is float:
        if math.isnan(value):
            return "NaN is not allowed; send null for a missing value"
        if math.isinf(value):
            return "must be finite"
        return None
    if kind is bool:
        return "expected a number or null, got a boolean"
    return f"expected a number or null, got {_json_type(value)}"


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string"}.get(type(value), type(value).__name__)


def _check_values(obj: Any, prefix: str, problems: dict[str, str], *, what: str) -> dict[str, Any] | None:
    if not isinstance(obj, dict):
        problems[prefix.rstrip(".")] = f"expected an object of {what}, got {_json_type(obj)}"
        return None
    if len(obj) > MAX_FEATURES:
        problems[prefix.rstrip(".")] = f"{len(obj)} entries; at most {MAX_FEATURES}"
        return None
    for name, value in obj.items():
        problem = value_problem(value)
        if problem:
            problems[prefix + name] = problem
    return obj


def _row(obj: Any, prefix: str, problems: dict[str, str], extra_allowed: tuple[str, ...] = ()) -> PredictRow | None:
    if not isinstance(obj, dict):
        problems[prefix.rstrip(".") or "body"] = f"expected an object, got {_json_type(obj)}"
        return None
    problems.update(check_keys(obj, optional=_ROW_KEYS + extra_allowed, prefix=prefix))
    entity = obj.get("entity_id")
    if entity is not None:
        if type(entity) is int:
            entity = str(entity)
        elif not isinstance(entity, str) or not entity or len(entity) > 256:
            problems[prefix + "entity_id"] = "expected a non-empty string (at most 256 characters) or an integer"
            entity = None
    features = None
    if "features" in obj:
        features = _check_values(obj["features"], prefix + "features.", problems, what="feature values")
    request = {}
    if "request" in obj:
        request = _check_values(obj["request"], prefix + "request.", problems, what="request values") or {}
    if "entity_id" not in obj and "features" not in obj:
        problems[prefix + "features"] = "give features, or an entity_id to read them from the online store"
    return PredictRow(entity_id=entity, features=features, request=request)


def _pins(body: Mapping[str, Any], problems: dict[str, str]) -> tuple[int | None, str | None]:
    version = alias = None
    if "version" in body and "alias" in body:
        problems["alias"] = "give version or alias, not both"
    if "version" in body:
        version = parse_version(body["version"])
        if version is None:
            problems["version"] = "expected a positive integer version"
    if "alias" in body:
        problem = alias_problem(body["alias"])
        if problem:
            problems["alias"] = problem
        else:
            alias = body["alias"]
    return version, alias


def _model(body: Mapping[str, Any], problems: dict[str, str]) -> str:
    if "model" not in body:
        problems["model"] = "required"
        return ""
    problem = model_name_problem(body["model"])
    if problem:
        problems["model"] = problem
        return ""
    return body["model"]


def parse_predict(body: Any) -> PredictRequest:
    """Check a ``POST /predict`` body; ApiError 400 with every problem otherwise."""
    if not isinstance(body, dict):
        raise ApiError.invalid({"body": f"expected a JSON object, got {_json_type(body)}"})
    problems: dict[str, str] = {}
    model = _model(body, problems)
    version, alias = _pins(body, problems)
    row = _row(body, "", problems, extra_allowed=("model",) + _PIN_KEYS)
    if problems or row is None:
        raise ApiError.invalid(problems)
    return PredictRequest(model=model, rows=(row,), version=version, alias=alias)


def parse_batch(body: Any, max_rows: int = MAX_BATCH_ROWS) -> PredictRequest:
    """Check a ``POST /predict/batch`` body; ApiError 400 (``batch_too_large`` past
    ``max_rows``) with every problem otherwise."""
    if not isinstance(body, dict):
        raise ApiError.invalid({"body": f"expected a JSON object, got {_json_type(body)}"})
    rows_in = body.get("rows")
    if isinstance(rows_in, list) and len(rows_in) > max_rows:
        raise ApiError.invalid({"rows": f"{len(rows_in)} rows; the maximum is {max_rows}"},
                               code="batch_too_large",
                               message=f"a batch takes at most {max_rows} rows, got {len(rows_in)}")
    problems: dict[str, str] = check_keys(body, required=("model", "rows"), optional=_PIN_KEYS)
    problems.pop("model", None)  # reported by _model
    model = _model(body, problems)
    version, alias = _pins(body, problems)
    rows: list[PredictRow] = []
    if "rows" in body:
        if not isinstance(rows_in, list) or not rows_in:
            problems["rows"] = "expected a non-empty array of rows"
        else:
            for i, obj in enumerate(rows_in):
                row = _row(obj, f"rows[{i}].", problems)
                if row is not None:
                    rows.append(row)
    if problems:
        raise ApiError.invalid(problems)
    return PredictRequest(model=model, rows=tuple(rows), version=version, alias=alias, batch=True)
