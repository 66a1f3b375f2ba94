"""What inference runs: an ONNX model loaded only after its sha256 checks out.

`ServingModel.load` hashes the artifact bytes and refuses to build a session when the hash
differs from the registry's, so a corrupted or swapped artifact is never run. It then checks
the signature (feature order) against the one stored inside the artifact. Predictions take
feature values by name and build the float32 tensor in the signature's order, with the
model's declared missing-value policy:

- "impute": a missing feature (absent, None or NaN) is passed as NaN and the pipeline's
  imputer fills it; the result names the imputed features.
- "refuse": a missing feature raises `MissingFeaturesError` naming every missing feature.

Wrong types, infinities and unexpected features raise `FeatureValidationError` with one
message per field. This module imports numpy and onnxruntime only (never scikit-learn, scipy
or skl2onnx), and nothing is ever unpickled: the serving cold start stays small.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import onnxruntime as ort

from mlops.models.signature import METADATA_KEY, InputSignature

MissingPolicy = Literal["impute", "refuse"]
MISSING_POLICIES: tuple[str, ...] = ("impute", "refuse")


class ArtifactIntegrityError(ValueError):
    """The artifact's sha256 is not the expected one; no session was created."""

    def __init__(self, expected: str, actual: str):
        self.expected = expected
        self.actual = actual
        super().__init__(f"model artifact sha256 mismatch: expected {expected}, got {actual}; not loaded")


class SignatureMismatchError(ValueError):
    """The declared signature does not match the artifact's inputs or embedded signature."""


class FeatureValidationError(ValueError):
    """Feature values are unusable; `errors` maps a field path to its message."""

    def __init__(self, errors: Mapping[str, str]):
        self.errors = dict(errors)
        self.missing = tuple(k for k, v in self.errors.items() if v == "missing")
        detail = "; ".join(f"{k}: {v}" for k, v in self.errors.items())
        super().__init__(f"invalid features: {detail}")


class MissingFeaturesError(FeatureValidationError):
    """Features are missing and the model's policy is to refuse; `missing` names them."""


class Prediction(NamedTuple):
    """One row's probability of the positive class and the features that were imputed."""

    probability: float
    imputed: tuple[str, ...]


@dataclass(frozen=True)
class BatchPrediction:
    """Probabilities of the positive class per row and, per row, the imputed features."""

    probabilities: np.ndarray
    imputed: tuple[tuple[str, ...], ...]


def _value(value: Any) -> float | str:
    """A feature value as a float (NaN if missing), or an error message."""
    kind = type(value)
    if kind is float:
        if math.isinf(value):
            return "must be finite"
        return value
    if value is None:
        return math.nan
    if kind is int:
        return float(value)
    if kind is bool or isinstance(value, np.bool_):
        return f"expected a number, got {kind.__name__}"
    if isinstance(value, (np.floating, np.integer, float, int)):
        v = float(value)
        return "must be finite" if math.isinf(v) else v
    return f"expected a number, got {kind.__name__}"


