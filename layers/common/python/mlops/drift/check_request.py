"""What a drift check is asked to do: model, version, window and per-feature method overrides.

Two sources give the same fields: ``GET /drift/{model}?window_hours=24&version=3&methods=vdd:psi,idd:ks``
(query strings) and the hourly schedule's input ``{"model": "yield", "window_hours": 24,
"version": 3, "methods": {"vdd": "psi"}}`` (JSON; ``methods`` may also be the string form).
Every problem is reported at once, each under its field (``methods.vdd``), as the API's
400 answer (`mlops.api_errors.ApiError`). Overrides are checked against the baseline's
features and kinds later (:func:`method_problems`), once the baseline is read.

>>> parse_check_request({"model": "yield", "window_hours": "6", "methods": "vdd:psi, idd:ks"})
DriftCheckRequest(model='yield', version=None, window_hours=6.0, methods={'vdd': 'psi', 'idd': 'ks'})
>>> parse_check_request({"model": "yield", "window_hours": "0", "methods": "vdd"})
Traceback (most recent call last):
...
mlops.api_errors.ApiError: window_hours: expected a number of hours in (0, 720]; methods: expected feature:method pairs separated by commas, e.g. vdd:psi,idd:ks
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops.api_errors import ApiError, check_keys
from mlops.drift.baseline import CATEGORICAL, Baseline
from mlops.drift.chooser import METHODS, NUMERIC_ONLY
from mlops.models.registry import model_name_problem, parse_version

DEFAULT_WINDOW_HOURS = 24.0
MAX_WINDOW_HOURS = 720.0  # 30 days; the prediction log keeps 90
FIELDS = ("model", "version", "window_hours", "methods")


@dataclass(frozen=True)
class DriftCheckRequest:
    """A checked request; ``version`` None means the champion."""

    model: str
    version: int | None = None
    window_hours: float = DEFAULT_WINDOW_HOURS
    methods: Mapping[str, str] = field(default_factory=dict)


def _methods(value: Any, problems: dict[str, str]) -> dict[str, str]:
    if isinstance(value, str):
        pairs = [p.strip() for p in value.split(",") if p.strip()]
        if not all(p.count(":") == 1 and all(s.strip() for s in p.split(":")) for p in pairs):
            problems["methods"] = "expected feature:method pairs separated by commas, e.g. vdd:psi,idd:ks"
            return {}
        value = {k.strip(): v.strip() for k, v in (p.split(":") for p in pairs)}
    if not isinstance(value, Mapping):
        problems["methods"] = "expected an object of feature -> method, or feature:method pairs"
        return {}
    out: dict[str, str] = {}
    for name, method in value.items():
        if not isinstance(method, str) or method not in METHODS:
            problems[f"methods.{name}"] = f"unknown method {method!r}; expected one of {', '.join(sorted(METHODS))}"
        else:
            out[str(name)] = method
    return out


def parse_check_request(values: Mapping[str, Any]) -> DriftCheckRequest:
    """A request from query strings or a schedule input; ApiError 400 naming every bad field."""
    if not isinstance(values, Mapping):
        raise ApiError.invalid({"event": "expected an object with at least a model"})
    problems = check_keys(values, required=("model",), optional=FIELDS)
    model = values.get("model")
    if "model" in values:
        problem = model_name_problem(model)
        if problem:
            problems["model"] = problem
    version = None
    if values.get("version") is not None:
        version = parse_version(values["version"])
        if version is None:
            problems["version"] = "expected a positive integer version"
    window = DEFAULT_WINDOW_HOURS
    if values.get("window_hours") is not None:
        raw = values["window_hours"]
        try:
            window = float(raw) if not isinstance(raw, bool) else math.nan
        except (TypeError, ValueError):
            window = math.nan
        if not 0 < window <= MAX_WINDOW_HOURS:
            problems["window_hours"] = f"expected a number of hours in (0, {MAX_WINDOW_HOURS:g}]"
    methods = _methods(values.get("methods") or {}, problems)
    if problems:
        raise ApiError.invalid(problems)
    return DriftCheckRequest(str(model), version, window, methods)


def method_problems(methods: Mapping[str, str], baseline: Baseline, version: int) -> dict[str, str]:
    """Overrides that name no feature of the baseline, or a numeric-only test for a
    categorical feature: ``{"methods.<feature>": problem}``."""
    problems: dict[str, str] = {}
    for name, method in methods.items():
        base = baseline.features.get(name)
        if base is None:
            problems[f"methods.{name}"] = f"not a feature of version {version}'s baseline"
        elif base.kind == CATEGORICAL and method in NUMERIC_ONLY:
            problems[f"methods.{name}"] = f"{method} needs a numeric feature; {name} is categorical"
    return problems
