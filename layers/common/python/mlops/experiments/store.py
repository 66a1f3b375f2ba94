"""Experiments in DynamoDB (ExperimentsTable, ``pk``/``sk``, env ``EXPERIMENTS_TABLE``): the
definitions, the running experiment of each model, bandit states and outcome totals.

Layout:

=============================  ==========================================================
``EXPERIMENTS`` / ``<id>``     the record: ``definition`` (JSON), ``status`` (running or
                               stopped), ``created_at``/``created_by``, ``stopped_at``/
                               ``stopped_by``/``stop_reason``. One partition, so ``list`` is a
                               Query, never a Scan.
``MODEL#<model>`` / ``ACTIVE`` the model's running experiment: its id and a copy of its
                               (immutable) definition, so the inference router finds it with
                               one GetItem. At most one per model: creating a second is a 409
                               until the first is stopped or its stop time has passed.
``EXP#<id>`` / ``BANDIT``      the bandit state (JSON, :mod:`~mlops.experiments.bandits`) and
                               its ``version``.
``EXP#<id>`` / ``VARIANT#<v>`` totals of variant ``v``: ``exposures`` (predictions served),
                               ``feedback``, and per metric ``n_<m>``, ``sum_<m>``, ``sumsq_<m>``.
=============================  ==========================================================

Why totals with ``ADD`` rather than reading the prediction log: the analysis needs only
``n``, ``sum`` and ``sum of squares`` per variant and metric (:mod:`~.summary`), ``ADD`` is
atomic (concurrent feedback never loses an increment, with no read and no retry), and the
analysis then costs one Query however many predictions there were; the prediction log has no
index by experiment and would need a Scan. The price: totals are what the experiment was
defined to measure - a new metric cannot be computed backwards (the prediction log, which
holds ``experiment_id`` and ``experiment_variant`` on every item, still can).

Exposures are counted by the inference function (one ``ADD`` per variant and request) and
outcomes by the feedback function, exactly once per prediction: the outcome (``ADD`` on the
totals), the bandit's reward (the versioned put below) and a marker on the prediction's log
item (``outcome_recorded_at``, :func:`mlops.models.prediction_log.outcome_marker`, set only
where it is absent and the label is the one measured) are one TransactWriteItems
(:meth:`ExperimentStore.apply_feedback`). A transaction cancelled by the marker's condition
means the outcome was counted already; one that is throttled or never reaches DynamoDB wrote
nothing, so the client's retry of the feedback (a duplicate label) records it then.

The bandit state changes by read-modify-write under optimistic concurrency: the new state is
written with ``ConditionExpression: version = :old`` (:func:`bandit_put`); when another writer
got there first, the state is read again and the (pure) update re-applied, so no reward is lost
under concurrent feedback. Creating and stopping are transactions (record, lock and bandit state
together).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from mlops import aws
from mlops.experiments import bandits, outcomes
from mlops.experiments.definition import ExperimentDefinition
from mlops.experiments.errors import ExperimentError, UnknownExperiment
from mlops.experiments.router import LiveExperiment
from mlops.models.registry import Clock, iso_utc, utc_now

EXPERIMENTS_PK = "EXPERIMENTS"
ACTIVE_SK = "ACTIVE"
BANDIT_SK = "BANDIT"
VARIANT_PREFIX = "VARIANT#"
MAX_ATTEMPTS = 200
_TINY = 1e-100  # DynamoDB numbers stop at 1e-130: smaller magnitudes are stored as 0


class ExperimentConflict(ExperimentError):
    """The request contradicts what is stored (an id taken, a model with a running experiment)."""

    status = 409
    code = "conflict"


class ConcurrentUpdate(ExperimentError):
    """The bandit state kept changing under us for MAX_ATTEMPTS tries (retry later)."""

    status = 503
    code = "concurrent_update"


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: float | int) -> dict[str, str]:
    if isinstance(value, int):
        return {"N": str(value)}
    return {"N": "0" if abs(value) < _TINY else repr(float(value))}


def _epoch(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp())


def experiment_pk(experiment_id: str) -> str:
    return f"EXP#{experiment_id}"


def active_key(model: str) -> dict[str, Any]:
    return {"pk": _s(f"MODEL#{model}"), "sk": _s(ACTIVE_SK)}


def metric_attributes(metric: str) -> tuple[str, str, str]:
    """The attribute names of a metric's totals in a variant item: n, sum, sum of squares."""
    return f"n_{metric}", f"sum_{metric}", f"sumsq_{metric}"


