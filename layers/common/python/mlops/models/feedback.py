"""What a client may send to ``POST /feedback``: a ground-truth label for a logged prediction.

Either the prediction's request id::

    {"request_id": "c0ffee...", "label": 1}

or an entity and a time, which names the entity's latest prediction at or before that time
(optionally of one model)::

    {"entity_id": "D-1042", "timestamp": "2026-01-05T09:00:00Z", "label": 0, "model": "yield"}

``label`` is 0 or 1 (true/false are accepted). Joining is idempotent: the same label twice is
fine, a different label for the same prediction is a 409 conflict. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops.api_errors import ApiError, check_keys
from mlops.models.registry import model_name_problem, parse_time


@dataclass(frozen=True)
class FeedbackRequest:
    """A checked feedback request: which prediction (request id, or entity + time) and the label."""

    label: int
    request_id: str | None = None
    entity_id: str | None = None
    at: str | None = None
    model: str | None = None


def parse_feedback(body: Any) -> FeedbackRequest:
    """Check a ``POST /feedback`` body; ApiError 400 listing every problem otherwise."""
    if not isinstance(body, dict):
        raise ApiError.invalid({"body": "expected a JSON object"})
    problems = check_keys(body, required=("label",), optional=("request_id", "entity_id", "timestamp", "model"))
    label = body.get("label")
    if "label" in body:
        if label is True or label is False:
            label = int(label)
        elif type(label) is not int or label not in (0, 1):
            problems["label"] = "expected 0 or 1"
    request_id = body.get("request_id")
    entity_id = body.get("entity_id")
    at = None
    if request_id is not None:
        if not isinstance(request_id, str) or not request_id or len(request_id) > 256:
            problems["request_id"] = "expected a non-empty string"
        for other in ("entity_id", "timestamp"):
            if other in body:
                problems[other] = "give request_id, or entity_id with timestamp, not both"
    else:
        if entity_id is None:
            problems["request_id"] = "required (or give entity_id and timestamp)"
        else:
            if type(entity_id) is int:
                entity_id = str(entity_id)
            elif not isinstance(entity_id, str) or not entity_id or len(entity_id) > 256:
                problems["entity_id"] = "expected a non-empty string or an integer"
            if "timestamp" not in body:
                problems["timestamp"] = "required with entity_id"
            else:
                try:
                    at = parse_time(body["timestamp"])
                except ValueError as exc:
                    problems["timestamp"] = str(exc)
    model = body.get("model")
    if model is not None:
        problem = model_name_problem(model)
        if problem:
            problems["model"] = problem
    if problems:
        raise ApiError.invalid(problems)
    return FeedbackRequest(label=label, request_id=request_id, entity_id=entity_id, at=at, model=model)
