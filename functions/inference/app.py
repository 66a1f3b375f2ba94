"""POST /predict (one row) and POST /predict/batch (at most 100 rows, MAX_BATCH_ROWS): score with the deployed model.

Thin: parse the body (`mlops.models.predict_request`), answer it (`mlops.models.serving`), log
every scored row to the PredictionsTable (`mlops.models.prediction_log`), print EMF metrics per
version (`mlops.models.serving_metrics`), count the predictions a running experiment routed
(`mlops.experiments.store`), shape the proxy response. Errors the client can fix
are 400/404/422 with field-level details (`mlops.api_errors`); integrity failures are 500.

The serving path imports numpy and onnxruntime (through `mlops.models.serving_model`), never
scikit-learn, scipy or pickle. The router is a dict lookup rather than Powertools' resolver,
and the online store (pynamodb) is imported on the first request that needs it: both keep the
cold start small. The request id is API Gateway's (``requestContext.requestId``), so a client
can quote the ``x-amzn-RequestId`` it got; without one (a direct invoke) it is Lambda's.
"""

from __future__ import annotations

import base64
import json
import os
import time
from datetime import datetime, timezone
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops import aws, unavailable
from mlops.api_errors import ApiError, parse_json_body
from mlops.api_limits import located_body, request_refusal
from mlops.audit.predictions import PredictionAudit, rate_from_env
from mlops.audit.store import AuditStore
from mlops.experiments.router import count_exposures
from mlops.experiments.store import ExperimentStore
from mlops.idempotent_routes import IdempotentRequests
from mlops.models.artifact_alerts import artifact_alert
from mlops.models.deployment_store import DeploymentStore
from mlops.models.predict_request import parse_batch, parse_predict
from mlops.models.prediction_log import PredictionLog, error_item, prediction_item
from mlops.models.registry import iso_utc
from mlops.models.registry_store import RegistryStore
from mlops.models.serving import Predictor
from mlops.monitoring.quality_store import quality_loader
from mlops.rollout import faults
from mlops.models.serving_metrics import emit_error_metric, emit_version_metrics

logger = Logger()
_dynamodb = aws.client("dynamodb")
_TTL_S = int(float(os.environ.get("PREDICTION_TTL_DAYS", "90")) * 86400)


def _online_store() -> Any:
    from mlops.features.online_store import OnlineStore  # pynamodb: only when an entity id asks for it

    return OnlineStore(os.environ["FEATURES_TABLE"])


experiments = ExperimentStore(os.environ["EXPERIMENTS_TABLE"], dynamodb=_dynamodb)  # running experiments, exposures
audit_store = AuditStore(os.environ["AUDIT_TABLE"], dynamodb=_dynamodb)
predictor = Predictor(
    RegistryStore(os.environ["REGISTRY_TABLE"], os.environ["ARTIFACTS_BUCKET"], dynamodb=_dynamodb),
    DeploymentStore(os.environ["DEPLOYMENTS_TABLE"], dynamodb=_dynamodb),
    _online_store,
    cache_ttl_s=float(os.environ.get("DEPLOYMENT_CACHE_SECONDS", "5")),
    failure_ttl_s=float(os.environ.get("MODEL_RETRY_SECONDS", "10")),
    faults_enabled=faults.enabled(os.environ),
    load_quality=quality_loader(os.environ["ARTIFACTS_BUCKET"]),
    experiments=experiments,
    experiment_cache_s=float(os.environ.get("EXPERIMENT_CACHE_SECONDS", "1")),
    # a refused artifact (sha256 mismatch, missing) raises an alert: metric + audit record
    on_load_failure=artifact_alert(audit_store, logger),
)
prediction_log = PredictionLog(os.environ["PREDICTIONS_TABLE"], dynamodb=_dynamodb)
# AUDIT_PREDICTION_SAMPLE_RATE of the predictions go to the audit trail (best effort, never changes an answer).
prediction_audit = PredictionAudit(audit_store, rate_from_env(), logger)
idempotency = IdempotentRequests()  # Powertools idempotency loads on the first request with the header
ROUTES = {("POST", "/predict"): parse_predict, ("POST", "/predict/batch"): parse_batch}


