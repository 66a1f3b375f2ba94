"""The prediction log (PredictionsTable): every prediction with its inputs, and the feedback
joined to it later.

One item per scored row, keyed by ``request_id`` (a batch row's id is ``<request id>-<row>``):

=====================  ===================================================================
``ts``                 when it was scored (ISO-8601 UTC, microseconds): sort key of both GSIs
``model``, ``version`` the model and version that answered; ``model_version`` = ``name#n``
                       (hash key of the ``by_model_version`` GSI, read by drift checks)
``variant``            champion, challenger, an alias name, or ``pinned`` (a version asked for)
``entity_id``          the entity, when the request named one (``by_entity`` GSI)
``inputs``             the features the model saw, JSON ``{name: number or null}``
``request_inputs``     request-time inputs of on-demand features, JSON (when given)
``probability``, ``predicted_label``, ``threshold``, ``latency_ms``
``imputed``            JSON list of the features that were missing and imputed
``missing_policy``     impute or refuse (the version's policy)
``warnings``           JSON list of warnings returned to the client (stale features...)
``quality``            JSON ``{null|out_of_range|unseen: [feature...]}``: data-quality flags
                       against the version's training baseline (only when any was raised)
``shadow``             the shadow version's result or error (never returned to the client)
``fallback_from``      the challenger version whose row the champion answered (it failed)
``error``              on an error row (``request_id`` ``<id>#error``, the failed challenger's
                       version): what failed; such rows have no inputs or probability
``experiment_id``, ``experiment_variant``  the experiment that routed the row and its
                       variant (`mlops.experiments`), when one did
``expires_at``         epoch seconds: DynamoDB TTL (``PREDICTION_TTL_DAYS``, default 90)
``label``, ``feedback_at``, ``feedback_by``  the ground truth, once feedback arrives
``outcome_recorded_at`` when the experiment outcome of the labelled row was counted (rows
                       served under an experiment; set in the experiment's own transaction)
=====================  ===================================================================

Feedback is one conditional UpdateItem: it lands when the prediction exists and has no label
yet or already has the same label (so a retry is harmless); a different label is a conflict.
For a row served under an experiment, :func:`outcome_marker` is the part of the outcome's
transaction (`mlops.experiments.store.ExperimentStore.apply_feedback`) that makes it count once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from mlops import aws

BY_ENTITY = "by_entity"
BY_MODEL_VERSION = "by_model_version"
BATCH_WRITE_LIMIT = 25
OUTCOME_MARKER = "outcome_recorded_at"


@dataclass(frozen=True)
class LoggedPrediction:
    """What the log holds for one prediction (the subset feedback needs and returns)."""

    request_id: str
    ts: str
    model: str
    version: int
    variant: str
    probability: float
    predicted_label: int
    threshold: float
    entity_id: str | None = None
    label: int | None = None
    feedback_at: str | None = None
    experiment_id: str | None = None
    experiment_variant: str | None = None
    outcome_recorded_at: str | None = None  # when its experiment outcome was counted

    def to_api(self) -> dict[str, Any]:
        """JSON form."""
        experiment = None if self.experiment_id is None else {"id": self.experiment_id,
                                                                "variant": self.experiment_variant}
        return {"request_id": self.request_id, "ts": self.ts, "model": self.model, "version": self.version,
                "variant": self.variant, "probability": self.probability, "predicted_label": self.predicted_label,
                "threshold": self.threshold, "entity_id": self.entity_id, "label": self.label,
                "feedback_at": self.feedback_at, "experiment": experiment}


class PredictionNotFound(LookupError):
    """No logged prediction matches."""


class LabelConflict(ValueError):
    """The prediction already has a different label."""

    def __init__(self, existing: LoggedPrediction, label: int) -> None:
        super().__init__(f"prediction {existing.request_id} already has label {existing.label}; got {label}")
        self.existing = existing
        self.label = label


def _j(value: Any) -> dict[str, str]:
    return {"S": json.dumps(value, separators=(",", ":"), allow_nan=False)}


def _num(value: float | int) -> dict[str, str]:
    return {"N": repr(value) if isinstance(value, float) else str(value)}


def prediction_item(row: Mapping[str, Any], *, ts: str, expires_at: int) -> dict[str, Any]:
    """The DynamoDB item of one scored row (the keys listed in the module docstring)."""
    item: dict[str, Any] = {
        "request_id": {"S": row["request_id"]},
        "ts": {"S": ts},
        "model": {"S": row["model"]},
        "version": _num(int(row["version"])),
        "model_version": {"S": f"{row['model']}#{row['version']}"},
        "variant": {"S": row["variant"]},
        "inputs": _j(row["inputs"]),
        "probability": _num(float(row["probability"])),
        "predicted_label": _num(int(row["label"])),
        "threshold": _num(float(row["threshold"])),
        "latency_ms": _num(round(float(row["latency_ms"]), 3)),
        "imputed": _j(list(row.get("imputed", ()))),
        "missing_policy": {"S": row["missing_policy"]},
        "expires_at": _num(int(expires_at)),
    }
    if row.get("entity_id") is not None:
        item["entity_id"] = {"S": str(row["entity_id"])}
    if row.get("request_inputs"):
        item["request_inputs"] = _j(row["request_inputs"])
    if row.get("warnings"):
        item["warnings"] = _j(row["warnings"])
    if row.get("quality"):
        item["quality"] = _j(row["quality"])
    shadow = row.get("shadow")
    if shadow:
        attrs: dict[str, Any] = {"version": _num(int(shadow["version"]))}
        for key in ("probability", "latency_ms", "threshold"):
            if shadow.get(key) is not None:
                attrs[key] = _num(float(shadow[key]))
        if shadow.get("label") is not None:
            attrs["predicted_label"] = _num(int(shadow["label"]))
        if shadow.get("error"):
            attrs["error"] = {"S": str(shadow["error"])[:1000]}
        item["shadow"] = {"M": attrs}
    fallback = row.get("fallback")
    if fallback:
        item["fallback_from"] = _num(int(fallback["version"]))
    experiment = row.get("experiment")
    if experiment:
        item["experiment_id"] = {"S": str(experiment["id"])}
        item["experiment_variant"] = {"S": str(experiment["variant"])}
    return item


def error_item(row: Mapping[str, Any], *, ts: str, expires_at: int) -> dict[str, Any]:
    """The error row of a challenger that failed a request the champion then answered
    (``row["fallback"]`` names it): counted by the canary gate as the challenger's error."""
    fallback = row["fallback"]
    version = int(fallback["version"])
    item: dict[str, Any] = {
        "request_id": {"S": f"{row['request_id']}#error"},
        "ts": {"S": ts},
        "model": {"S": row["model"]},
        "version": _num(version),
        "model_version": {"S": f"{row['model']}#{version}"},
        "variant": {"S": "challenger"},
        "error": {"S": str(fallback["error"])[:1000]},
        "latency_ms": _num(round(float(row["latency_ms"]), 3)),
        "expires_at": _num(int(expires_at)),
    }
    if row.get("entity_id") is not None:
        item["entity_id"] = {"S": str(row["entity_id"])}
    return item


