"""The model registry's plain data: names, versions, approval states and alias moves.

A registered model has numbered versions (1, 2, ...). Each version records its ONNX artifact
(S3 key and sha256), its input signature, metrics, training data reference, code version,
parameters, parent version, creation time, missing-value policy, threshold and approval status
(pending, approved or rejected). Aliases (``champion``, ``challenger``, ``shadow`` or any
name) point at versions; every move is an `AliasMove` kept forever, so that "which version did
alias X point at, at time T" is `alias_version_at` over the alias's history.

Everything here is pure (no AWS): `registry_store` reads and writes these values in DynamoDB
and S3. Times are ISO-8601 UTC strings with microseconds and a ``Z`` (fixed width, so string
order is time order).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from mlops.features.timestamps import TimestampError, parse_timestamp, to_datetime

APPROVAL_STATUSES: tuple[str, ...] = ("pending", "approved", "rejected")
#: Aliases that the router follows: moving one also updates the model's deployment record.
SERVING_ALIASES: tuple[str, ...] = ("champion", "challenger", "shadow")
MISSING_POLICIES: tuple[str, ...] = ("impute", "refuse")

_MODEL_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_ALIAS_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The wall clock, as an aware UTC datetime (the default clock)."""
    return datetime.now(timezone.utc)


def iso_utc(moment: datetime | int) -> str:
    """``2026-01-05T09:00:00.000000Z`` for an aware datetime or epoch microseconds."""
    dt = to_datetime(moment) if isinstance(moment, int) else moment.astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: Any) -> str:
    """A client's timestamp (ISO-8601 with offset, epoch seconds) as `iso_utc` text.

    Raises ValueError with a reason fit for the client.
    """
    try:
        return iso_utc(parse_timestamp(value))
    except TimestampError as exc:
        raise ValueError(str(exc)) from None
    except (OverflowError, OSError):  # epoch seconds past the years 1-9999
        raise ValueError(f"timestamp out of range: {str(value)[:40]}") from None


def model_name_problem(name: Any) -> str | None:
    """Why ``name`` cannot name a model, or None: lower-case letters, digits, ``_`` and ``-``,
    starting with a letter or digit, at most 64 characters."""
    if not isinstance(name, str):
        return f"expected a string, got {type(name).__name__}"
    if not _MODEL_NAME.match(name):
        return "must be 1-64 characters of a-z, 0-9, '_' or '-', starting with a letter or digit"
    return None


def alias_problem(alias: Any) -> str | None:
    """Why ``alias`` cannot name an alias, or None: like a model name but starting with a letter
    (so an alias is never mistaken for a version number)."""
    if not isinstance(alias, str):
        return f"expected a string, got {type(alias).__name__}"
    if not _ALIAS_NAME.match(alias):
        return "must be 1-64 characters of a-z, 0-9, '_' or '-', starting with a letter"
    return None


def parse_version(value: Any) -> int | None:
    """A version number from an int or a string of digits (``"3"``), or None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 1 else None
    if isinstance(value, str) and value.isdigit() and len(value) <= 10:
        number = int(value)
        return number if number >= 1 else None
    return None


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model, as stored.

    ``record`` holds the training record (`TrainedModel.to_record()`: signature, parameters,
    data reference, code version, environment, metrics, slices, threshold choice, parity);
    ``feature_source`` says where serving finds the features by entity id (None when the model
    only takes explicit features).
    """

    name: str
    version: int
    created_at: str
    approval_status: str
    sha256: str
    artifact_key: str
    artifact_bytes: int
    card_json_key: str
    card_markdown_key: str
    code_version: str
    parent_version: int | None
    missing_policy: str
    threshold: float
    record: Mapping[str, Any]
    feature_source: Mapping[str, Any] | None = None
    created_by: str = ""
    approval: Mapping[str, Any] = field(default_factory=dict)

    @property
    def signature(self) -> Mapping[str, Any]:
        """The input signature (`InputSignature.to_dict()` form)."""
        return self.record["signature"]

    @property
    def feature_names(self) -> list[str]:
        """The model's input features, in tensor order."""
        return [f["name"] for f in sorted(self.signature["features"], key=lambda f: f["position"])]

    def to_api(self, aliases: Sequence[str] = ()) -> dict[str, Any]:
        """The version as the registry API returns it."""
        rec = self.record
        return {
            "name": self.name,
            "version": self.version,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "approval_status": self.approval_status,
            "approval": dict(self.approval),
            "aliases": sorted(aliases),
            "artifact": {"key": self.artifact_key, "sha256": self.sha256, "bytes": self.artifact_bytes,
                         "format": "onnx"},
            "signature": rec.get("signature"),
            "missing_policy": self.missing_policy,
            "threshold": self.threshold,
            "threshold_choice": rec.get("threshold"),
            "metrics": rec.get("metrics"),
            "slices": rec.get("slices"),
            "training_data": rec.get("data"),
            "code_version": self.code_version,
            "parameters": rec.get("parameters"),
            "environment": rec.get("environment"),
            "parity": rec.get("parity"),
            "parent_version": self.parent_version,
            "feature_source": None if self.feature_source is None else dict(self.feature_source),
            "card": {"json_key": self.card_json_key, "markdown_key": self.card_markdown_key},
        }


@dataclass(frozen=True)
class AliasMove:
    """One move of an alias: to ``version`` (None when the alias was removed), from
    ``previous_version``, the alias's ``seq``-th move, at ``at``, by ``by``, because ``reason``."""

    model: str
    alias: str
    version: int | None
    previous_version: int | None
    seq: int
    at: str
    by: str = ""
    reason: str = ""

    def to_api(self) -> dict[str, Any]:
        """JSON form for the API and the Step Functions result."""
        return {
            "model": self.model, "alias": self.alias, "version": self.version,
            "previous_version": self.previous_version, "seq": self.seq, "at": self.at,
            "by": self.by, "reason": self.reason,
        }


def alias_version_at(history: Sequence[AliasMove], at: str) -> int | None:
    """The version an alias pointed at, at time ``at`` (`iso_utc` text), from its moves.

    Moves are applied in ``seq`` order; the answer is the version of the last move made at or
    before ``at`` (None before the first move or after a removal). Move times never decrease
    along ``seq`` (the store guarantees it), so the seq order and the time order agree.
    """
    answer: int | None = None
    for move in sorted(history, key=lambda m: m.seq):
        if move.at > at:
            break
        answer = move.version
    return answer


def next_move_time(now: datetime, previous_at: str | None) -> str:
    """The time to stamp a new move with: now, but never before the previous move (so that a
    writer whose clock lags cannot reorder the history)."""
    stamp = iso_utc(now)
    return previous_at if previous_at is not None and previous_at > stamp else stamp
