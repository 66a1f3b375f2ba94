"""The training side of the retraining state machine, one step per state: validate the data,
build the point-in-time training set, train a candidate and compare it with the champion on
the same holdout, register it as the challenger.

A run is the JSON object every step receives (``run``; see `mlops.rollout.plan`): the model,
the data window ``[start, end)``, the training spec (feature views, on-demand views, features,
slices, config, missing-value policy and the label view) and a ``run_id``. Steps hand work to
each other through S3 (ArtifactsBucket, ``staging/<model>/<run_id>/``): the joined training set
(``dataset.npz`` + ``dataset.json``, no pickles) and the candidate (``model.onnx`` +
``candidate.json``). Nothing reaches the registry before `register_candidate`, so a run that
fails or is gated out leaves no version behind: only staging objects, which S3 lifecycle rules
may expire.

Label rows are the label view's offline rows (``device_outcomes`` for the worked example) with
``event_timestamp`` in the window: the time the outcome was known, which is what the
point-in-time join needs.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from mlops.features.catalog import CATALOG, Catalog
from mlops.features.definitions import EVENT_TIMESTAMP
from mlops.features.timestamps import parse_timestamp
from mlops.models.card import build_model_card, card_json, card_markdown
from mlops.models.registry import iso_utc
from mlops.models.registry_store import AliasNotFound, ModelNotFound, RegistryStore
from mlops.models.training_job import DEFAULT_USE, PreparedData, parse_training_request, prepare, save_baseline
from mlops.rollout.data_validation import DataPolicy, check_features, check_labels




def staging_prefix(run: Mapping[str, Any]) -> str:
    """Where a run's intermediate objects live."""
    return f"staging/{run['model']}/{run['run_id']}/"


def label_columns(offline: Any, run: Mapping[str, Any], catalog: Catalog = CATALOG) -> dict[str, list[Any]]:
    """The label view's rows in the run's window, as columns (timestamps as ISO strings)."""
    view = catalog.feature_view(run["spec"]["label_view"], "label_view")
    rows = offline.read_rows(view, parse_timestamp(run["start"]), parse_timestamp(run["end"]))
    columns: dict[str, list[Any]] = {name: [] for name in [*view.join_keys, EVENT_TIMESTAMP, *view.feature_names]}
    for row in rows:
        for name in columns:
            value = row.get(name)
            if name == EVENT_TIMESTAMP:  # epoch micros in the offline rows
                value = iso_utc(value if isinstance(value, int) else parse_timestamp(value))
            columns[name].append(value)
    return columns


def validate_data(run: Mapping[str, Any], offline: Any, catalog: Catalog = CATALOG) -> dict[str, Any]:
    """Step 1: the label rows of the window (count, nulls, label balance, keys) and the
    feature views' rows (present at all). DataValidationError names the first problem."""
    policy = DataPolicy.from_dict(run.get("data_policy"))
    spec = run["spec"]
    labels = label_columns(offline, run, catalog)
    keys = sorted({k for name in spec["views"] for k in catalog.feature_view(name).join_keys})
    report = check_labels(labels, keys, policy).to_dict()
    from mlops.rollout.data_validation import DataValidationError

    start = parse_timestamp(run["start"])
    for name in spec["views"]:
        view = catalog.feature_view(name)
        rows = offline.keys(view.name, start - int(view.ttl.total_seconds() * 1e6), parse_timestamp(run["end"]))
        if not rows:
            raise DataValidationError(f"schema: feature view {name!r} has no offline data in the window")
    return report


def _request(run: Mapping[str, Any], labels: Mapping[str, list[Any]]) -> dict[str, Any]:
    spec = run["spec"]
    event = {k: spec[k] for k in ("views", "on_demand", "features", "slices", "config", "missing_policy")
             if spec.get(k) is not None}
    event["model"] = run["model"]
    event["labels"] = labels
    return event


