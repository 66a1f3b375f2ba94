"""One training run, end to end: point-in-time training set -> train -> ONNX -> evaluate ->
register the version (pending) -> model card.

The training function (and later the retraining state machine) invokes it with an event::

    {"model": "yield",
     "views": ["device_parametrics"], "on_demand": ["vdd_idd_ratio"],   feature views by name
     "labels": {"device_id": [...], "event_timestamp": [...], "label": [...],
                "vdd_setpoint": [...], "tester_id": [...]},              label rows (columns)
     "feature_rows": {"device_parametrics": {"device_id": [...], "event_timestamp": [...],
                                             "vdd": [...], ...}},        optional: offline rows per
                                                                         view (default: read them
                                                                         from the offline store)
     "features": ["vdd", "idd", "vdd_idd_ratio", ...],  optional: the model's inputs, in order
     "slices": ["tester_id"],            optional: label columns to report metrics per value of
     "config": {...},                    optional: TrainingConfig fields
     "missing_policy": "impute",         impute or refuse missing features when serving
     "intended_use": "...", "out_of_scope": [...], "limitations": [...],
     "parent_version": 3,                optional (default: the current champion, if any)
     "code_version": "git:abc123"}       optional (default: $MLOPS_CODE_VERSION)

Each label row gets, per view, the latest offline row of its entity at or before the label's
``event_timestamp`` within the view's TTL (`mlops.features.pit.training_set`); on-demand
features are then computed per row from the joined values and the label row's request inputs,
exactly as serving computes them. The version records where its features come from, so
inference can serve it by entity id.

Without ``feature_rows`` the views' rows are read from the offline store (S3, DataBucket:
`mlops.features.offline_store`), the days from the earliest label time minus the view's TTL to
the latest label time, as `mlops.features.offline_store.historical_features` does; with them,
the given rows are joined instead (a reproducible, self-contained request: tests, sample
events). Label rows always come in the event. A model trained on plain columns instead (no
feature views, served with explicit features only) passes
``"training_set": {"features": {name: [...]}, "labels": [...], "timestamps": [...],
"slices": {column: [...]}}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlops.features.catalog import CATALOG, Catalog
from mlops.features.definitions import EVENT_TIMESTAMP, FeatureView, OnDemandFeatureView, content_hash
from mlops.features.pit import training_set
from mlops.features.timestamps import TimestampError, micros_of, parse_timestamp
from mlops.models.card import build_model_card, card_json, card_markdown
from mlops.models.entity_features import FeatureSource, source_from_views
from mlops.models.registry import MISSING_POLICIES, iso_utc, model_name_problem, parse_version
from mlops.models.registry_store import AliasNotFound, ModelNotFound, RegistryStore
from mlops.models.training import TrainingConfig, train_model

LABEL = "label"
NUMERIC = ("float", "int", "bool")
DEFAULT_USE = ("Rank devices by their risk of failing final test, from parametric test data, so that "
               "engineers review the riskiest first. Scores support a decision; they do not make it.")


class TrainingRequestError(ValueError):
    """The training event is malformed; the message names the field."""


@dataclass(frozen=True)
class TrainingRequest:
    """A checked training event (see the module docstring)."""

    model: str
    config: TrainingConfig
    missing_policy: str = "impute"
    views: tuple[FeatureView, ...] = ()
    on_demand: tuple[OnDemandFeatureView, ...] = ()
    entity: str | None = None
    labels: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    feature_rows: Mapping[str, Mapping[str, Sequence[Any]]] | None = None
    features: tuple[str, ...] | None = None
    slices: tuple[str, ...] = ()
    inline: Mapping[str, Any] | None = None
    intended_use: str = DEFAULT_USE
    out_of_scope: tuple[str, ...] = ()
    limitations: tuple[str, ...] = ()
    parent_version: int | None = None
    parent_given: bool = False
    code_version: str | None = None


def _strings(event: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = event.get(key, ())
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise TrainingRequestError(f"{key}: expected a list of strings")
    return tuple(value)


def _columns(value: Any, what: str) -> Mapping[str, Sequence[Any]]:
    if not isinstance(value, Mapping) or not value:
        raise TrainingRequestError(f"{what}: expected an object of columns (name -> list)")
    lengths = set()
    for name, col in value.items():
        if not isinstance(col, (list, tuple)):
            raise TrainingRequestError(f"{what}.{name}: expected a list")
        lengths.add(len(col))
    if len(lengths) > 1:
        raise TrainingRequestError(f"{what}: columns have different lengths {sorted(lengths)}")
    return value


def parse_training_request(event: Mapping[str, Any], catalog: Catalog = CATALOG) -> TrainingRequest:
    """Check a training event; TrainingRequestError names the first problem."""
    if not isinstance(event, Mapping):
        raise TrainingRequestError("the event must be an object")
    known = {"model", "views", "on_demand", "entity", "labels", "feature_rows", "features", "slices", "config",
             "missing_policy", "intended_use", "out_of_scope", "limitations", "parent_version", "code_version",
             "training_set"}
    unknown = sorted(set(event) - known)
    if unknown:
        raise TrainingRequestError(f"unknown field(s): {', '.join(unknown)}")
    problem = model_name_problem(event.get("model"))
    if problem:
        raise TrainingRequestError(f"model: {problem}")
    try:
        config = TrainingConfig.from_dict(event.get("config") or {})
    except (TypeError, ValueError, KeyError) as exc:
        raise TrainingRequestError(f"config: {exc}") from None
    policy = event.get("missing_policy", "impute")
    if policy not in MISSING_POLICIES:
        raise TrainingRequestError(f"missing_policy: expected one of {MISSING_POLICIES}")
    parent = event.get("parent_version")
    if parent is not None and parse_version(parent) is None:
        raise TrainingRequestError("parent_version: expected a positive integer version or null")
    common: dict[str, Any] = {
        "model": event["model"], "config": config, "missing_policy": policy,
        "intended_use": str(event.get("intended_use") or DEFAULT_USE),
        "out_of_scope": _strings(event, "out_of_scope"), "limitations": _strings(event, "limitations"),
        "parent_version": parse_version(parent) if parent is not None else None,
        "parent_given": "parent_version" in event,
        "code_version": event.get("code_version"),
    }
    if "training_set" in event:
        inline = event["training_set"]
        if not isinstance(inline, Mapping) or not {"features", "labels", "timestamps"} <= set(inline):
            raise TrainingRequestError("training_set: needs features, labels and timestamps")
        _columns(inline["features"], "training_set.features")
        return TrainingRequest(inline=inline, **common)
    try:
        views = tuple(catalog.feature_view(name) for name in _strings(event, "views"))
        on_demand = []
        for name in _strings(event, "on_demand"):
            view = catalog.view(name, "on_demand")
            if not isinstance(view, OnDemandFeatureView):
                raise TrainingRequestError(f"on_demand: {name!r} is a feature view, not an on-demand view")
            on_demand.append(view)
    except KeyError as exc:
        raise TrainingRequestError(str(exc)) from None
    if not views:
        raise TrainingRequestError("views: name at least one feature view (or give a training_set)")
    labels = _columns(event.get("labels"), "labels")
    for column in (EVENT_TIMESTAMP, LABEL):
        if column not in labels:
            raise TrainingRequestError(f"labels: the column {column!r} is required")
    rows = event.get("feature_rows")
    if rows is not None and not isinstance(rows, Mapping):
        raise TrainingRequestError("feature_rows: expected an object of view name -> columns")
    for view in views:
        if rows is not None:
            if view.name not in rows:
                raise TrainingRequestError(f"feature_rows: no rows for view {view.name!r}")
            _columns(rows[view.name], f"feature_rows.{view.name}")
        for key in view.join_keys:
            if key not in labels:
                raise TrainingRequestError(f"labels: the join key {key!r} of view {view.name!r} is required")
    features = tuple(event["features"]) if event.get("features") is not None else None
    if features is not None and not all(isinstance(f, str) for f in features):
        raise TrainingRequestError("features: expected a list of feature names")
    slices = _strings(event, "slices")
    for column in slices:
        if column not in labels:
            raise TrainingRequestError(f"slices: {column!r} is not a column of the label rows")
    return TrainingRequest(views=views, on_demand=tuple(on_demand), entity=event.get("entity"), labels=labels,
                           feature_rows=rows, features=features, slices=slices, **common)


def _times(values: Sequence[Any], what: str) -> np.ndarray:
    try:
        return np.array([parse_timestamp(v) for v in values], dtype=np.int64)
    except TimestampError as exc:
        raise TrainingRequestError(f"{what}: {exc}") from None


def _column(values: Sequence[Any]) -> np.ndarray:
    if all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values):
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    return np.array(values, dtype=object)


def _as_float(column: np.ndarray, name: str) -> np.ndarray:
    if column.dtype.kind == "f":
        return column.astype(np.float64)
    out = np.empty(column.shape[0], dtype=np.float64)
    for i, v in enumerate(column):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            out[i] = np.nan
        elif isinstance(v, (bool, np.bool_, int, float, np.integer, np.floating)):
            out[i] = float(v)
        else:
            raise TrainingRequestError(f"feature {name!r} is not numeric (value {v!r}); leave it out of features")
    return out


@dataclass(frozen=True)
class PreparedData:
    """A training set ready for `train_model`, with its lineage."""

    features: dict[str, np.ndarray]
    labels: np.ndarray
    timestamps: np.ndarray
    slices: dict[str, np.ndarray]
    source: FeatureSource | None
    lineage: dict[str, Any]


def _inline_rows(req: TrainingRequest, view: FeatureView) -> dict[str, np.ndarray]:
    given = req.feature_rows[view.name]  # type: ignore[index]
    rows = {name: _column(values) for name, values in given.items()}
    rows[EVENT_TIMESTAMP] = _times(given[EVENT_TIMESTAMP], f"feature_rows.{view.name}.event_timestamp")
    for key in view.join_keys:
        rows[key] = np.array(given[key], dtype=object)
    for name in view.feature_names:
        if name not in rows:
            rows[name] = np.full(len(rows[EVENT_TIMESTAMP]), np.nan)
    return rows


def prepare(req: TrainingRequest, offline: Any = None) -> PreparedData:
    """The point-in-time training set of a request (or its inline columns). ``offline`` (an
    `OfflineStore`) is read when the request gives no feature rows."""
    if req.inline is not None:
        inline = req.inline
        slices = {k: np.array(v, dtype=object) for k, v in (inline.get("slices") or {}).items()}
        features = {k: _as_float(_column(v), k) for k, v in inline["features"].items()}
        return PreparedData(features, np.asarray(inline["labels"]), np.asarray(inline["timestamps"]),
                            slices, None, {"kind": "inline_columns", "rows": len(inline["labels"])})
    labels = {name: _column(values) for name, values in req.labels.items()}
    labels[EVENT_TIMESTAMP] = _times(req.labels[EVENT_TIMESTAMP], "labels.event_timestamp")
    for view in req.views:
        for key in view.join_keys:
            labels[key] = np.array(req.labels[key], dtype=object)
    views = []
    read: dict[str, Any] = {}
    lo, hi = int(labels[EVENT_TIMESTAMP].min()), int(labels[EVENT_TIMESTAMP].max())
    for view in req.views:
        if req.feature_rows is not None:
            rows = _inline_rows(req, view)
        else:
            if offline is None:
                raise TrainingRequestError("feature_rows: not given, and no offline store to read them from")
            start, end = lo - micros_of(view.ttl), hi + 1
            rows = offline.read_columns(view, start, end)
            for key in view.join_keys:
                rows[key] = np.asarray(rows[key], dtype=object)
            read[view.name] = {"start": iso_utc(start), "end": iso_utc(end)}
        views.append((view, rows))
    joined = training_set(labels, views)
    n = len(labels[EVENT_TIMESTAMP])
    computed: dict[str, list[Any]] = {}
    for odfv in req.on_demand:
        inputs = odfv.input_names
        for i in range(n):
            out = odfv.compute({name: _scalar(joined[name][i]) if name in joined else None for name in inputs})
            for name, value in out.items():
                computed.setdefault(name, []).append(value)
    available: dict[str, np.ndarray] = {}
    dtypes: dict[str, str] = {}
    for view in req.views:
        for f in view.schema:
            available[f.name], dtypes[f.name] = joined[f.name], f.dtype
    for odfv in req.on_demand:
        for f in odfv.schema:
            available[f.name], dtypes[f.name] = np.array(computed.get(f.name, [None] * n), dtype=object), f.dtype
    if req.features is not None:
        unknown = [f for f in req.features if f not in available]
        if unknown:
            raise TrainingRequestError(f"features: {unknown} are not features of the named views")
        names = list(req.features)
    else:
        names = [name for name, dtype in dtypes.items() if dtype in NUMERIC]
    features = {name: _as_float(np.asarray(available[name]), name) for name in names}
    slices = {column: np.array(req.labels[column], dtype=object) for column in req.slices}
    source = source_from_views(req.views, req.on_demand, req.entity)
    lineage = {
        "kind": "point_in_time_join",
        "origin": "rows given in the training event" if req.feature_rows is not None
        else f"offline store s3://{getattr(offline, 'bucket', '?')}/{getattr(offline, 'prefix', 'features')}/",
        "label_rows": n,
        "feature_rows": {view.name: int(len(rows[EVENT_TIMESTAMP])) for view, rows in views},
        "read": read,
        "views": {v.name: content_hash(v) for v in req.views},
        "on_demand": {v.name: content_hash(v) for v in req.on_demand},
        "matched": {v.name: int(np.count_nonzero(~np.isnan(features[v.feature_names[0]])))
                    for v in req.views if v.feature_names[0] in features},
    }
    label_values = np.asarray(req.labels[LABEL])
    return PreparedData(features, label_values, labels[EVENT_TIMESTAMP].astype("datetime64[us]"),
                        slices, source, lineage)


def _scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def run_training(req: TrainingRequest, registry: RegistryStore, *, parity_runtime: str | None = None,
                 created_by: str = "", offline: Any = None) -> dict[str, Any]:
    """Train, register the version (pending) with its card, and return a summary. ``offline``
    (an `OfflineStore`, or a callable returning one) is read when the request gives no rows."""
    if callable(offline) and not hasattr(offline, "read_columns"):
        offline = offline() if req.feature_rows is None and req.inline is None else None
    data = prepare(req, offline)
    config = req.config
    if parity_runtime is not None:
        config = TrainingConfig.from_dict({**config.to_dict(), "parity_runtime": parity_runtime})
    trained = train_model(data.features, data.labels, data.timestamps, config,
                          slices=data.slices or None, code_version=req.code_version)
    record = trained.to_record()
    record["data"]["source"] = data.lineage
    parent = req.parent_version
    if not req.parent_given:
        try:
            parent = registry.get_alias(req.model, "champion")
        except (ModelNotFound, AliasNotFound):
            parent = None

    def card_writer(version: int, created_at: str) -> tuple[str, str]:
        card = build_model_card(name=req.model, version=version, record=record, intended_use=req.intended_use,
                                out_of_scope=req.out_of_scope, limitations=req.limitations, created_at=created_at)
        return card_json(card), card_markdown(card)

    version = registry.register_version(
        req.model, artifact=trained.onnx, record=record, missing_policy=req.missing_policy,
        parent_version=parent, feature_source=None if data.source is None else data.source.to_dict(),
        created_by=created_by, card_writer=card_writer,
    )
    baseline = save_baseline(registry, version.name, version.version, data, record)
    metrics = trained.metrics
    return {
        "model": version.name,
        "version": version.version,
        "approval_status": version.approval_status,
        "sha256": version.sha256,
        "artifact_key": version.artifact_key,
        "card": {"json_key": version.card_json_key, "markdown_key": version.card_markdown_key},
        "parent_version": version.parent_version,
        "features": list(trained.signature.features),
        "feature_source": version.feature_source,
        "missing_policy": version.missing_policy,
        "threshold": trained.threshold.threshold,
        "metrics": {k: metrics.get(k) for k in ("roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1",
                                                 "log_loss", "brier")},
        "parity": trained.parity,
        "training_data": {k: record["data"][k] for k in ("rows", "content_sha256", "time_range", "split_time")},
        "baseline": baseline,
    }


def save_baseline(registry: RegistryStore, name: str, number: int, data: PreparedData,
                  record: Mapping[str, Any]) -> dict[str, Any]:
    """Store the drift baseline of a registered version (its training columns summarised:
    `mlops.drift.baseline_store`), next to its artifact; returns where and its sha256."""
    from mlops.drift.baseline_store import build_and_save

    stored = build_and_save(name, number, data.features, bucket=registry.bucket, s3=registry.s3,
                            metadata={"rows": int(len(data.labels)),
                                      "content_sha256": record["data"].get("content_sha256")})
    return stored.to_dict()