def totals_update(table: str, experiment_id: str, variant: str, values: Mapping[str, float]) -> dict[str, Any]:
    """The UpdateItem parameters that add one prediction's outcome values (metric -> value) to
    the variant's totals: ``feedback`` + 1 and, per metric, n + 1, the sum and the sum of squares."""
    names: dict[str, str] = {"#f": "feedback"}
    vals: dict[str, Any] = {":one": _n(1)}
    parts = ["#f :one"]
    for i, (metric, value) in enumerate(values.items()):
        n, total, squares = metric_attributes(metric)
        names.update({f"#n{i}": n, f"#s{i}": total, f"#q{i}": squares})
        vals.update({f":v{i}": _n(float(value)), f":q{i}": _n(float(value) ** 2)})
        parts.append(f"#n{i} :one, #s{i} :v{i}, #q{i} :q{i}")
    return {"TableName": table, "Key": {"pk": _s(experiment_pk(experiment_id)), "sk": _s(VARIANT_PREFIX + variant)},
            "UpdateExpression": "ADD " + ", ".join(parts), "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": vals}


def bandit_put(table: str, item: Mapping[str, Any], old_version: int) -> dict[str, Any]:
    """The PutItem parameters of a new bandit state ``item``, written only over ``old_version``."""
    return {"TableName": table, "Item": dict(item), "ConditionExpression": "#v = :old",
            "ExpressionAttributeNames": {"#v": "version"}, "ExpressionAttributeValues": {":old": _n(int(old_version))}}


def _pause(attempt: int) -> None:
    time.sleep(random.uniform(0, min(0.02, 0.0005 * 2 ** min(attempt, 6))))


def _cancellation_codes(exc: ClientError) -> list[str]:
    return [r.get("Code") or "None" for r in exc.response.get("CancellationReasons") or []]


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


@dataclass(frozen=True)
class ExperimentRecord:
    """A stored experiment: its definition and where it stands."""

    definition: ExperimentDefinition
    status: str = "running"
    created_at: str = ""
    created_by: str = ""
    stopped_at: str | None = None
    stopped_by: str | None = None
    stop_reason: str | None = None

    @property
    def experiment_id(self) -> str:
        return self.definition.experiment_id

    def state(self, now: datetime) -> str:
        """``stopped`` (by hand), ``scheduled`` (before start), ``ended`` (stop time passed) or ``running``."""
        if self.status == "stopped":
            return "stopped"
        d = self.definition
        if d.start and now < datetime.fromisoformat(d.start):
            return "scheduled"
        if d.stop and now >= datetime.fromisoformat(d.stop):
            return "ended"
        return "running"

    def analysed_definition(self) -> ExperimentDefinition:
        """The definition the analysis uses: a stop by hand ends it at ``stopped_at``."""
        d = self.definition
        if self.stopped_at is None:
            return d
        stopped = datetime.fromisoformat(self.stopped_at)
        if d.stop is None or stopped < datetime.fromisoformat(d.stop):
            return replace(d, stop=stopped.isoformat().replace("+00:00", "Z"))
        return d

    def to_api(self, now: datetime) -> dict[str, Any]:
        return {**self.definition.to_dict(), "status": self.status, "state": self.state(now),
                "created_at": self.created_at, "created_by": self.created_by, "stopped_at": self.stopped_at,
                "stopped_by": self.stopped_by, "stop_reason": self.stop_reason}


def _record(item: Mapping[str, Any]) -> ExperimentRecord:
    def opt(name: str) -> str | None:
        return item[name]["S"] if name in item else None

    return ExperimentRecord(
        definition=ExperimentDefinition.from_dict(json.loads(item["definition"]["S"])),
        status=item["status"]["S"], created_at=item["created_at"]["S"], created_by=opt("created_by") or "",
        stopped_at=opt("stopped_at"), stopped_by=opt("stopped_by"), stop_reason=opt("stop_reason"))


