"""The stored, versioned feature registry and per-view state, in the RegistryTable (pk, sk).

Items (all keys prefixed ``fs#`` so that the model registry can share the table)::

    pk = fs#catalog              sk = <kind>#<name>     the latest version of a definition:
                                                        version, content_hash, definition (canonical
                                                        JSON), registered_at, versions (history)
    pk = fs#<kind>#<name>        sk = v#000001, ...     every version ever registered, never rewritten
    pk = fs#catalog              sk = state#<view>      last_event_us, last_ingested_us,
                                                        rows_ingested, materialized_until_us

``kind`` is ``entity``, ``feature_view`` or ``on_demand_feature_view``. Listing everything is
one Query of ``fs#catalog``.

**Versioning.** :meth:`RegistryStore.apply` registers a definition as version n+1 exactly when
its content hash (:func:`mlops.features.definitions.content_hash`) differs from the latest
one: a schema change is a new version, never an overwrite. The new version item and the moved
"latest" pointer are written in one transaction, conditional on nobody having registered a
version in between (concurrent appliers retry and then see the winner's version). A definition
whose hash equals an *older* version is ``"outdated"`` and not registered again (an old
container after a deployment must not flip the registry back); a deliberate revert passes
``allow_revert=True`` and gets a new version.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from mlops import aws
from mlops.features.definitions import (
    Definition,
    Entity,
    FeatureView,
    OnDemandFeatureView,
    canonical_json,
    content_hash,
    diff,
)
from mlops.features.timestamps import as_micros, to_datetime

CATALOG_PK = "fs#catalog"
KINDS: dict[type, str] = {Entity: "entity", FeatureView: "feature_view", OnDemandFeatureView: "on_demand_feature_view"}
_APPLY_ATTEMPTS = 5


def kind_of(defn: Definition) -> str:
    """``entity``, ``feature_view`` or ``on_demand_feature_view``."""
    return KINDS[type(defn)]


def _iso(micros: int | None) -> str | None:
    return None if micros is None else to_datetime(micros).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class VersionInfo:
    """One registered version of a definition."""

    version: int
    content_hash: str
    registered_at_us: int


@dataclass(frozen=True)
class RegisteredDefinition:
    """The latest version of a definition, with its history."""

    kind: str
    name: str
    version: int
    content_hash: str
    definition: dict[str, Any]
    registered_at_us: int
    versions: tuple[VersionInfo, ...] = ()

    def summary(self) -> dict[str, Any]:
        """What the listing shows: the version, its hash and history, and the definition's
        shape (keys, TTL and typed features for views). Registration times stay out, so the
        answer is the same wherever and whenever the same definitions were applied."""
        d = self.definition
        out: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "content_hash": self.content_hash,
            "versions": [{"version": v.version, "content_hash": v.content_hash} for v in self.versions],
            "description": d.get("description", ""),
        }
        if self.kind == "entity":
            out.update(join_key=d["join_key"], value_type=d["value_type"])
        elif self.kind == "feature_view":
            out.update(
                entities=[e["name"] for e in d["entities"]],
                join_keys=[e["join_key"] for e in d["entities"]],
                ttl_seconds=d["ttl_seconds"],
                source=d["source"],
                tags=d.get("tags", {}),
                features=[{"name": f["name"], "dtype": f["dtype"]} for f in d["schema"]],
            )
        else:
            out.update(
                sources=[s.get("view") or s.get("name") for s in d["sources"]],
                inputs=[f["name"] for s in d["sources"] for f in s["fields"]],
                transform=d["transform"],
                tags=d.get("tags", {}),
                features=[{"name": f["name"], "dtype": f["dtype"]} for f in d["schema"]],
            )
        return out


@dataclass(frozen=True)
class ApplyResult:
    """What :meth:`RegistryStore.apply` did with one definition: ``created`` (version 1),
    ``updated`` (a new version; ``changes`` says what changed), ``unchanged``, or ``outdated``
    (the content of an older version, whose number ``version`` is: not registered again, the
    registry keeps its newer latest version). ``version`` and ``content_hash`` always describe
    the applied definition."""

    kind: str
    name: str
    status: str
    version: int
    content_hash: str
    changes: dict[str, Any] | None = None


@dataclass(frozen=True)
class ViewState:
    """What the store knows of a view's data: the newest event time ingested (freshness),
    when it was last ingested, how many rows, and how far it has been materialized."""

    view: str
    last_event_us: int | None = None
    last_ingested_us: int | None = None
    rows_ingested: int = 0
    materialized_until_us: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "last_event": _iso(self.last_event_us),
            "last_ingested": _iso(self.last_ingested_us),
            "rows_ingested": self.rows_ingested,
            "materialized_until": _iso(self.materialized_until_us),
        }


@dataclass
class Listing:
    """Everything registered (latest versions) and every view's state."""

    definitions: list[RegisteredDefinition] = field(default_factory=list)
    states: dict[str, ViewState] = field(default_factory=dict)

    def of_kind(self, kind: str) -> list[RegisteredDefinition]:
        return sorted((d for d in self.definitions if d.kind == kind), key=lambda d: d.name)


