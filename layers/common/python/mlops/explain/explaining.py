"""What ``POST /explain`` does: explain one prediction of a registered version, feature by feature.

The body is a ``/predict`` body with explicit features (`mlops.models.predict_request`, the
same fields and the same field-level 400s)::

    {"model": "yield", "features": {"vdd": 1.21, "idd": 402.5, ...},
     "request": {"vdd_setpoint": 1.2},            request-time inputs of on-demand features
     "version": 3 | "alias": "challenger",        default: the "champion" alias
     "entity_id": "D-1042"}                       optional, only echoed

The version is chosen, loaded (artifact from S3, sha256 checked before anything runs), fed
(on-demand features computed, missing values per the version's policy) and scored exactly as
``/predict`` does, by the same `mlops.models.serving.Predictor` (nothing is logged). The
artifact bytes that passed the sha256 check are then rebuilt for explanation
(`mlops.explain.onnx_model`, once per warm function and version), and the row is explained:
exact TreeSHAP for tree ensembles, linear contributions for linear models, of the **margin**
(log-odds for gradient boosting and logistic regression, the probability itself for a
random forest).

The answer carries the attributions per feature (input order), the expected value, the margin,
the served probability (onnxruntime's, as ``/predict`` answers it) and the version. Two
invariants are checked on every answer, and a breach is a 500, never a wrong explanation:
additivity (attributions + expected value = margin, to `ADDITIVITY_TOLERANCE`) and that the
rebuilt model reproduces the served probability (to `SERVED_TOLERANCE`, float32 rounding).
A version that cannot be explained (an artifact without node covers, an unsupported graph) is
a 422 ``not_explainable``.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from datetime import datetime
from typing import Any

import numpy as np

from mlops.api_errors import ApiError
from mlops.explain.onnx_model import ExplainableModel, NotExplainable, from_onnx
from mlops.models.predict_request import PredictRequest, parse_predict
from mlops.models.serving import LoadedModel, Monotonic, Predictor

DEFAULT_ALIAS = "champion"
#: |sum of attributions + expected value - margin| allowed in an answer.
ADDITIVITY_TOLERANCE = 1e-6
#: |link(margin) - served probability| allowed: onnxruntime computes in float32.
SERVED_TOLERANCE = 1e-5


def parse_explain(body: Any) -> PredictRequest:
    """Check a ``POST /explain`` body: a ``/predict`` body whose row gives its features;
    without version or alias, the ``champion`` alias. ApiError 400 listing every problem."""
    req = parse_predict(body)
    if req.rows[0].features is None:
        raise ApiError.invalid({"features": "required: /explain takes explicit feature values "
                                            "(it does not read the online store)"})
    if req.version is None and req.alias is None:
        req = replace(req, alias=DEFAULT_ALIAS)
    return req


class _ArtifactTap:
    """The registry as the predictor's model cache sees it, keeping the artifact bytes it reads
    until the explainer takes them: the explanation is built from exactly the bytes whose
    sha256 the serving model checked, without a second download or a second check."""

    def __init__(self, registry: Any) -> None:
        self._registry = registry
        self._bytes: dict[tuple[str, int], bytes] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._registry, name)

    def read_artifact(self, version: Any) -> bytes:
        data = self._registry.read_artifact(version)
        self._bytes[(version.name, version.version)] = data
        return data

    def take(self, name: str, version: int) -> bytes | None:
        return self._bytes.pop((name, version), None)


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def _json_value(value: Any) -> Any:
    """A feature value for the answer: a finite number, or null."""
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


class Explainer:
    """Answers ``POST /explain``; ``registry`` is a `RegistryStore` (read-only use)."""

    def __init__(self, registry: Any, *, cache_ttl_s: float = 5.0, failure_ttl_s: float = 10.0,
                 monotonic: Monotonic = time.monotonic) -> None:
        self._tap = _ArtifactTap(registry)
        self.predictor = Predictor(self._tap, deployments=None, online=None, cache_ttl_s=cache_ttl_s,
                                   failure_ttl_s=failure_ttl_s, monotonic=monotonic)
        self._models: dict[tuple[str, int], ExplainableModel | NotExplainable] = {}

    def _explainable(self, name: str, loaded: LoadedModel) -> ExplainableModel:
        number = loaded.version.version
        hit = self._models.get((name, number))
        if hit is None:
            data = self._tap.take(name, number)
            if data is None:
                raise ApiError(500, "internal_error", f"{name} version {number}: the checked artifact is not at hand")
            signature = loaded.model.signature
            try:
                hit = from_onnx(data, signature.n_features, classes=signature.classes,
                                positive_index=signature.positive_index)
            except NotExplainable as exc:
                hit = exc
            self._models[(name, number)] = hit
        if isinstance(hit, NotExplainable):
            raise ApiError(422, "not_explainable", f"{name} version {number} cannot be explained: {hit}",
                           [{"field": "version", "problem": "not explainable"}], {"model": name, "version": number})
        return hit

    def explain(self, req: PredictRequest, request_id: str, now: datetime) -> dict[str, Any]:
        """The answer to a checked request (see the module docstring)."""
        outcome = self.predictor.predict(req, request_id, now)
        row = outcome.rows[0]
        loaded = self.predictor.models.get(req.model, row.version)
        model = self._explainable(req.model, loaded)
        names = loaded.model.signature.features
        explained = model.explain(np.array([[_number(row.features.get(n)) for n in names]]))
        phi = explained.attributions[0]
        margin = float(explained.margin[0])
        total = float(phi.sum())
        error = abs(total + explained.expected_value - margin)
        where = {"model": req.model, "version": row.version}
        if not error <= ADDITIVITY_TOLERANCE:
            raise ApiError(500, "explanation_inconsistent", f"attributions + expected value differ from the margin "
                           f"by {error:.3g} (> {ADDITIVITY_TOLERANCE:g}); quote request id {request_id}", extra=where)
        if not abs(float(explained.probability[0]) - row.probability) <= SERVED_TOLERANCE:
            raise ApiError(500, "explanation_mismatch", "the explained model does not reproduce the served "
                           f"probability; quote request id {request_id}", extra=where)
        body: dict[str, Any] = {
            "request_id": request_id, "model": req.model, "version": row.version, "variant": row.variant,
            "method": explained.method, "link": explained.link,
            "output": {"margin": margin, "probability": row.probability, "label": row.label,
                       "threshold": row.threshold},
            "expected_value": explained.expected_value,
            "attributions": {name: float(v) for name, v in zip(names, phi)},
            "additivity": {"sum": total, "error": error, "tolerance": ADDITIVITY_TOLERANCE},
            "inputs": {name: _json_value(row.features.get(name)) for name in names},
            "missing_features": {"policy": row.missing_policy, "imputed": list(row.imputed)},
        }
        if row.entity_id is not None:
            body["entity_id"] = row.entity_id
        return body