def _logged(item: Mapping[str, Any]) -> LoggedPrediction:
    label = item.get("label")
    return LoggedPrediction(
        request_id=item["request_id"]["S"],
        ts=item["ts"]["S"],
        model=item["model"]["S"],
        version=int(item["version"]["N"]),
        variant=item["variant"]["S"],
        probability=float(item["probability"]["N"]),
        predicted_label=int(item["predicted_label"]["N"]),
        threshold=float(item["threshold"]["N"]),
        entity_id=item.get("entity_id", {}).get("S"),
        label=None if label is None else int(label["N"]),
        feedback_at=item.get("feedback_at", {}).get("S"),
        experiment_id=item.get("experiment_id", {}).get("S"),
        experiment_variant=item.get("experiment_variant", {}).get("S"),
        outcome_recorded_at=item.get(OUTCOME_MARKER, {}).get("S"),
    )


def outcome_marker(table: str, request_id: str, label: int, *, at: str) -> dict[str, Any]:
    """The TransactWriteItems entry that marks a labelled prediction's experiment outcome as
    counted: it sets ``outcome_recorded_at`` only where it is absent and the stored label is
    ``label``, so a transaction holding it commits at most once per prediction."""
    return {"Update": {
        "TableName": table, "Key": {"request_id": {"S": request_id}},
        "UpdateExpression": "SET #m = :at",
        "ConditionExpression": "attribute_not_exists(#m) AND label = :l",
        "ExpressionAttributeNames": {"#m": OUTCOME_MARKER},
        "ExpressionAttributeValues": {":at": {"S": at}, ":l": _num(int(label))}}}


