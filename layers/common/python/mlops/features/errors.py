"""Errors of the feature store that a client can act on.

A :class:`BadRequest` carries a short machine-readable ``code``, a sentence for people and
field-level ``details`` (``[{"field": ..., "problem": ...}]``, with ``"row"`` for a row of a
batch); the API answers it as ``400 {"error": code, "message": ..., "details": [...]}``.
"""

from __future__ import annotations

from typing import Any


class FeatureStoreError(Exception):
    """Base class of the feature store's own errors."""


class BadRequest(FeatureStoreError):
    """A request the client has to fix; nothing was stored."""

    def __init__(self, code: str, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = list(details or [])

    def to_dict(self) -> dict[str, Any]:
        """The API's error body."""
        return {"error": self.code, "message": self.message, "details": self.details}


class UnknownView(BadRequest, KeyError):
    """A feature view name that the catalog does not define."""

    def __init__(self, name: str, known: list[str], field: str = "view") -> None:
        message = f"no feature view named {name!r} (known: {', '.join(known) or 'none'})"
        super().__init__("unknown_view", message, [{"field": field, "problem": message}])
        self.name = name

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message
