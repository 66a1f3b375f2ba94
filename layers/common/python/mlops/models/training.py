"""Train the yield classifier: a seeded scikit-learn pipeline, exported to ONNX with a parity check.

The pipeline is SimpleImputer (missing values) -> StandardScaler (logistic regression only;
trees do not need scaling) -> classifier (gradient boosting, random forest or logistic
regression), trained with balanced sample weights against the class imbalance of yield data.
Training uses the older rows of a time-based split; the latest rows validate: the artifact's
parity is checked there, the threshold is chosen there by the declared policy and the
metrics, overall and per slice, are computed there on the ONNX probabilities that inference
will serve, with a fairness audit per sensitive attribute (`mlops.governance.fairness`; by
default every slice column) and the global feature importance of the exported artifact
(`mlops.explain.importance`). Same data + same config -> the same ONNX bytes and sha256.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import onnx
import skl2onnx
import sklearn
from numpy.typing import ArrayLike
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mlops import __version__ as mlops_version
from mlops.explain.importance import IMPORTANCE_ROWS, global_importance
from mlops.explain.onnx_model import NotExplainable, from_onnx
from mlops.governance.fairness import fairness_summary
from mlops.models.dataset import (
    TrainingDataError,
    TrainingSet,
    data_reference,
    make_training_set,
    time_split,
)
from mlops.models.evaluation import evaluate, slice_metrics
from mlops.models.onnx_export import PARITY_TOLERANCE, Runtime, check_parity, export_pipeline, sha256_hex
from mlops.models.signature import InputSignature
from mlops.models.thresholds import ThresholdChoice, ThresholdPolicy, choose_threshold

ModelKind = Literal["gradient_boosting", "random_forest", "logistic_regression"]
MODEL_KINDS: tuple[str, ...] = ("gradient_boosting", "random_forest", "logistic_regression")


@dataclass(frozen=True)
class TrainingConfig:
    """Everything that decides the trained model, besides the data.

    `max_depth=None` keeps the estimator's own default (3 for gradient boosting, unlimited for
    the forest). `class_weight="balanced"` weights each class by n / (2 * n_class).
    `sensitive` names the slice columns the fairness audit covers (None: every slice column;
    empty: none). `importance_rows` caps the validation rows explained for the global feature
    importance (0: none).
    """

    model: ModelKind = "gradient_boosting"
    n_estimators: int = 100
    learning_rate: float = 0.1
    max_depth: int | None = None
    min_samples_leaf: int = 1
    c: float = 1.0
    class_weight: Literal["balanced", "none"] = "balanced"
    imputer_strategy: Literal["median", "mean"] = "median"
    validation_fraction: float = 0.2
    seed: int = 0
    threshold_policy: ThresholdPolicy = field(default_factory=ThresholdPolicy.max_f1)
    calibration_bins: int = 10
    parity_tolerance: float = PARITY_TOLERANCE
    parity_runtime: Runtime = "auto"
    sensitive: tuple[str, ...] | None = None
    importance_rows: int = IMPORTANCE_ROWS

    def __post_init__(self) -> None:
        if self.sensitive is not None:
            object.__setattr__(self, "sensitive", tuple(self.sensitive))
        if self.importance_rows < 0:
            raise ValueError("importance_rows must be 0 or more")
        if self.model not in MODEL_KINDS:
            raise ValueError(f"unknown model {self.model!r}; one of {MODEL_KINDS}")
        if self.class_weight not in ("balanced", "none"):
            raise ValueError(f"class_weight must be 'balanced' or 'none', got {self.class_weight!r}")
        if self.imputer_strategy not in ("median", "mean"):
            raise ValueError(f"imputer_strategy must be 'median' or 'mean', got {self.imputer_strategy!r}")
        if self.n_estimators < 1 or self.min_samples_leaf < 1:
            raise ValueError("n_estimators and min_samples_leaf must be positive")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (the threshold policy as a nested dict)."""
        out = asdict(self)
        out["threshold_policy"] = self.threshold_policy.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainingConfig":
        """Rebuild from `to_dict` output (or a partial dict: missing keys keep defaults)."""
        kwargs = dict(data)
        if "threshold_policy" in kwargs and isinstance(kwargs["threshold_policy"], Mapping):
            kwargs["threshold_policy"] = ThresholdPolicy.from_dict(kwargs["threshold_policy"])
        return cls(**kwargs)