def build_training_set(run: Mapping[str, Any], offline: Any, s3: Any, bucket: str,
                       catalog: Catalog = CATALOG) -> dict[str, Any]:
    """Step 2: join the label rows to the views point-in-time, check the joined features'
    null shares, and stage the set in S3. Returns its keys, rows and null shares."""
    labels = label_columns(offline, run, catalog)
    req = parse_training_request(_request(run, labels), catalog)
    data = prepare(req, offline)
    shares = check_features(data.features, DataPolicy.from_dict(run.get("data_policy")))
    arrays: dict[str, np.ndarray] = {f"f:{k}": np.asarray(v, dtype=np.float64) for k, v in data.features.items()}
    arrays["labels"] = np.asarray(data.labels, dtype=np.int8)
    arrays["timestamps"] = np.asarray(data.timestamps).astype("datetime64[us]").astype(np.int64)
    for k, v in data.slices.items():
        arrays[f"s:{k}"] = np.array(["" if x is None else str(x) for x in v], dtype=str)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    prefix = staging_prefix(run)
    meta = {"features": list(data.features), "slices": list(data.slices), "lineage": data.lineage,
            "source": None if data.source is None else data.source.to_dict()}
    s3.put_object(Bucket=bucket, Key=prefix + "dataset.npz", Body=buffer.getvalue())
    s3.put_object(Bucket=bucket, Key=prefix + "dataset.json", Body=json.dumps(meta).encode())
    return {"key": prefix + "dataset.npz", "rows": int(arrays["labels"].shape[0]),
            "positives": int(arrays["labels"].sum()), "null_share": shares}


def load_training_set(run: Mapping[str, Any], s3: Any, bucket: str) -> tuple[PreparedData, dict[str, Any]]:
    """The staged training set of a run (no pickles: plain arrays)."""
    prefix = staging_prefix(run)
    meta = json.loads(s3.get_object(Bucket=bucket, Key=prefix + "dataset.json")["Body"].read())
    raw = s3.get_object(Bucket=bucket, Key=prefix + "dataset.npz")["Body"].read()
    with np.load(io.BytesIO(raw), allow_pickle=False) as z:
        features = {name: z[f"f:{name}"] for name in meta["features"]}
        slices = {name: z[f"s:{name}"].astype(object) for name in meta["slices"]}
        data = PreparedData(features, z["labels"], z["timestamps"].astype("datetime64[us]"), slices, None,
                            meta["lineage"])
    return data, meta


def _champion(registry: RegistryStore, model: str) -> Any:
    try:
        return registry.get_version(model, registry.get_alias(model, "champion"))
    except (ModelNotFound, AliasNotFound):
        return None


