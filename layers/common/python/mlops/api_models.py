"""The HTTP API's request and response models (pydantic): what `GET /openapi.json` documents
and what Powertools validates before a route runs (`mlops.api_validation`).

The models hold the static shape of each request: types, required keys, ranges, no unknown
keys. What depends on stored state (a feature view's schema, a model's registered features,
whether a version exists) stays in the domain parsers the routes call after validation.
Response models name the keys a client can rely on and allow more (``extra="allow"``).
The InferenceFunction does not import this module (its cold start): the spec generator
declares its routes from `PredictBody` and `BatchBody`.
"""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

from mlops.api_limits import MAX_BODY_BYTES

MAX_BATCH_ROWS = 100  # mlops.models.predict_request.MAX_BATCH_ROWS (not imported: keeps this module light)
MAX_INGEST_ROWS = 10_000  # mlops.features.ingest.MAX_ROWS
MAX_REASON = 1000
Version = int
Reason = Optional[str]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Answer(BaseModel):
    model_config = ConfigDict(extra="allow")


# ------------------------------------------------------------------------------- errors
class ErrorDetail(BaseModel):
    field: Optional[str] = Field(description="the request field at fault: body.label, query.hours, path.name ...")
    problem: str


class ErrorBody(_Answer):
    """Every 4xx/5xx body: a stable code, a sentence, and each offending field."""

    error: str = Field(description="invalid_request, not_found, conflict, payload_too_large, ...")
    message: str
    details: list[ErrorDetail]


class Forbidden(_Answer):
    """API Gateway's own answer to a missing or unknown API key (``{"message": "Forbidden"}``);
    a route that refuses on purpose adds the `ErrorBody` keys."""

    message: str


ERROR_STATUSES: dict[int, Any] = {
    400: "invalid_request (a field fails validation: each is named in details, e.g. body.label, "
         "query.hours, path.version), or another 4xx code the route documents (batch_too_large ...)",
    403: ("a missing or wrong x-api-key (API Gateway's own body), or a route's refusal", Forbidden),
    404: "the model, version, alias, experiment, chain or entity is not known",
    409: "the request contradicts what is stored (conflict)",
    413: f"payload_too_large: the body is over {MAX_BODY_BYTES} bytes (1 MiB)",
    415: "unsupported_media_type: a body that is not application/json",
    422: "the request is well formed but cannot be served (e.g. invalid_features)",
    429: "throttled: retry after the Retry-After header",
    503: "temporarily unavailable: retry after the Retry-After header",
}


def responses(ok: type[BaseModel] | None, description: str, status: int = 200,
              extra: dict[int, Any] | None = None) -> dict[int, dict[str, Any]]:
    """A route's ``responses=`` for Powertools: the success model and every error status
    (``extra``: ``{status: description}`` or ``{status: (description, model)}``)."""
    answer: dict[int, dict[str, Any]] = {
        status: {"description": description,
                 "content": {"application/json": {"model": ok or JsonObject}}}}
    for code, text in {**ERROR_STATUSES, **(extra or {})}.items():  # type: ignore[dict-item]
        text, model = (text, ErrorBody) if isinstance(text, str) else text
        answer[code] = {"description": text, "content": {"application/json": {"model": model}}}
    return answer


class JsonObject(_Answer):
    """A JSON object (see the route's description for its keys)."""


# ------------------------------------------------------------------------------- health
class HealthReport(_Answer):
    status: Literal["ok", "degraded"]
    version: str
    checks: dict[str, str]


# ------------------------------------------------------------------------------- predictions
class PredictRow(_Body):
    entity_id: Optional[Union[str, int]] = Field(default=None, description="read the online store for this entity")
    features: Optional[dict[str, Optional[float]]] = Field(default=None, description="explicit feature values")
    request: Optional[dict[str, Any]] = Field(default=None, description="request-time inputs of on-demand views")


class PredictBody(PredictRow):
    """``POST /predict`` and ``POST /explain``: one row, the model, optionally a pinned version or alias."""

    model: str
    version: Optional[Version] = Field(default=None, ge=1)
    alias: Optional[str] = None


