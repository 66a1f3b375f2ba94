"""The model registry in DynamoDB (RegistryTable) and S3 (ArtifactsBucket).

Items of RegistryTable (``pk``, ``sk``):

=======================================  =========================================================
``MODELS`` / ``<name>``                  the model: ``latest_version`` (the version counter),
                                         ``created_at``, ``updated_at``
``MODEL#<name>`` / ``VERSION#<n:010d>``  a version (see `ModelVersion`); the training record
                                         is JSON text in ``record``
``MODEL#<name>`` / ``ALIAS#<alias>``     where an alias points now, with its move count ``seq``
``MODEL#<name>`` / ``HISTORY#<alias>#<seq:010d>``  every move of the alias, kept forever
``MODEL#<name>`` / ``RUN#...``           retraining runs (written by the retraining state machine)
=======================================  =========================================================

Artifacts are content-addressed (``models/<name>/artifacts/<sha256>.onnx``), so uploading one
before its version number exists is harmless; the model card of version n lives at
``models/<name>/versions/<n>/card.json`` and ``card.md``.

Version numbers come from one TransactWriteItems: the model item's counter moves from n - 1 to
n (a conditional write) and the version item is created only if absent. Two concurrent
registrations cannot both win the same n: the loser's transaction is cancelled, it re-reads
the counter and tries n + 1. An alias moves with one TransactWriteItems too: the alias item
(conditional on the move count it was read at), its history item, a check that the target
version exists and is not rejected and, for ``champion``/``challenger``/``shadow``, the
model's deployment record that the inference function routes by.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from botocore.exceptions import ClientError

from mlops import aws
from mlops.api_errors import ApiError
from mlops.models.registry import (
    APPROVAL_STATUSES,
    MISSING_POLICIES,
    SERVING_ALIASES,
    AliasMove,
    Clock,
    ModelVersion,
    alias_version_at,
    iso_utc,
    next_move_time,
    utc_now,
)
from mlops.models.routing import DEPLOYMENT_SK

MODELS_PK = "MODELS"
MAX_ATTEMPTS = 50

CardWriter = Callable[[int, str], tuple[str, str]]  # (version, created_at) -> (json text, markdown)


class RegistryError(Exception):
    """A registry operation that cannot be done; ``status`` and ``code`` map it to HTTP."""

    status = 400
    code = "registry_error"
    field: str | None = None

    def to_api_error(self) -> ApiError:
        """The API answer: 404 for an unknown model, version or alias, 409, 500."""
        problem = "not found" if self.status == 404 else str(self)
        details = [{"field": self.field, "problem": problem}] if self.field else []
        return ApiError(self.status, self.code, str(self), details)


class ModelNotFound(RegistryError):
    status, code, field = 404, "model_not_found", "model"


class VersionNotFound(RegistryError):
    status, code, field = 404, "version_not_found", "version"


class AliasNotFound(RegistryError):
    status, code, field = 404, "alias_not_found", "alias"


class VersionRejected(RegistryError):
    status, code, field = 409, "conflict", "version"


class ConcurrentUpdate(RegistryError):
    status, code = 409, "conflict"


class ArtifactMissing(RegistryError):
    status, code = 500, "artifact_missing"


def model_pk(name: str) -> str:
    return f"MODEL#{name}"


def version_sk(version: int) -> str:
    return f"VERSION#{version:010d}"


def alias_sk(alias: str) -> str:
    return f"ALIAS#{alias}"


def history_sk(alias: str, seq: int) -> str:
    return f"HISTORY#{alias}#{seq:010d}"


def artifact_key(name: str, sha256: str) -> str:
    return f"models/{name}/artifacts/{sha256}.onnx"


def card_keys(name: str, version: int) -> tuple[str, str]:
    base = f"models/{name}/versions/{version}"
    return f"{base}/card.json", f"{base}/card.md"


# ------------------------------------------------------------------ attribute values
def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: float | int) -> dict[str, str]:
    return {"N": repr(value) if isinstance(value, float) else str(value)}


def _get_s(item: Mapping[str, Any], name: str, default: str | None = None) -> str | None:
    attr = item.get(name)
    return attr["S"] if attr and "S" in attr else default


def _get_n(item: Mapping[str, Any], name: str) -> float | None:
    attr = item.get(name)
    return float(attr["N"]) if attr and "N" in attr else None


def _get_int(item: Mapping[str, Any], name: str) -> int | None:
    value = _get_n(item, name)
    return None if value is None else int(value)


def version_item(v: ModelVersion) -> dict[str, Any]:
    """The DynamoDB item of a version."""
    item: dict[str, Any] = {
        "pk": _s(model_pk(v.name)), "sk": _s(version_sk(v.version)), "kind": _s("version"),
        "name": _s(v.name), "version": _n(v.version), "created_at": _s(v.created_at),
        "created_by": _s(v.created_by or "unknown"), "approval_status": _s(v.approval_status),
        "approval": _s(json.dumps(dict(v.approval), sort_keys=True)),
        "sha256": _s(v.sha256), "artifact_key": _s(v.artifact_key), "artifact_bytes": _n(v.artifact_bytes),
        "card_json_key": _s(v.card_json_key), "card_markdown_key": _s(v.card_markdown_key),
        "code_version": _s(v.code_version or "unknown"), "missing_policy": _s(v.missing_policy),
        "threshold": _n(float(v.threshold)), "record": _s(json.dumps(v.record, sort_keys=True, allow_nan=False)),
    }
    if v.parent_version is not None:
        item["parent_version"] = _n(v.parent_version)
    if v.feature_source is not None:
        item["feature_source"] = _s(json.dumps(dict(v.feature_source), sort_keys=True))
    return item


def version_from_item(item: Mapping[str, Any]) -> ModelVersion:
    """A version from its DynamoDB item."""
    source = _get_s(item, "feature_source")
    return ModelVersion(
        name=item["name"]["S"],
        version=int(item["version"]["N"]),
        created_at=item["created_at"]["S"],
        created_by=_get_s(item, "created_by", "") or "",
        approval_status=item["approval_status"]["S"],
        approval=json.loads(_get_s(item, "approval", "{}") or "{}"),
        sha256=item["sha256"]["S"],
        artifact_key=item["artifact_key"]["S"],
        artifact_bytes=int(item["artifact_bytes"]["N"]),
        card_json_key=item["card_json_key"]["S"],
        card_markdown_key=item["card_markdown_key"]["S"],
        code_version=item["code_version"]["S"],
        parent_version=_get_int(item, "parent_version"),
        missing_policy=item["missing_policy"]["S"],
        threshold=float(item["threshold"]["N"]),
        record=json.loads(item["record"]["S"]),
        feature_source=None if source is None else json.loads(source),
    )


def _move_from_item(model: str, item: Mapping[str, Any]) -> AliasMove:
    return AliasMove(
        model=model,
        alias=item["alias"]["S"],
        version=_get_int(item, "version"),
        previous_version=_get_int(item, "previous_version"),
        seq=int(item["seq"]["N"]),
        at=item["at"]["S"],
        by=_get_s(item, "by", "") or "",
        reason=_get_s(item, "reason", "") or "",
    )


def _cancellation_codes(exc: ClientError) -> list[str]:
    reasons = exc.response.get("CancellationReasons") or []
    return [r.get("Code") or "None" for r in reasons]


def _is_cancelled(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "TransactionCanceledException"


def _pause(attempt: int) -> None:
    time.sleep(random.uniform(0, min(0.05, 0.002 * 2 ** min(attempt, 5))))


class RegistryStore:
    """Registered models, versions and aliases; see the module docstring for the layout.

    ``deployments_table`` (DeploymentsTable) is where moves of the serving aliases are mirrored;
    without it, alias moves touch the registry only. ``clock`` returns an aware datetime.
    """

    def __init__(self, table: str, bucket: str, *, deployments_table: str | None = None,
                 dynamodb: Any = None, s3: Any = None, clock: Clock = utc_now) -> None:
        self.table = table
        self.bucket = bucket
        self.deployments_table = deployments_table
        self._dynamodb = dynamodb
        self._s3 = s3
        self.clock = clock

    @property
    def dynamodb(self) -> Any:
        if self._dynamodb is None:
            self._dynamodb = aws.client("dynamodb")
        return self._dynamodb

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            self._s3 = aws.client("s3")
        return self._s3

    # ------------------------------------------------------------------ reads
    def _query(self, pk: str, prefix: str = "", *, forward: bool = True, consistent: bool = False) -> Iterator[dict]:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": _s(pk)},
            "ScanIndexForward": forward,
            "ConsistentRead": consistent,
        }
        if prefix:
            kwargs["KeyConditionExpression"] = "pk = :pk AND begins_with(sk, :prefix)"
            kwargs["ExpressionAttributeValues"][":prefix"] = _s(prefix)
        while True:
            page = self.dynamodb.query(**kwargs)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _model_item(self, name: str, consistent: bool = False) -> dict | None:
        return self.dynamodb.get_item(TableName=self.table, Key={"pk": _s(MODELS_PK), "sk": _s(name)},
                                      ConsistentRead=consistent).get("Item")

    def list_models(self) -> list[dict[str, Any]]:
        """Every registered model with its latest version and its aliases, by name."""
        out = []
        for item in self._query(MODELS_PK):
            name = item["sk"]["S"]
            out.append({
                "name": name,
                "latest_version": _get_int(item, "latest_version"),
                "created_at": _get_s(item, "created_at"),
                "updated_at": _get_s(item, "updated_at"),
                "aliases": self.aliases(name),
            })
        return out

    def get_model(self, name: str) -> dict[str, Any]:
        """One model's summary; ModelNotFound when it was never registered."""
        item = self._model_item(name)
        if item is None:
            raise ModelNotFound(f"model {name!r} is not registered")
        return {"name": name, "latest_version": _get_int(item, "latest_version"),
                "created_at": _get_s(item, "created_at"), "updated_at": _get_s(item, "updated_at"),
                "aliases": self.aliases(name)}

    def get_version(self, name: str, version: int) -> ModelVersion:
        """A version; ModelNotFound or VersionNotFound when there is none."""
        item = self.dynamodb.get_item(TableName=self.table,
                                      Key={"pk": _s(model_pk(name)), "sk": _s(version_sk(version))}).get("Item")
        if item is None:
            if self._model_item(name) is None:
                raise ModelNotFound(f"model {name!r} is not registered")
            raise VersionNotFound(f"model {name!r} has no version {version}")
        return version_from_item(item)

    def aliases(self, name: str) -> dict[str, int]:
        """Where each alias of the model points now."""
        out = {}
        for item in self._query(model_pk(name), "ALIAS#"):
            version = _get_int(item, "version")
            if version is not None:
                out[item["alias"]["S"]] = version
        return dict(sorted(out.items()))

    def get_alias(self, name: str, alias: str) -> int:
        """The version an alias points at now; ModelNotFound or AliasNotFound otherwise."""
        item = self.dynamodb.get_item(TableName=self.table,
                                      Key={"pk": _s(model_pk(name)), "sk": _s(alias_sk(alias))}).get("Item")
        version = None if item is None else _get_int(item, "version")
        if version is None:
            if self._model_item(name) is None:
                raise ModelNotFound(f"model {name!r} is not registered")
            raise AliasNotFound(f"model {name!r} has no alias {alias!r}")
        return version

    def alias_history(self, name: str, alias: str) -> list[AliasMove]:
        """Every move of the alias, oldest first."""
        return [_move_from_item(name, item) for item in self._query(model_pk(name), f"HISTORY#{alias}#")]

    def alias_version_at(self, name: str, alias: str, at: str) -> int | None:
        """The version the alias pointed at, at time ``at`` (iso_utc text); None if none."""
        return alias_version_at(self.alias_history(name, alias), at)

    def read_artifact(self, version: ModelVersion) -> bytes:
        """The ONNX bytes of a version (not checked here: `ServingModel.load` checks the sha256)."""
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=version.artifact_key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise ArtifactMissing(f"artifact {version.artifact_key} of {version.name} v{version.version} "
                                      "is missing from the artifacts bucket") from None
            raise

    def read_card(self, version: ModelVersion, fmt: str = "json") -> str:
        """The model card of a version, as JSON or Markdown text."""
        key = version.card_json_key if fmt == "json" else version.card_markdown_key
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode("utf-8")

    # ------------------------------------------------------------------ registration
    def register_version(
        self,
        name: str,
        *,
        artifact: bytes,
        record: Mapping[str, Any],
        missing_policy: str = "impute",
        parent_version: int | None = None,
        feature_source: Mapping[str, Any] | None = None,
        created_by: str = "",
        card_writer: CardWriter | None = None,
    ) -> ModelVersion:
        """Store the artifact, allocate the next version number and record the version as
        pending; then write its model card (``card_writer(version, created_at)`` gives the
        JSON and Markdown text). ``record`` is a training record with ``sha256``,
        ``signature``, ``threshold`` and the rest of `TrainedModel.to_record()`."""
        if missing_policy not in MISSING_POLICIES:
            raise ValueError(f"missing_policy must be one of {MISSING_POLICIES}, got {missing_policy!r}")
        sha = record["sha256"]
        key = artifact_key(name, sha)
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=artifact, ContentType="application/octet-stream",
                           Metadata={"sha256": sha})
        for attempt in range(MAX_ATTEMPTS):
            model = self._model_item(name, consistent=True)
            previous = 0 if model is None else (_get_int(model, "latest_version") or 0)
            number = previous + 1
            created_at = iso_utc(self.clock())
            json_key, md_key = card_keys(name, number)
            version = ModelVersion(
                name=name, version=number, created_at=created_at, approval_status="pending",
                sha256=sha, artifact_key=key, artifact_bytes=len(artifact), card_json_key=json_key,
                card_markdown_key=md_key, code_version=str(record.get("code_version") or ""),
                parent_version=parent_version, missing_policy=missing_policy,
                threshold=float(record["threshold"]["threshold"]), record=dict(record),
                feature_source=feature_source, created_by=created_by,
            )
            if model is None:
                counter: dict[str, Any] = {"Put": {
                    "TableName": self.table,
                    "Item": {"pk": _s(MODELS_PK), "sk": _s(name), "kind": _s("model"), "name": _s(name),
                             "latest_version": _n(number), "created_at": _s(created_at),
                             "updated_at": _s(created_at)},
                    "ConditionExpression": "attribute_not_exists(sk)",
                }}
            else:
                counter = {"Update": {
                    "TableName": self.table,
                    "Key": {"pk": _s(MODELS_PK), "sk": _s(name)},
                    "UpdateExpression": "SET latest_version = :n, updated_at = :t",
                    "ConditionExpression": "latest_version = :prev",
                    "ExpressionAttributeValues": {":n": _n(number), ":prev": _n(previous), ":t": _s(created_at)},
                }}
            try:
                self.dynamodb.transact_write_items(TransactItems=[counter, {"Put": {
                    "TableName": self.table, "Item": version_item(version),
                    "ConditionExpression": "attribute_not_exists(sk)",
                }}])
            except ClientError as exc:
                if _is_cancelled(exc) and "ConditionalCheckFailed" in _cancellation_codes(exc):
                    _pause(attempt)  # another registration took this number: read the counter again
                    continue
                raise
            if card_writer is not None:
                card_json, card_md = card_writer(number, created_at)
                self.s3.put_object(Bucket=self.bucket, Key=json_key, Body=card_json.encode("utf-8"),
                                   ContentType="application/json")
                self.s3.put_object(Bucket=self.bucket, Key=md_key, Body=card_md.encode("utf-8"),
                                   ContentType="text/markdown; charset=utf-8")
            return version
        raise ConcurrentUpdate(f"could not allocate a version of {name!r} after {MAX_ATTEMPTS} attempts")

    def set_approval(self, name: str, version: int, status: str, *, by: str = "", reason: str = "") -> ModelVersion:
        """Set a version's approval status (pending, approved or rejected)."""
        if status not in APPROVAL_STATUSES:
            raise ValueError(f"status must be one of {APPROVAL_STATUSES}, got {status!r}")
        approval = {"status": status, "at": iso_utc(self.clock()), "by": by, "reason": reason}
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key={"pk": _s(model_pk(name)), "sk": _s(version_sk(version))},
                UpdateExpression="SET approval_status = :s, approval = :a",
                ConditionExpression="attribute_exists(sk)",
                ExpressionAttributeValues={":s": _s(status), ":a": _s(json.dumps(approval, sort_keys=True))},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                self.get_version(name, version)  # raises the precise not-found error
            raise
        return self.get_version(name, version)

    # ------------------------------------------------------------------ aliases
    def move_alias(self, name: str, alias: str, version: int, *, by: str = "", reason: str = "") -> AliasMove:
        """Point ``alias`` at ``version`` in one transaction (alias, history, and the deployment
        record for a serving alias). Raises ModelNotFound/VersionNotFound, VersionRejected for a
        rejected version, ConcurrentUpdate if other moves keep winning."""
        return self._move(name, alias, version, by=by, reason=reason)

    def remove_alias(self, name: str, alias: str, *, by: str = "", reason: str = "") -> AliasMove:
        """Remove an alias (the history keeps the removal); AliasNotFound if it points nowhere."""
        return self._move(name, alias, None, by=by, reason=reason)

    def _move(self, name: str, alias: str, version: int | None, *, by: str, reason: str) -> AliasMove:
        for attempt in range(MAX_ATTEMPTS):
            current = self.dynamodb.get_item(
                TableName=self.table, Key={"pk": _s(model_pk(name)), "sk": _s(alias_sk(alias))},
                ConsistentRead=True).get("Item")
            seq = 0 if current is None else int(current["seq"]["N"])
            previous = None if current is None else _get_int(current, "version")
            if version is None and previous is None:
                if self._model_item(name) is None:
                    raise ModelNotFound(f"model {name!r} is not registered")
                raise AliasNotFound(f"model {name!r} has no alias {alias!r}")
            at = next_move_time(self.clock(), None if current is None else current["at"]["S"])
            move = AliasMove(name, alias, version, previous, seq + 1, at, by, reason)
            items = self._move_items(move, current is None)
            try:
                self.dynamodb.transact_write_items(TransactItems=items)
            except ClientError as exc:
                if not _is_cancelled(exc):
                    raise
                codes = _cancellation_codes(exc)
                if version is not None and codes and codes[0] == "ConditionalCheckFailed":
                    target = self.get_version(name, version)  # raises ModelNotFound / VersionNotFound
                    if target.approval_status == "rejected":
                        raise VersionRejected(f"{name} version {version} is rejected; it cannot take alias "
                                              f"{alias!r}") from None
                if "ConditionalCheckFailed" in codes:
                    _pause(attempt)  # a concurrent move of the same alias won: read it again
                    continue
                raise
            return move
        raise ConcurrentUpdate(f"alias {alias!r} of {name!r} kept moving; gave up after {MAX_ATTEMPTS} attempts")

    def _move_items(self, move: AliasMove, first: bool) -> list[dict[str, Any]]:
        pk = _s(model_pk(move.model))
        items: list[dict[str, Any]] = []
        if move.version is not None:
            items.append({"ConditionCheck": {
                "TableName": self.table,
                "Key": {"pk": pk, "sk": _s(version_sk(move.version))},
                "ConditionExpression": "attribute_exists(sk) AND approval_status <> :rejected",
                "ExpressionAttributeValues": {":rejected": _s("rejected")},
            }})
        alias_item: dict[str, Any] = {"pk": pk, "sk": _s(alias_sk(move.alias)), "kind": _s("alias"),
                                      "alias": _s(move.alias), "seq": _n(move.seq), "at": _s(move.at),
                                      "by": _s(move.by), "reason": _s(move.reason)}
        history: dict[str, Any] = {"pk": pk, "sk": _s(history_sk(move.alias, move.seq)), "kind": _s("alias_move"),
                                   "alias": _s(move.alias), "seq": _n(move.seq), "at": _s(move.at),
                                   "by": _s(move.by), "reason": _s(move.reason)}
        if move.version is not None:
            alias_item["version"] = history["version"] = _n(move.version)
        if move.previous_version is not None:
            history["previous_version"] = _n(move.previous_version)
        if first:
            items.append({"Put": {"TableName": self.table, "Item": alias_item,
                                  "ConditionExpression": "attribute_not_exists(sk)"}})
        else:
            items.append({"Put": {"TableName": self.table, "Item": alias_item,
                                  "ConditionExpression": "seq = :seq",
                                  "ExpressionAttributeValues": {":seq": _n(move.seq - 1)}}})
        items.append({"Put": {"TableName": self.table, "Item": history,
                              "ConditionExpression": "attribute_not_exists(sk)"}})
        if self.deployments_table and move.alias in SERVING_ALIASES:
            items.append(self._deployment_update(move))
        return items

    def _deployment_update(self, move: AliasMove) -> dict[str, Any]:
        """Mirror a serving alias into the deployment record: champion and shadow are set or
        removed; a new challenger starts at 0% of the traffic (the rollout sets its weight)."""
        values: dict[str, Any] = {":t": _s(move.at)}
        if move.version is None:
            expression = f"SET updated_at = :t REMOVE {move.alias}"
            if move.alias == "challenger":
                expression = "SET updated_at = :t, challenger_percent = :zero REMOVE challenger"
                values[":zero"] = _n(0)
        elif move.alias == "challenger":
            expression = "SET challenger = :v, challenger_percent = :zero, updated_at = :t"
            values.update({":v": _n(move.version), ":zero": _n(0)})
        else:
            expression = f"SET {move.alias} = :v, updated_at = :t"
            values[":v"] = _n(move.version)
        return {"Update": {
            "TableName": self.deployments_table,
            "Key": {"model": _s(move.model), "sk": _s(DEPLOYMENT_SK)},
            "UpdateExpression": expression,
            "ExpressionAttributeValues": values,
        }}