def _response(status: int, body: dict[str, Any], request_id: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", "X-Request-Id": request_id},
        "body": json.dumps(body, separators=(",", ":"), allow_nan=False),
        "isBase64Encoded": False,
    }


def _body(event: dict[str, Any]) -> Any:
    raw = event.get("body")
    if raw is not None and event.get("isBase64Encoded"):
        raw = base64.b64decode(raw)
    return parse_json_body(raw)


def handle(event: dict[str, Any], request_id: str) -> dict[str, Any]:
    """Answer one API Gateway proxy event (the handler without Lambda's context)."""
    t0 = time.perf_counter()
    refused = request_refusal(event)  # 415 a body that is not JSON, 413 over 1 MiB (as every route)
    if refused is not None:
        return _response(refused.status, refused.body(), request_id)
    parse = ROUTES.get((event.get("httpMethod"), event.get("resource")))
    if parse is None:
        return _response(404, ApiError(404, "not_found", "no such route").body(), request_id)
    model = None
    try:
        req = parse(_body(event))
        model = req.model
        now = datetime.now(timezone.utc)
        outcome = predictor.predict(req, request_id, now)
        scored_ms = (time.perf_counter() - t0) * 1000
        # stamped when scored, just before the write: a reader's window that ends a moment ago
        # then sees every row of a request or none (the canary gate relies on it)
        ts = iso_utc(datetime.now(timezone.utc))
        expires = int(now.timestamp()) + _TTL_S
        rows = [r.log_row(model, scored_ms) for r in outcome.rows]
        prediction_log.put([prediction_item(row, ts=ts, expires_at=expires)
                            for row, r in zip(rows, outcome.rows) if r.logged]
                           + [error_item(row, ts=ts, expires_at=expires) for row in rows if row["fallback"]])
        prediction_audit.record(rows, ts)
        exposed = count_exposures(r.experiment for r in outcome.rows)
        if exposed:
            try:
                experiments.record_exposures(exposed)
            except Exception:  # a lost exposure count never fails the prediction
                logger.exception("experiment exposure count failed", extra={"model": model})
        if req.batch:
            body: dict[str, Any] = {"request_id": request_id, "model": model,
                                    "predictions": [r.response(model) for r in outcome.rows]}
        else:
            body = outcome.rows[0].response(model)
        emit_version_metrics(model, outcome.stats, (time.perf_counter() - t0) * 1000)
        return _response(200, body, request_id)
    except ApiError as exc:
        if exc.status >= 500:
            logger.error("prediction failed", extra={"error": exc.code, "detail": exc.message, "model": model})
            emit_error_metric(model or "unknown", exc.extra.get("version"))
        return _response(exc.status, located_body(exc, event), request_id)  # body.features.p03 ...
    except Exception as exc:
        throttled = unavailable.transient_cause(exc)
        if throttled is not None:  # AWS throttled or unreachable after the retries: nothing was logged
            logger.warning("prediction refused: AWS unavailable", extra={"model": model, "error": repr(throttled)})
            return unavailable.proxy_response(throttled, {"X-Request-Id": request_id})
        logger.exception("prediction failed", extra={"model": model})
        emit_error_metric(model or "unknown", None)
        return _response(500, ApiError(500, "internal_error",
                                       f"the prediction failed; quote request id {request_id}").body(), request_id)


@logger.inject_lambda_context
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    request_id = (event.get("requestContext") or {}).get("requestId") or context.aws_request_id
    # with an Idempotency-Key a retry gets the first answer and logs nothing again
    return idempotency.proxy(event, context, lambda: handle(event, request_id))

