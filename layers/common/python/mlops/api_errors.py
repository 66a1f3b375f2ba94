"""The API's error answers: one shape for every 4xx/5xx a handler returns on purpose.

Every error body is ``{"error": code, "message": text, "details": [{"field", "problem"}]}``:
``code`` is a stable machine-readable word (``invalid_request``, ``invalid_features``,
``missing_features``, ``batch_too_large``, ``model_not_found``, ``version_not_found``,
``alias_not_found``, ``not_deployed``, ``conflict``, ...), ``message`` a sentence for
people, and ``details`` names each offending field (``features.p03``, ``rows[2].entity_id``)
with what is wrong with it, so a client can fix all of its mistakes in one round trip.
Pure: no AWS, no Powertools; handlers turn an `ApiError` into their framework's response.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ApiError(Exception):
    """An error answer: HTTP status, code, message and field-level details."""

    status: int
    code: str
    message: str
    details: list[dict[str, str]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        """The JSON body of the answer."""
        return {"error": self.code, "message": self.message, "details": list(self.details), **self.extra}

    @classmethod
    def invalid(cls, problems: Mapping[str, str] | Iterable[tuple[str, str]], *,
                code: str = "invalid_request", message: str | None = None, **extra: Any) -> "ApiError":
        """A 400 listing ``{field: problem}``, fields in the order given."""
        pairs = list(problems.items()) if isinstance(problems, Mapping) else list(problems)
        details = [{"field": f, "problem": p} for f, p in pairs]
        if message is None:
            message = "; ".join(f"{f}: {p}" for f, p in pairs) or "invalid request"
        return cls(400, code, message, details, dict(extra))

    @classmethod
    def not_found(cls, code: str, message: str, field_name: str | None = None) -> "ApiError":
        """A 404; ``field_name`` names the request field that pointed at nothing."""
        details = [{"field": field_name, "problem": "not found"}] if field_name else []
        return cls(404, code, message, details)

    @classmethod
    def conflict(cls, message: str, field_name: str | None = None, problem: str = "conflict") -> "ApiError":
        """A 409: the request is well formed but contradicts what is stored."""
        details = [{"field": field_name, "problem": problem}] if field_name else []
        return cls(409, "conflict", message, details)


def _non_finite(token: str) -> float:
    return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[token]


def parse_json_body(body: str | bytes | None, *, required: bool = True) -> Any:
    """Parse a request body as JSON; ApiError 400 (field ``body``) when it is not.

    The literals ``NaN``, ``Infinity`` and ``-Infinity`` (which Python's json accepts but JSON
    does not) come back as floats, so that validation can name the field that holds them.
    """
    if body is None or (isinstance(body, (str, bytes)) and not body.strip()):
        if required:
            raise ApiError.invalid({"body": "a JSON object is required"})
        return None
    try:
        return json.loads(body, parse_constant=_non_finite)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError.invalid({"body": f"not valid JSON ({exc})"}) from None


def check_keys(obj: Mapping[str, Any], *, required: Iterable[str] = (), optional: Iterable[str] = (),
               prefix: str = "") -> dict[str, str]:
    """Problems with an object's keys: each missing required key and each unknown key."""
    allowed = set(required) | set(optional)
    problems: dict[str, str] = {}
    for key in required:
        if key not in obj:
            problems[prefix + key] = "required"
    for key in obj:
        if key not in allowed:
            problems[prefix + str(key)] = "unknown field"
    return problems