class BatchBody(_Body):
    """``POST /predict/batch``: 1 to 100 rows (more is a 400 batch_too_large)."""

    model: str
    version: Optional[Version] = Field(default=None, ge=1)
    alias: Optional[str] = None
    rows: list[PredictRow] = Field(min_length=1, max_length=MAX_BATCH_ROWS)


class Prediction(_Answer):
    request_id: str
    model: str
    version: int


class BatchPrediction(_Answer):
    request_id: str
    model: str
    predictions: list[dict[str, Any]]


# ------------------------------------------------------------------------------- feedback
class FeedbackBody(_Body):
    """The true label of a prediction: by ``request_id``, or by ``entity_id`` + ``timestamp``."""

    label: int = Field(ge=0, le=1)
    request_id: Optional[str] = Field(default=None, min_length=1, max_length=256)
    entity_id: Optional[Union[str, int]] = None
    timestamp: Optional[Union[str, int, float]] = None
    model: Optional[str] = None


class FeedbackAnswer(_Answer):
    request_id: str
    label: int
    duplicate: bool
    correct: bool
    outcome_recorded: bool = Field(description="this call counted the prediction's experiment outcome (then "
                                               "`experiment` holds it); false when there is no experiment or it "
                                               "was counted before")


# ------------------------------------------------------------------------------- features
class IngestBody(_Body):
    """Rows for a feature view (each row checked against the view's schema)."""

    view: str
    rows: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_INGEST_ROWS)
    all_or_nothing: bool = False


# ------------------------------------------------------------------------------- registry admin
class AliasMoveBody(_Body):
    version: Version = Field(ge=1)
    reason: Reason = Field(default=None, max_length=MAX_REASON)


class ApprovalBody(_Body):
    status: Literal["approved", "rejected", "pending"]
    reason: Reason = Field(default=None, max_length=MAX_REASON)


class FaultBody(_Body):
    """Injected faults for one version (stacks deployed with FaultInjection=enabled)."""

    delay_ms: Optional[float] = Field(default=None, ge=0)
    error_rate: Optional[float] = Field(default=None, ge=0, le=1)
    log_drop_rate: Optional[float] = Field(default=None, ge=0, le=1)


class RetrainBody(_Body):
    """A manual retraining run; the optional keys override the model's declared spec."""

    model: str
    reason: Optional[str] = Field(default=None, max_length=MAX_REASON)
    window: Optional[dict[str, Any]] = None
    spec: Optional[dict[str, Any]] = None
    data_policy: Optional[dict[str, Any]] = None
    gate: Optional[dict[str, Any]] = None
    canary: Optional[dict[str, Any]] = None
    code_version: Optional[str] = None


# ------------------------------------------------------------------------------- experiments
class VariantBody(_Body):
    name: str
    weight: Optional[float] = Field(default=None, gt=0, description="a share of the traffic (normalised)")
    model_version: int = Field(ge=1)


class MetricBody(_Body):
    name: str
    kind: Optional[str] = None
    direction: Optional[str] = None
    baseline: Optional[float] = None
    std: Optional[float] = None


class ExperimentBody(_Body):
    """An experiment's definition (cross-field rules are checked after: weights, control ...)."""

    experiment_id: str
    model: str
    variants: list[VariantBody] = Field(min_length=1)
    name: Optional[str] = None
    description: Optional[str] = None
    control: Optional[str] = None
    traffic: Optional[float] = Field(default=None, gt=0, le=1)
    primary_metric: Optional[Union[str, MetricBody]] = None
    guardrail_metrics: Optional[list[Union[str, MetricBody]]] = None
    mde: Optional[float] = Field(default=None, gt=0)
    mde_kind: Optional[Literal["relative", "absolute"]] = None
    alpha: Optional[float] = Field(default=None, gt=0, le=0.5)
    power: Optional[float] = Field(default=None, gt=0, lt=1)
    start: Optional[str] = None
    stop: Optional[str] = None
    salt: Optional[str] = None
    mode: Optional[Literal["ab", "aa"]] = None
    sequential: Optional[Any] = None
    correction: Optional[Literal["holm", "bonferroni", "none"]] = None
    bandit: Optional[dict[str, Any]] = None


class StopBody(_Body):
    reason: str = Field(default="", max_length=MAX_REASON)
