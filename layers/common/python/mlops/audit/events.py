"""What one audit event holds, and the checks a new one passes before it is chained.

An event says who (``actor``: an API key id, a function ARN, a state machine's execution) did
what (``action``, a dotted name such as ``alias.moved``) to which thing (``entity``, e.g.
``alias:yield/champion``), of which ``model`` if any, when (``at``, ISO-8601 UTC with
microseconds, so string order is time order), with the particulars in ``details`` (a JSON
object). Pure: no AWS. `chain` links events into records; `store` writes them.

>>> e = AuditEvent.create("alias.moved", "api-key:k1", model="yield",
...                       entity=alias_entity("yield", "champion"), details={"version": 3},
...                       at="2026-01-05T09:00:00Z")
>>> e.entity, e.at
('alias:yield/champion', '2026-01-05T09:00:00.000000Z')
>>> AuditEvent.create("Moved!", "", details={"x": float("nan")})
Traceback (most recent call last):
...
mlops.audit.events.AuditEventError: action: expected a dotted ...; actor: required; details: not JSON: Out of range...
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops.api_errors import check_keys
from mlops.models.registry import Clock, iso_utc, model_name_problem, parse_time, utc_now

# The actions the platform records (a new kind of change adds its name here).
REGISTRY_VERSION_REGISTERED = "registry.version_registered"
ALIAS_MOVED = "alias.moved"
ALIAS_REMOVED = "alias.removed"
APPROVAL_SET = "approval.set"
DEPLOYMENT_WEIGHTS = "deployment.weights"
ROLLOUT_DECISION = "rollout.decision"
RETRAINING_RUN = "retraining.run"
OFFLINE_READ = "offline.read"
ADMIN_API_CALL = "admin.api_call"
PREDICTION = "prediction"
ARTIFACT_REJECTED = "artifact.rejected"  # serving refused a version's artifact (mlops.models.artifact_alerts)
ACTIONS: tuple[str, ...] = (
    REGISTRY_VERSION_REGISTERED, ALIAS_MOVED, ALIAS_REMOVED, APPROVAL_SET, DEPLOYMENT_WEIGHTS,
    ROLLOUT_DECISION, RETRAINING_RUN, OFFLINE_READ, ADMIN_API_CALL, PREDICTION, ARTIFACT_REJECTED,
)

_ACTION = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
MAX_TEXT = 256
MAX_DETAILS_BYTES = 32 * 1024  # a DynamoDB item holds 400 KB; an audit record stays small
FIELDS = ("action", "actor", "model", "entity", "details", "at")


class AuditEventError(ValueError):
    """An event that cannot be recorded; ``problems`` maps each field to what is wrong."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.problems.items()))


def version_entity(model: str, version: int) -> str:
    """The entity of a model version: ``version:yield/3``."""
    return f"version:{model}/{version}"


def alias_entity(model: str, alias: str) -> str:
    """The entity of an alias: ``alias:yield/champion``."""
    return f"alias:{model}/{alias}"


def prediction_entity(request_id: str) -> str:
    """The entity of one scored row: ``prediction:<request id>``."""
    return f"prediction:{request_id}"


def _text_problem(value: Any, *, required: bool) -> str | None:
    if value is None:
        return "required" if required else None
    if not isinstance(value, str):
        return f"expected a string, got {type(value).__name__}"
    if not value and required:
        return "required"
    if not value or len(value) > MAX_TEXT:
        return f"expected 1-{MAX_TEXT} characters"
    return None


def _details_problem(details: Any) -> str | None:
    if not isinstance(details, Mapping):
        return f"expected a JSON object, got {type(details).__name__}"
    try:
        text = json.dumps(details, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        return f"not JSON: {exc}"
    if len(text.encode("utf-8")) > MAX_DETAILS_BYTES:
        return f"larger than {MAX_DETAILS_BYTES} bytes"
    return None


@dataclass(frozen=True)
class AuditEvent:
    """One thing that happened; build it with `create` (or `from_api`), which checks it."""

    action: str
    actor: str
    at: str
    model: str | None = None
    entity: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, action: str, actor: str, *, model: str | None = None, entity: str | None = None,
               details: Mapping[str, Any] | None = None, at: Any = None, clock: Clock = utc_now) -> "AuditEvent":
        """A checked event; ``at`` (a timestamp or ISO text) defaults to ``clock()``.
        Raises AuditEventError naming every bad field."""
        problems: dict[str, str] = {}
        if not isinstance(action, str) or not _ACTION.match(action) or len(action) > 64:
            problems["action"] = "expected a dotted lower-case name such as 'alias.moved'"
        problem = _text_problem(actor, required=True)
        if problem:
            problems["actor"] = problem
        if model is not None:
            problem = model_name_problem(model)
            if problem:
                problems["model"] = problem
        problem = _text_problem(entity, required=False)
        if problem:
            problems["entity"] = problem
        details = {} if details is None else details
        problem = _details_problem(details)
        if problem:
            problems["details"] = problem
        stamp = iso_utc(clock())
        if at is not None:
            try:
                stamp = parse_time(at)
            except ValueError as exc:
                problems["at"] = str(exc)
        if problems:
            raise AuditEventError(problems)
        return cls(action=action, actor=actor, at=stamp, model=model, entity=entity,
                   details=json.loads(json.dumps(details)))

    @classmethod
    def from_api(cls, obj: Any, *, clock: Clock = utc_now, prefix: str = "") -> "AuditEvent":
        """An event from its JSON form (`to_api`; ``at`` optional); problems are reported with
        ``prefix`` before each field name (e.g. ``record.``)."""
        if not isinstance(obj, Mapping):
            raise AuditEventError({prefix.rstrip(".") or "event": "expected a JSON object"})
        problems = check_keys(obj, required=("action", "actor"), optional=("model", "entity", "details", "at"))
        try:
            event = cls.create(obj.get("action"), obj.get("actor"), model=obj.get("model"),  # type: ignore[arg-type]
                               entity=obj.get("entity"), details=obj.get("details"), at=obj.get("at"), clock=clock)
        except AuditEventError as exc:
            problems = {**exc.problems, **problems}
            event = None
        if problems:
            raise AuditEventError({prefix + k: v for k, v in problems.items()})
        assert event is not None
        return event

    def content(self) -> dict[str, Any]:
        """The fields the record's hash covers (absent model/entity are null)."""
        return {"action": self.action, "actor": self.actor, "model": self.model, "entity": self.entity,
                "details": dict(self.details), "at": self.at}

    def to_api(self) -> dict[str, Any]:
        """JSON form."""
        return self.content()