def row_of(item: Mapping[str, Any]) -> dict[str, Any]:
    """A log item (low-level attribute values) as a plain row: ``request_id``, ``ts``,
    ``model``, ``version``, ``variant``, ``inputs`` (dict or None), ``probability``,
    ``predicted_label``, ``label``, ``latency_ms``, ``error``, ``fallback_from`` and ``shadow``
    (dict or None): what drift checks, monitoring, shadow analysis and canary gates read."""

    def num(name: str, cast: Any = float) -> Any:
        attr = item.get(name)
        return cast(float(attr["N"])) if attr and "N" in attr else None

    shadow = None
    if "M" in item.get("shadow", {}):
        m = item["shadow"]["M"]
        shadow = {k: (float(v["N"]) if "N" in v else v.get("S")) for k, v in m.items()}
        for key in ("version", "predicted_label"):
            if shadow.get(key) is not None:
                shadow[key] = int(shadow[key])
    inputs = item.get("inputs", {}).get("S")
    return {
        "request_id": item["request_id"]["S"], "ts": item["ts"]["S"], "model": item.get("model", {}).get("S"),
        "version": num("version", int), "variant": item.get("variant", {}).get("S"),
        "inputs": json.loads(inputs) if inputs else None,
        "probability": num("probability"), "predicted_label": num("predicted_label", int),
        "label": num("label", int), "latency_ms": num("latency_ms"),
        "error": item.get("error", {}).get("S"), "fallback_from": num("fallback_from", int), "shadow": shadow,
    }


