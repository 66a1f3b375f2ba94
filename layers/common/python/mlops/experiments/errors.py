"""Errors raised by the experimentation logic, each naming the field that is wrong.

The API layer turns an :class:`ExperimentError` into a 4xx answer (``status``) whose body,
:meth:`ExperimentError.to_dict`, has the shape every API error has here
(``{"error": code, "message", "details": [{"field", "problem"}]}``), so that a client knows
exactly which part of its request to fix. :class:`UnknownExperiment` is the 404 for an id the
store lacks. :class:`InsufficientData` is the one error that is not the client's fault: a
comparison cannot be computed yet (too few observations, zero variance); the analysis reports
it per comparison instead of failing the whole request.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class ExperimentError(ValueError):
    """Bad input to the experimentation logic; ``field`` names what to fix.

    ``errors`` lists every problem found (``[{"field", "message"}]``) when a validator collects
    more than one; ``field`` and the message start with the first. ``status`` and ``code`` are
    the HTTP status and the machine-readable code of the API answer (:meth:`to_dict`).
    """

    status = 400
    code = "invalid_experiment"

    def __init__(self, field: str, message: str, errors: Sequence[dict[str, str]] | None = None) -> None:
        self.field = field
        self.message = message
        self.errors: list[dict[str, str]] = list(errors) if errors else [{"field": field, "message": message}]
        text = f"{field}: {message}"
        if len(self.errors) > 1:
            text += "; " + "; ".join(f"{e['field']}: {e['message']}" for e in self.errors[1:])
        super().__init__(text)

    def to_dict(self) -> dict[str, object]:
        """The JSON body of the 4xx answer, in the API's error shape (:mod:`mlops.api_errors`):
        ``{"error": code, "message", "details": [{"field", "problem"}]}``."""
        return {"error": self.code, "message": str(self),
                "details": [{"field": e["field"], "problem": e["message"]} for e in self.errors]}


class UnknownExperiment(ExperimentError):
    """No experiment with this id (the store raises it; the API answers 404)."""

    status = 404
    code = "experiment_not_found"

    def __init__(self, experiment_id: str) -> None:
        super().__init__("experiment_id", f"no experiment {experiment_id!r}")


class InsufficientData(ExperimentError):
    """A statistic cannot be computed from the data yet (e.g. fewer than 2 observations)."""

    status = 409
    code = "insufficient_data"


def check_probability(field: str, value: object, *, low: float = 0.0, high: float = 1.0,
                      low_open: bool = True, high_open: bool = True) -> float:
    """``value`` as a float inside (low, high) (bounds open or closed), else an error naming ``field``."""
    number = check_number(field, value)
    below = number <= low if low_open else number < low
    above = number >= high if high_open else number > high
    if below or above:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ExperimentError(field, f"must be in {lo}{low:g}, {high:g}{hi}, got {number!r}")
    return number


def check_number(field: str, value: object) -> float:
    """``value`` as a finite float (bools and strings are refused), else an error naming ``field``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ExperimentError(field, f"must be a number, got {type(value).__name__} {value!r}")
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        raise ExperimentError(field, f"must be finite, got {number!r}")
    return number


def check_choice(field: str, value: object, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``, else an error naming ``field`` and the choices."""
    if not isinstance(value, str) or value not in choices:
        raise ExperimentError(field, f"must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value