class ServingModel:
    """An onnxruntime session plus the signature and missing-value policy of one version."""

    def __init__(self, session: ort.InferenceSession, signature: InputSignature, sha256: str,
                 missing_policy: MissingPolicy):
        """Use `ServingModel.load`; this assumes the session was checked already."""
        self.session = session
        self.signature = signature
        self.sha256 = sha256
        self.missing_policy = missing_policy
        self._names = signature.features
        self._known = frozenset(signature.features)
        self._input = signature.input_name
        self._outputs = [signature.output_name]
        self._pos = signature.positive_index

    @classmethod
    def load(
        cls,
        onnx_bytes: bytes,
        sha256: str,
        *,
        signature: InputSignature | Mapping[str, Any] | None = None,
        missing_policy: MissingPolicy = "impute",
        threads: int = 1,
    ) -> "ServingModel":
        """Verify the artifact's sha256, then create the session and check the signature.

        `signature` (object or its dict form) is the registry's; when given it must equal the
        one embedded in the artifact. `threads` is onnxruntime's intra-op thread count: one
        suits a single-row Lambda call. Raises ArtifactIntegrityError before any loading when
        the hash differs, SignatureMismatchError when the input does not match.
        """
        if missing_policy not in MISSING_POLICIES:
            raise ValueError(f"missing_policy must be one of {MISSING_POLICIES}, got {missing_policy!r}")
        actual = hashlib.sha256(onnx_bytes).hexdigest()
        if not hmac.compare_digest(actual, sha256.strip().lower()):
            raise ArtifactIntegrityError(sha256, actual)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
        embedded_json = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        embedded = InputSignature.from_json(embedded_json) if embedded_json else None
        if isinstance(signature, Mapping):
            signature = InputSignature.from_dict(signature)
        if signature is None:
            if embedded is None:
                raise SignatureMismatchError("the artifact carries no signature and none was given")
            signature = embedded
        elif embedded is not None and embedded != signature:
            raise SignatureMismatchError(
                f"declared signature {list(signature.features)} differs from the artifact's "
                f"{list(embedded.features)}"
            )
        inputs = {i.name: i for i in session.get_inputs()}
        spec = inputs.get(signature.input_name)
        if spec is None or len(inputs) != 1:
            raise SignatureMismatchError(f"expected one input {signature.input_name!r}, the artifact has {list(inputs)}")
        if spec.type != "tensor(float)" or len(spec.shape) != 2 or spec.shape[1] != signature.n_features:
            raise SignatureMismatchError(
                f"input {spec.name!r} is {spec.type} {spec.shape}, expected tensor(float) [None, {signature.n_features}]"
            )
        if signature.output_name not in {o.name for o in session.get_outputs()}:
            raise SignatureMismatchError(f"the artifact has no output {signature.output_name!r}")
        return cls(session, signature, actual, missing_policy)

    def _row(self, features: Mapping[str, Any], prefix: str, allow_extra: bool,
             errors: dict[str, str]) -> tuple[list[float], tuple[str, ...]]:
        row: list[float] = []
        missing: list[str] = []
        get = features.get
        for name in self._names:
            v = get(name)
            if type(v) is float and v - v == 0.0:  # fast path: a finite float
                row.append(v)
                continue
            checked = _value(v)
            if type(checked) is str:
                errors[prefix + name] = checked
                row.append(math.nan)
            else:
                if checked != checked:
                    missing.append(name)
                row.append(checked)  # type: ignore[arg-type]
        if not allow_extra and not self._known.issuperset(features):
            for key in features:
                if key not in self._known:
                    errors[prefix + str(key)] = "unexpected feature"
        if missing and self.missing_policy == "refuse":
            for name in missing:
                errors[prefix + name] = "missing"
        return row, tuple(missing)

    @staticmethod
    def _raise(errors: dict[str, str]) -> None:
        if all(v == "missing" for v in errors.values()):
            raise MissingFeaturesError(errors)
        raise FeatureValidationError(errors)

    def predict_one(self, features: Mapping[str, Any], *, allow_extra: bool = False) -> Prediction:
        """The positive-class probability of one row given as {feature name: value}.

        `allow_extra` ignores names the model does not use (e.g. a whole feature view's row).
        """
        errors: dict[str, str] = {}
        row, imputed = self._row(features, "", allow_extra, errors)
        if errors:
            self._raise(errors)
        x = np.array([row], dtype=np.float32)
        p = self.session.run(self._outputs, {self._input: x})[0]
        return Prediction(probability=float(p[0, self._pos]), imputed=imputed)

    def predict_batch(self, rows: Sequence[Mapping[str, Any]], *, allow_extra: bool = False) -> BatchPrediction:
        """Positive-class probabilities of many rows in one session call; errors are keyed
        `rows[i].feature`."""
        errors: dict[str, str] = {}
        matrix = []
        imputed = []
        for i, features in enumerate(rows):
            row, miss = self._row(features, f"rows[{i}].", allow_extra, errors)
            matrix.append(row)
            imputed.append(miss)
        if errors:
            self._raise(errors)
        if not matrix:
            return BatchPrediction(np.empty(0, dtype=np.float64), ())
        p = self.predict_matrix(np.array(matrix, dtype=np.float32))
        return BatchPrediction(probabilities=p, imputed=tuple(imputed))

    def predict_matrix(self, x: np.ndarray) -> np.ndarray:
        """Positive-class probabilities (float64) of a [n, n_features] matrix already in
        signature order; NaN is passed to the imputer whatever the policy."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.signature.n_features:
            raise FeatureValidationError({"features": f"expected shape [n, {self.signature.n_features}], got {list(x.shape)}"})
        if np.isinf(x).any():
            raise FeatureValidationError({"features": "must be finite"})
        return self.session.run(self._outputs, {self._input: x})[0][:, self._pos].astype(np.float64)