class PredictionLog:
    """The PredictionsTable: write predictions, find them, join feedback to them."""

    def __init__(self, table: str, *, dynamodb: Any = None) -> None:
        self.table = table
        self.dynamodb = dynamodb or aws.client("dynamodb")

    def put(self, items: Sequence[Mapping[str, Any]]) -> None:
        """Write prediction items: one PutItem for one, BatchWriteItem pages of 25 otherwise
        (unprocessed items are retried with backoff, a bounded number of times)."""
        if len(items) == 1:
            self.dynamodb.put_item(TableName=self.table, Item=items[0])
            return
        for start in range(0, len(items), BATCH_WRITE_LIMIT):
            requests = [{"PutRequest": {"Item": item}} for item in items[start:start + BATCH_WRITE_LIMIT]]
            for attempt in range(8):
                answer = self.dynamodb.batch_write_item(RequestItems={self.table: requests})
                requests = (answer.get("UnprocessedItems") or {}).get(self.table) or []
                if not requests:
                    break
                time.sleep(min(0.5, 0.01 * 2 ** attempt))
            else:
                raise RuntimeError(f"{len(requests)} prediction log items still unprocessed after retries")

    def version_rows(self, model: str, version: int, start: str, end: str, *,
                     attributes: Sequence[str] | None = None, newest_first: bool = False,
                     page_size: int | None = None) -> Iterator[dict[str, Any]]:
        """Every logged row (`row_of`) of one model version with ``start <= ts < end`` (ISO-8601
        UTC strings as the log writes them), oldest first (or newest first): a Query on the
        ``by_model_version`` GSI, page by page as the caller iterates (``page_size`` rows a
        page, so a caller that stops early reads little). ``attributes`` limits what is read (a
        ProjectionExpression; the row's other fields are then None). A GSI is eventually
        consistent: a row written a moment ago may be missing."""
        kwargs: dict[str, Any] = {
            "TableName": self.table, "IndexName": BY_MODEL_VERSION,
            "KeyConditionExpression": "model_version = :mv AND ts BETWEEN :a AND :b",
            "ExpressionAttributeValues": {":mv": {"S": f"{model}#{int(version)}"}, ":a": {"S": start},
                                          ":b": {"S": end}},
            "ScanIndexForward": not newest_first,
        }
        if page_size is not None:
            kwargs["Limit"] = page_size
        if attributes:
            names = sorted({"request_id", "ts", *attributes})
            kwargs["ProjectionExpression"] = ", ".join(f"#a{i}" for i in range(len(names)))
            kwargs["ExpressionAttributeNames"] = {f"#a{i}": name for i, name in enumerate(names)}
        while True:
            page = self.dynamodb.query(**kwargs)
            for item in page.get("Items", []):
                if item["ts"]["S"] < end:
                    yield row_of(item)
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def get(self, request_id: str, *, consistent: bool = True) -> LoggedPrediction | None:
        """The logged prediction with this request id, or None."""
        item = self.dynamodb.get_item(TableName=self.table, Key={"request_id": {"S": request_id}},
                                      ConsistentRead=consistent).get("Item")
        return None if item is None else _logged(item)

    def latest_for_entity(self, entity_id: str, at: str, *, model: str | None = None) -> LoggedPrediction | None:
        """The entity's latest prediction made at or before ``at`` (of ``model`` if given)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table, "IndexName": BY_ENTITY,
            "KeyConditionExpression": "entity_id = :e AND ts <= :t",
            "ExpressionAttributeValues": {":e": {"S": entity_id}, ":t": {"S": at}},
            "ScanIndexForward": False,
        }
        if model is None:
            kwargs["Limit"] = 1
        else:
            kwargs["FilterExpression"] = "model = :m"
            kwargs["ExpressionAttributeValues"][":m"] = {"S": model}
            kwargs["Limit"] = 50
        while True:
            page = self.dynamodb.query(**kwargs)
            for item in page.get("Items", []):
                return _logged(item)
            if model is None or "LastEvaluatedKey" not in page:
                return None
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def record_feedback(self, request_id: str, label: int, *, at: str, by: str = "") -> tuple[LoggedPrediction, bool]:
        """Join a ground-truth label to a logged prediction.

        Returns (the prediction with its label, whether this call set it: False for a repeat of
        the same label). Raises PredictionNotFound, or LabelConflict for a different label.
        """
        try:
            answer = self.dynamodb.update_item(
                TableName=self.table,
                Key={"request_id": {"S": request_id}},
                UpdateExpression="SET label = :l, feedback_at = if_not_exists(feedback_at, :t), "
                                 "feedback_by = if_not_exists(feedback_by, :b)",
                ConditionExpression="attribute_exists(request_id) AND attribute_not_exists(label)",
                ExpressionAttributeValues={":l": _num(int(label)), ":t": {"S": at}, ":b": {"S": by or "unknown"}},
                ReturnValues="ALL_NEW",
            )
            return _logged(answer["Attributes"]), True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
        existing = self.get(request_id)
        if existing is None:
            raise PredictionNotFound(f"no logged prediction with request id {request_id!r}")
        if existing.label != int(label):
            raise LabelConflict(existing, int(label))
        return existing, False