def train_candidate(run: Mapping[str, Any], registry: RegistryStore, s3: Any, bucket: str, *,
                    parity_runtime: str | None = None) -> dict[str, Any]:
    """Step 3 and 4: train on the staged set (ONNX export, parity, threshold, evaluation), then
    score the champion on the same holdout rows; stage the candidate. Returns both sides'
    metrics and slices, the parity check and the staged keys."""
    from mlops.models.dataset import make_training_set, time_split
    from mlops.models.evaluation import evaluate, slice_metrics
    from mlops.models.onnx_export import onnx_probabilities
    from mlops.models.signature import InputSignature
    from mlops.models.training import TrainingConfig, train_model

    data, meta = load_training_set(run, s3, bucket)
    spec = run["spec"]
    config = TrainingConfig.from_dict({**(spec.get("config") or {}),
                                       **({"parity_runtime": parity_runtime} if parity_runtime else {})})
    trained = train_model(data.features, data.labels, data.timestamps, config, slices=data.slices or None,
                          code_version=run.get("code_version"))
    record = trained.to_record()
    record["data"]["source"] = {**data.lineage, "window": {"start": run["start"], "end": run["end"]},
                                "run_id": run["run_id"]}
    split = time_split(make_training_set(data.features, data.labels, data.timestamps).timestamps_ms,
                       config.validation_fraction)
    y_val = np.asarray(data.labels)[split.validation].astype(np.int8)
    val_slices = {k: v[split.validation] for k, v in data.slices.items()}
    champion_side = None
    champion = _champion(registry, run["model"])
    if champion is not None:
        names = champion.feature_names
        missing = [n for n in names if n not in data.features]
        if missing:
            champion_side = {"version": champion.version, "comparable": False,
                             "note": f"the champion needs features the candidate's set lacks: {missing}"}
        else:
            x = np.column_stack([np.asarray(data.features[n], dtype=np.float64)[split.validation] for n in names])
            signature = InputSignature.from_dict(champion.signature)
            p = onnx_probabilities(registry.read_artifact(champion), x, signature, runtime=config.parity_runtime)[:, 1]
            p = np.clip(p, 0.0, 1.0)
            champion_side = {"version": champion.version, "comparable": True,
                             "metrics": evaluate(y_val, p, champion.threshold, n_bins=config.calibration_bins),
                             "slices": slice_metrics(y_val, p, champion.threshold, val_slices)}
    prefix = staging_prefix(run)
    s3.put_object(Bucket=bucket, Key=prefix + "model.onnx", Body=trained.onnx)
    candidate = {
        "sha256": trained.sha256, "artifact_key": prefix + "model.onnx", "record_key": prefix + "candidate.json",
        "metrics": trained.metrics, "slices": trained.slices, "parity": trained.parity,
        "fairness": record.get("fairness"), "threshold": trained.threshold.threshold,
        "features": list(trained.signature.features), "champion": champion_side,
        "holdout_rows": int(y_val.shape[0]),
    }
    s3.put_object(Bucket=bucket, Key=prefix + "candidate.json",
                  Body=json.dumps({"record": record, "source": meta["source"]}, default=str).encode())
    return candidate


def register_candidate(run: Mapping[str, Any], candidate: Mapping[str, Any], registry: RegistryStore, s3: Any,
                       bucket: str, *, created_by: str = "") -> dict[str, Any]:
    """Step 6: register the staged candidate (pending) with its card and drift baseline and
    point the ``challenger`` alias at it. The sha256 of the staged bytes is checked first."""
    from mlops.models.onnx_export import sha256_hex

    artifact = s3.get_object(Bucket=bucket, Key=candidate["artifact_key"])["Body"].read()
    if sha256_hex(artifact) != candidate["sha256"]:
        raise ValueError("the staged artifact does not match the candidate's sha256; not registering it")
    staged = json.loads(s3.get_object(Bucket=bucket, Key=candidate["record_key"])["Body"].read())
    record = staged["record"]
    spec = run["spec"]
    champion = _champion(registry, run["model"])

    def card_writer(version: int, created_at: str) -> tuple[str, str]:
        card = build_model_card(name=run["model"], version=version, record=record,
                                intended_use=spec.get("intended_use") or DEFAULT_USE,
                                limitations=tuple(spec.get("limitations") or ()), created_at=created_at)
        return card_json(card), card_markdown(card)

    version = registry.register_version(
        run["model"], artifact=artifact, record=record, missing_policy=spec.get("missing_policy", "impute"),
        parent_version=None if champion is None else champion.version, feature_source=staged["source"],
        created_by=created_by, card_writer=card_writer)
    data, _ = load_training_set(run, s3, bucket)
    baseline = save_baseline(registry, run["model"], version.version, data, record)
    move = registry.move_alias(run["model"], "challenger", version.version, by=created_by,
                               reason=f"retraining run {run['run_id']} ({', '.join(run.get('reasons', [])) or 'manual'})")
    return {"version": version.version, "sha256": version.sha256, "approval_status": version.approval_status,
            "artifact_key": version.artifact_key, "baseline": baseline, "challenger_move": move.to_api()}