@dataclass(frozen=True)
class TrainedModel:
    """The outcome of one training run: the artifact and everything a registry version records.

    `onnx` and `sha256` are the artifact; `signature` its input; `parameters` the config and
    the estimator's effective parameters; `data` the training data reference (content hash,
    time range, rows, label balance per split); `metrics`, `slices` and `threshold` the
    validation results on ONNX probabilities; `parity` the check that passed; `fairness` the
    audit per sensitive attribute and `importance` the global feature importance (record keys
    ``fairness`` and ``explanations``; None when not computed). `pipeline` and
    the validation arrays are kept for in-process use (comparisons, fairness) and are not part
    of `to_record()`.
    """

    onnx: bytes
    sha256: str
    signature: InputSignature
    parameters: dict[str, Any]
    data: dict[str, Any]
    code_version: str
    environment: dict[str, str]
    metrics: dict[str, Any]
    slices: dict[str, list[dict[str, Any]]]
    threshold: ThresholdChoice
    parity: dict[str, Any]
    pipeline: Pipeline = field(repr=False, compare=False)
    validation_labels: np.ndarray = field(repr=False, compare=False)
    validation_probabilities: np.ndarray = field(repr=False, compare=False)
    fairness: dict[str, Any] | None = None
    importance: dict[str, Any] | None = None

    def to_record(self) -> dict[str, Any]:
        """Plain JSON-able lineage of this model (no artifact bytes), for the registry and card."""
        return {
            "sha256": self.sha256,
            "artifact_bytes": len(self.onnx),
            "signature": self.signature.to_dict(),
            "parameters": self.parameters,
            "data": self.data,
            "code_version": self.code_version,
            "environment": self.environment,
            "metrics": self.metrics,
            "slices": self.slices,
            "threshold": self.threshold.to_dict(),
            "parity": self.parity,
            "fairness": self.fairness,
            "explanations": self.importance,
        }


def default_code_version() -> str:
    """The code version recorded with a model: $MLOPS_CODE_VERSION (e.g. a git sha set at
    deploy time), else the mlops library version."""
    return os.environ.get("MLOPS_CODE_VERSION") or f"mlops {mlops_version}"


def build_pipeline(config: TrainingConfig) -> Pipeline:
    """The unfitted pipeline for `config`: imputer, scaler when the model needs it, classifier."""
    steps: list[tuple[str, Any]] = [("imputer", SimpleImputer(strategy=config.imputer_strategy))]
    if config.model == "gradient_boosting":
        clf: Any = GradientBoostingClassifier(
            n_estimators=config.n_estimators,
            learning_rate=config.learning_rate,
            max_depth=3 if config.max_depth is None else config.max_depth,
            min_samples_leaf=config.min_samples_leaf,
            random_state=config.seed,
        )
    elif config.model == "random_forest":
        clf = RandomForestClassifier(
            n_estimators=config.n_estimators,
            max_depth=config.max_depth,
            min_samples_leaf=config.min_samples_leaf,
            random_state=config.seed,
            n_jobs=1,
        )
    else:
        steps.append(("scaler", StandardScaler()))
        clf = LogisticRegression(C=config.c, max_iter=1000, random_state=config.seed)
    steps.append(("classifier", clf))
    return Pipeline(steps)


def balanced_sample_weights(labels: np.ndarray) -> np.ndarray:
    """Per-row weights n / (n_classes * n_class_of_row), so each class weighs the same in total
    (scikit-learn's "balanced" heuristic)."""
    y = np.asarray(labels)
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    return (y.shape[0] / (classes.shape[0] * counts))[inverse].astype(np.float64)


def _effective_parameters(pipeline: Pipeline) -> dict[str, Any]:
    params = pipeline.named_steps["classifier"].get_params()
    return {k: v for k, v in sorted(params.items()) if v is None or isinstance(v, (bool, int, float, str))}


def _environment() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "skl2onnx": skl2onnx.__version__,
        "onnx": onnx.__version__,
    }