def _n(item: Mapping[str, Any], name: str) -> int | None:
    value = item.get(name)
    return None if value is None else int(value["N"])


def _registered(item: Mapping[str, Any]) -> RegisteredDefinition:
    versions = tuple(VersionInfo(v["version"], v["content_hash"], v["registered_at_us"])
                     for v in json.loads(item["versions"]["S"]))
    return RegisteredDefinition(
        item["kind"]["S"], item["name"]["S"], int(item["version"]["N"]), item["content_hash"]["S"],
        json.loads(item["definition"]["S"]), int(item["registered_at_us"]["N"]), versions,
    )


class RegistryStore:
    """The feature registry and view state in the RegistryTable."""

    def __init__(self, table_name: str, *, client: Any = None) -> None:
        self.table_name = table_name
        self._ddb = client or aws.client("dynamodb")  # retries and timeouts: mlops.aws

    @classmethod
    def from_env(cls, **kwargs: Any) -> "RegistryStore":
        """The registry in the table named by ``REGISTRY_TABLE``."""
        return cls(os.environ["REGISTRY_TABLE"], **kwargs)

    # -- definitions --------------------------------------------------------------------------
    def get(self, kind: str, name: str) -> RegisteredDefinition | None:
        """The latest registered version of a definition, or None."""
        item = self._ddb.get_item(
            TableName=self.table_name, Key={"pk": {"S": CATALOG_PK}, "sk": {"S": f"{kind}#{name}"}},
            ConsistentRead=True,
        ).get("Item")
        return _registered(item) if item else None

    def definition(self, kind: str, name: str, version: int) -> dict[str, Any] | None:
        """The canonical dict of one registered version (rebuild it with ``from_dict``)."""
        item = self._ddb.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": f"fs#{kind}#{name}"}, "sk": {"S": f"v#{version:06d}"}},
        ).get("Item")
        return json.loads(item["definition"]["S"]) if item else None

    def apply(self, definitions: Iterable[Definition], *, now: datetime | int,
              allow_revert: bool = False) -> list[ApplyResult]:
        """Register each definition whose content changed (see the module docstring). One Query
        reads what is registered; only changed definitions cost more round trips."""
        registered = {f"{d.kind}#{d.name}": d for d in self.listing().definitions}
        out = []
        for defn in definitions:
            current = registered.get(f"{kind_of(defn)}#{defn.name}")
            digest = content_hash(defn)
            if current is not None and current.content_hash == digest:
                out.append(ApplyResult(current.kind, current.name, "unchanged", current.version, digest))
            else:
                out.append(self.apply_one(defn, now=now, allow_revert=allow_revert))
        return out

    def apply_one(self, defn: Definition, *, now: datetime | int, allow_revert: bool = False) -> ApplyResult:
        """Register one definition if its content hash is new; see the module docstring."""
        kind, name = kind_of(defn), defn.name
        digest = content_hash(defn)
        now_us = as_micros(now)
        for _ in range(_APPLY_ATTEMPTS):
            current = self.get(kind, name)
            if current is not None and current.content_hash == digest:
                return ApplyResult(kind, name, "unchanged", current.version, digest)
            older = [v.version for v in (current.versions if current else ()) if v.content_hash == digest]
            if older and not allow_revert:
                return ApplyResult(kind, name, "outdated", older[-1], digest)
            version = 1 if current is None else current.version + 1
            changes = diff(current.definition, defn).to_dict() if current is not None else None
            history = [{"version": v.version, "content_hash": v.content_hash, "registered_at_us": v.registered_at_us}
                       for v in (current.versions if current else ())]
            history.append({"version": version, "content_hash": digest, "registered_at_us": now_us})
            definition = canonical_json(defn)
            version_item = {
                "pk": {"S": f"fs#{kind}#{name}"}, "sk": {"S": f"v#{version:06d}"},
                "kind": {"S": kind}, "name": {"S": name}, "version": {"N": str(version)},
                "content_hash": {"S": digest}, "definition": {"S": definition},
                "registered_at_us": {"N": str(now_us)},
            }
            if changes is not None:
                version_item["changes"] = {"S": json.dumps(changes, sort_keys=True, default=str)}
            latest_item = {
                "pk": {"S": CATALOG_PK}, "sk": {"S": f"{kind}#{name}"},
                "kind": {"S": kind}, "name": {"S": name}, "version": {"N": str(version)},
                "content_hash": {"S": digest}, "definition": {"S": definition},
                "registered_at_us": {"N": str(now_us)}, "versions": {"S": json.dumps(history)},
            }
            latest_put: dict[str, Any] = {"TableName": self.table_name, "Item": latest_item}
            if current is None:
                latest_put["ConditionExpression"] = "attribute_not_exists(pk)"
            else:
                latest_put["ConditionExpression"] = "#v = :prev"
                latest_put["ExpressionAttributeNames"] = {"#v": "version"}
                latest_put["ExpressionAttributeValues"] = {":prev": {"N": str(current.version)}}
            try:
                self._ddb.transact_write_items(TransactItems=[
                    {"Put": {"TableName": self.table_name, "Item": version_item,
                             "ConditionExpression": "attribute_not_exists(pk)"}},
                    {"Put": latest_put},
                ])
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("TransactionCanceledException",
                                                                  "ConditionalCheckFailedException"):
                    continue  # someone registered a version in between: look again
                raise
            return ApplyResult(kind, name, "created" if current is None else "updated", version, digest, changes)
        raise RuntimeError(f"could not register {kind} {name!r}: {_APPLY_ATTEMPTS} concurrent updates in a row")

    def listing(self) -> Listing:
        """Every definition's latest version and every view's state (one paginated Query)."""
        out = Listing()
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": CATALOG_PK}},
            "ConsistentRead": True,
        }
        for page in self._ddb.get_paginator("query").paginate(**kwargs):
            for item in page.get("Items", []):
                sk = item["sk"]["S"]
                if sk.startswith("state#"):
                    state = _state(sk.removeprefix("state#"), item)
                    out.states[state.view] = state
                else:
                    out.definitions.append(_registered(item))
        return out

    # -- view state ---------------------------------------------------------------------------
    def _state_key(self, view: str) -> dict[str, Any]:
        return {"pk": {"S": CATALOG_PK}, "sk": {"S": f"state#{view}"}}

    def state(self, view: str) -> ViewState:
        """The view's state (empty when nothing was ingested yet)."""
        item = self._ddb.get_item(TableName=self.table_name, Key=self._state_key(view), ConsistentRead=True).get("Item")
        return _state(view, item) if item else ViewState(view)

    def record_ingest(self, view: str, *, last_event: datetime | int, rows: int, now: datetime | int) -> None:
        """Note an ingestion: the newest event time moves forward only; counts add up."""
        values = {":now": {"N": str(as_micros(now))}, ":n": {"N": str(int(rows))}}
        try:
            self._ddb.update_item(
                TableName=self.table_name, Key=self._state_key(view),
                UpdateExpression="SET last_ingested_us = :now, last_event_us = :t ADD rows_ingested :n",
                ConditionExpression="attribute_not_exists(last_event_us) OR last_event_us < :t",
                ExpressionAttributeValues={**values, ":t": {"N": str(as_micros(last_event))}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            self._ddb.update_item(
                TableName=self.table_name, Key=self._state_key(view),
                UpdateExpression="SET last_ingested_us = :now ADD rows_ingested :n",
                ExpressionAttributeValues=values,
            )

    def mark_materialized(self, view: str, until: datetime | int) -> bool:
        """Move the view's materialization watermark forward to ``until`` (never back);
        False when it already was at or past it."""
        try:
            self._ddb.update_item(
                TableName=self.table_name, Key=self._state_key(view),
                UpdateExpression="SET materialized_until_us = :u",
                ConditionExpression="attribute_not_exists(materialized_until_us) OR materialized_until_us < :u",
                ExpressionAttributeValues={":u": {"N": str(as_micros(until))}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return False
        return True


def _state(view: str, item: Mapping[str, Any]) -> ViewState:
    return ViewState(view, _n(item, "last_event_us"), _n(item, "last_ingested_us"),
                     _n(item, "rows_ingested") or 0, _n(item, "materialized_until_us"))