class ExperimentStore:
    """Experiments, the running experiment per model, bandit states and totals (see module doc)."""

    def __init__(self, table: str, *, dynamodb: Any = None, clock: Clock = utc_now) -> None:
        self.table = table
        self._dynamodb = dynamodb
        self.clock = clock
        self._definitions: dict[str, ExperimentDefinition] = {}  # immutable: cached for feedback

    @property
    def dynamodb(self) -> Any:
        if self._dynamodb is None:
            self._dynamodb = aws.client("dynamodb")
        return self._dynamodb

    # ------------------------------------------------------------------ definitions
    def create(self, definition: ExperimentDefinition, *, by: str = "") -> ExperimentRecord:
        """Store a new experiment (its lock on the model and its fresh bandit state with it).

        ExperimentConflict (409) when the id exists or the model already runs an experiment.
        """
        d = definition
        now = self.clock()
        record = ExperimentRecord(d, "running", iso_utc(now), by)
        text = json.dumps(d.to_dict(), separators=(",", ":"))
        items: list[dict[str, Any]] = [{"Put": {
            "TableName": self.table,
            "Item": {"pk": _s(EXPERIMENTS_PK), "sk": _s(d.experiment_id), "definition": _s(text),
                     "status": _s("running"), "created_at": _s(record.created_at), "created_by": _s(by)},
            "ConditionExpression": "attribute_not_exists(pk)"}}]
        if d.model is not None:
            lock = {**active_key(d.model), "experiment_id": _s(d.experiment_id), "definition": _s(text)}
            if d.stop:
                lock["ends_at"] = _n(_epoch(d.stop))
            items.append({"Put": {"TableName": self.table, "Item": lock,
                                  "ConditionExpression": "attribute_not_exists(pk) OR ends_at <= :now",
                                  "ExpressionAttributeValues": {":now": _n(int(now.timestamp()))}}})
        if d.bandit is not None:
            state = d.bandit.new_state([v.name for v in d.variants])
            items.append({"Put": {"TableName": self.table, "Item": self._bandit_item(d.experiment_id, state),
                                  "ConditionExpression": "attribute_not_exists(pk)"}})
        try:
            self.dynamodb.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if _code(exc) != "TransactionCanceledException":
                raise
            codes = _cancellation_codes(exc)
            if codes and codes[0] == "ConditionalCheckFailed":
                raise ExperimentConflict("experiment_id", f"an experiment {d.experiment_id!r} exists already") from None
            if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                running = self.dynamodb.get_item(TableName=self.table, Key=active_key(d.model or ""),
                                                 ConsistentRead=True).get("Item", {})
                other = running.get("experiment_id", {}).get("S", "?")
                raise ExperimentConflict("model", f"model {d.model!r} already runs experiment {other!r}: stop it "
                                         f"first (POST /experiments/{other}/stop)") from None
            raise
        self._definitions[d.experiment_id] = d
        return record

    def get(self, experiment_id: str) -> ExperimentRecord:
        """The experiment; UnknownExperiment (404) when there is none."""
        item = self.dynamodb.get_item(TableName=self.table, Key={"pk": _s(EXPERIMENTS_PK), "sk": _s(experiment_id)},
                                      ConsistentRead=True).get("Item")
        if item is None:
            raise UnknownExperiment(experiment_id)
        record = _record(item)
        self._definitions[experiment_id] = record.definition
        return record

    def definition(self, experiment_id: str) -> ExperimentDefinition:
        """The (immutable) definition, cached after the first read."""
        found = self._definitions.get(experiment_id)
        return found if found is not None else self.get(experiment_id).definition

    def list(self) -> list[ExperimentRecord]:
        """Every experiment, by id."""
        return [_record(item) for item in self._query(EXPERIMENTS_PK)]

    def stop(self, experiment_id: str, *, by: str = "", reason: str = "") -> ExperimentRecord:
        """Stop an experiment: no more traffic is routed by it, feedback on its predictions still
        counts. Stopping a stopped experiment changes nothing and returns it."""
        record = self.get(experiment_id)
        if record.status == "stopped":
            return record
        at = iso_utc(self.clock())
        items: list[dict[str, Any]] = [{"Update": {
            "TableName": self.table, "Key": {"pk": _s(EXPERIMENTS_PK), "sk": _s(experiment_id)},
            "UpdateExpression": "SET #st = :stopped, stopped_at = :at, stopped_by = :by, stop_reason = :why",
            "ConditionExpression": "#st = :running",
            "ExpressionAttributeNames": {"#st": "status"},
            "ExpressionAttributeValues": {":stopped": _s("stopped"), ":running": _s("running"), ":at": _s(at),
                                          ":by": _s(by), ":why": _s(reason)}}}]
        if record.definition.model is not None:
            items.append({"Delete": {"TableName": self.table, "Key": active_key(record.definition.model),
                                     "ConditionExpression": "attribute_not_exists(pk) OR experiment_id = :id",
                                     "ExpressionAttributeValues": {":id": _s(experiment_id)}}})
        try:
            self.dynamodb.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if _code(exc) != "TransactionCanceledException":
                raise
            codes = _cancellation_codes(exc)
            if codes[:1] == ["ConditionalCheckFailed"]:
                return self.get(experiment_id)  # stopped meanwhile by another call
            if codes[1:2] != ["ConditionalCheckFailed"]:
                raise
            # The model's lock belongs to a newer experiment (this one's stop time had passed):
            # stop this one and leave the lock alone.
            try:
                self.dynamodb.update_item(**items[0]["Update"])
            except ClientError as again:
                if _code(again) != "ConditionalCheckFailedException":
                    raise
        return self.get(experiment_id)

    def live(self, model: str) -> LiveExperiment | None:
        """The model's running experiment as the router uses it (bandit state included), or None."""
        item = self.dynamodb.get_item(TableName=self.table, Key=active_key(model)).get("Item")
        if item is None:
            return None
        definition = ExperimentDefinition.from_dict(json.loads(item["definition"]["S"]))
        state = self.bandit_state(definition.experiment_id) if definition.bandit is not None else None
        return LiveExperiment(definition, state)

    # ------------------------------------------------------------------ bandit state
    def _bandit_item(self, experiment_id: str, state: Mapping[str, Any]) -> dict[str, Any]:
        return {"pk": _s(experiment_pk(experiment_id)), "sk": _s(BANDIT_SK),
                "state": _s(json.dumps(state, separators=(",", ":"), allow_nan=False)),
                "version": _n(int(state["version"])), "policy": _s(str(state["policy"])),
                "updated_at": _s(iso_utc(self.clock()))}

    def bandit_state(self, experiment_id: str, *, consistent: bool = False) -> dict[str, Any] | None:
        """The bandit state, or None when the experiment has no bandit."""
        item = self.dynamodb.get_item(TableName=self.table, Key={"pk": _s(experiment_pk(experiment_id)),
                                                                 "sk": _s(BANDIT_SK)},
                                      ConsistentRead=consistent).get("Item")
        return None if item is None else json.loads(item["state"]["S"])

    def update_bandit(self, experiment_id: str, rewards: Iterable[tuple[str, float]]) -> dict[str, Any]:
        """Apply ``(arm, reward)`` pairs to the bandit state with a conditional write, re-reading
        and re-applying on a conflict (at most MAX_ATTEMPTS times); returns the written state."""
        batch = list(rewards)
        for attempt in range(MAX_ATTEMPTS):
            state = self.bandit_state(experiment_id, consistent=True)
            if state is None:
                raise ExperimentError("experiment_id", f"experiment {experiment_id!r} has no bandit state")
            new = bandits.update_many(state, batch)
            try:
                item = self._bandit_item(experiment_id, new)
                self.dynamodb.put_item(**bandit_put(self.table, item, state["version"]))
                return new
            except ClientError as exc:
                if _code(exc) != "ConditionalCheckFailedException":
                    raise
            _pause(attempt)
        raise ConcurrentUpdate("experiment_id", f"the bandit state of {experiment_id!r} kept changing; "
                               f"gave up after {MAX_ATTEMPTS} attempts")

    # ------------------------------------------------------------------ totals
    def record_exposures(self, counts: Mapping[tuple[str, str], int]) -> None:
        """Add predictions served per ``(experiment id, variant)``."""
        for (experiment_id, variant), count in counts.items():
            self.dynamodb.update_item(
                TableName=self.table,
                Key={"pk": _s(experiment_pk(experiment_id)), "sk": _s(VARIANT_PREFIX + variant)},
                UpdateExpression="ADD #e :c", ExpressionAttributeNames={"#e": "exposures"},
                ExpressionAttributeValues={":c": _n(int(count))})

    def totals(self, definition: ExperimentDefinition) -> dict[str, Any]:
        """The analysis input (:func:`mlops.experiments.analysis.analyze`): exposures per
        variant and ``{n, sum, sum_sq}`` per metric and variant (zeros where nothing arrived)."""
        items = {item["sk"]["S"][len(VARIANT_PREFIX):]: item
                 for item in self._query(experiment_pk(definition.experiment_id), VARIANT_PREFIX, consistent=True)}

        def number(item: Mapping[str, Any] | None, name: str) -> float:
            return float(item[name]["N"]) if item and name in item else 0.0

        names = [v.name for v in definition.variants]
        metrics: dict[str, dict[str, dict[str, float]]] = {}
        for metric in definition.metrics:
            n, total, squares = metric_attributes(metric.name)
            metrics[metric.name] = {v: {"n": int(number(items.get(v), n)), "sum": number(items.get(v), total),
                                        "sum_sq": number(items.get(v), squares)} for v in names}
        return {"assignments": {v: int(number(items.get(v), "exposures")) for v in names}, "metrics": metrics}

    # ------------------------------------------------------------------ feedback
    def apply_feedback(self, experiment_id: str, variant: str, *, probability: float, predicted_label: int,
                       label: int, marker: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """Record one labelled prediction of the experiment: its outcomes in the variant's totals
        and, with a bandit, its reward in the bandit state, in one transaction together with
        ``marker`` (a TransactWriteItems entry: the prediction's "outcome counted" update,
        `mlops.models.prediction_log.outcome_marker`). Returns what was recorded, or None when
        ``marker``'s condition failed (the outcome was counted already: nothing is written).

        A bandit version conflict (or a transaction conflict) re-reads the state and tries again,
        at most MAX_ATTEMPTS times (then ConcurrentUpdate, 503); throttling propagates (nothing
        written)."""
        d = self.definition(experiment_id)
        kinds = {m.name: m.kind for m in d.metrics}
        values = outcomes.values(kinds, probability=probability, predicted_label=predicted_label, label=label)
        out: dict[str, Any] = {"id": experiment_id, "variant": variant, "outcomes": values}
        if d.bandit is not None:
            primary = d.primary_metric
            out["reward"] = outcomes.reward(values[primary.name], primary.kind, primary.direction)
        for attempt in range(MAX_ATTEMPTS):
            items: list[dict[str, Any]] = [{"Update": totals_update(self.table, experiment_id, variant, values)}]
            if d.bandit is not None:
                state = self.bandit_state(experiment_id, consistent=True)
                if state is None:
                    raise ExperimentError("experiment_id", f"experiment {experiment_id!r} has no bandit state")
                new = bandits.update_many(state, [(variant, out["reward"])])
                items.append({"Put": bandit_put(self.table, self._bandit_item(experiment_id, new), state["version"])})
                out["bandit_version"] = new["version"]
            if marker is not None:
                items.append(dict(marker))
            try:
                self.dynamodb.transact_write_items(TransactItems=items)
                return out
            except ClientError as exc:
                if _code(exc) != "TransactionCanceledException":
                    raise
                codes = _cancellation_codes(exc)
                if marker is not None and codes[-1:] == ["ConditionalCheckFailed"]:
                    return None  # counted already (by an earlier or a concurrent call)
                if not codes or not set(codes) <= {"None", "ConditionalCheckFailed", "TransactionConflict"}:
                    raise  # e.g. throttled (mlops.unavailable answers 503)
            _pause(attempt)
        raise ConcurrentUpdate("experiment_id", f"the outcome of {experiment_id!r} could not be recorded: its "
                               f"bandit state kept changing; gave up after {MAX_ATTEMPTS} attempts")

    # ------------------------------------------------------------------ helpers
    def _query(self, pk: str, prefix: str = "", *, consistent: bool = False) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {"TableName": self.table, "KeyConditionExpression": "pk = :pk",
                                  "ExpressionAttributeValues": {":pk": _s(pk)}, "ConsistentRead": consistent}
        if prefix:
            kwargs["KeyConditionExpression"] = "pk = :pk AND begins_with(sk, :prefix)"
            kwargs["ExpressionAttributeValues"][":prefix"] = _s(prefix)
        while True:
            page = self.dynamodb.query(**kwargs)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