def _check_trainable(data: TrainingSet, train: np.ndarray) -> None:
    y_train = data.labels[train]
    if np.unique(y_train).shape[0] < 2:
        raise TrainingDataError(f"the training rows hold only label {int(y_train[0])}; both classes are needed")
    empty = [name for j, name in enumerate(data.feature_names) if np.isnan(data.x[train, j]).all()]
    if empty:
        raise TrainingDataError(f"features entirely missing in the training rows: {empty}")


def train_model(
    features: Mapping[str, ArrayLike],
    labels: ArrayLike,
    timestamps: ArrayLike,
    config: TrainingConfig | None = None,
    *,
    slices: Mapping[str, Sequence[Any] | np.ndarray] | None = None,
    code_version: str | None = None,
) -> TrainedModel:
    """Train, export, check parity, choose the threshold and evaluate; see the module doc.

    `features` maps feature name -> float column (NaN = missing); its order is the model's
    input order. `slices` maps slice column (e.g. tester, fab_site) -> values per row, used
    for per-slice validation metrics and the fairness audit. Raises TrainingDataError for
    unusable data (or a sensitive attribute that is not a slice column), ParityError when the
    ONNX artifact disagrees with scikit-learn, ThresholdError when the policy cannot be met on
    the validation rows.
    """
    config = config or TrainingConfig()
    data = make_training_set(features, labels, timestamps)
    split = time_split(data.timestamps_ms, config.validation_fraction)
    _check_trainable(data, split.train)
    slice_columns = {}
    for column, values in (slices or {}).items():
        arr = np.asarray(values, dtype=object)
        if arr.shape != (data.n_rows,):
            raise TrainingDataError(f"slice column {column!r} has shape {arr.shape}, expected ({data.n_rows},)")
        slice_columns[column] = arr
    sensitive = tuple(slice_columns) if config.sensitive is None else config.sensitive
    unknown = [c for c in sensitive if c not in slice_columns]
    if unknown:
        raise TrainingDataError(f"sensitive attributes {unknown} are not among the slice columns "
                                f"{sorted(slice_columns)}")

    x_train, y_train = data.x[split.train], data.labels[split.train]
    x_val, y_val = data.x[split.validation], data.labels[split.validation]
    pipeline = build_pipeline(config)
    fit_params = {}
    if config.class_weight == "balanced":
        fit_params["classifier__sample_weight"] = balanced_sample_weights(y_train)
    pipeline.fit(x_train, y_train, **fit_params)
    if list(pipeline.classes_) != [0, 1]:
        raise TrainingDataError(f"expected classes [0, 1], the pipeline learned {list(pipeline.classes_)}")

    signature = InputSignature.of(data.feature_names)
    artifact = export_pipeline(pipeline, signature)
    max_diff, p_val = check_parity(
        artifact, pipeline, x_val, signature, tolerance=config.parity_tolerance, runtime=config.parity_runtime
    )
    p_val = np.clip(p_val, 0.0, 1.0)
    choice = choose_threshold(y_val, p_val, config.threshold_policy)
    metrics = evaluate(y_val, p_val, choice.threshold, n_bins=config.calibration_bins)
    per_slice = slice_metrics(
        y_val, p_val, choice.threshold, {c: v[split.validation] for c, v in slice_columns.items()}
    )
    fairness = fairness_summary(y_val, p_val, choice.threshold,
                                {c: slice_columns[c][split.validation] for c in sensitive}) if sensitive else None
    importance = None
    if config.importance_rows:
        try:
            importance = global_importance(from_onnx(artifact, signature.n_features), x_val, signature.features,
                                           max_rows=config.importance_rows)
        except NotExplainable as exc:
            importance = {"unavailable": str(exc)}
    return TrainedModel(
        onnx=artifact,
        sha256=sha256_hex(artifact),
        signature=signature,
        parameters={"config": config.to_dict(), "estimator": _effective_parameters(pipeline)},
        data=data_reference(data, split, config.validation_fraction),
        code_version=code_version or default_code_version(),
        environment=_environment(),
        metrics=metrics,
        slices=per_slice,
        threshold=choice,
        parity={"max_abs_diff": max_diff, "tolerance": config.parity_tolerance, "rows": int(x_val.shape[0])},
        pipeline=pipeline,
        validation_labels=y_val.astype(np.int8),
        validation_probabilities=p_val,
        fairness=fairness,
        importance=importance,
    )
