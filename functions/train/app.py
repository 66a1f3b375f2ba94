"""Train a model version: invoked directly (by hand, or by the retraining state machine).

The event is a training request (`mlops.models.training_job`): label rows, the named feature
views (their rows read from the offline store in DataBucket, or given in the event), the
training config and the card's text.
The function joins them point-in-time, trains the scikit-learn pipeline, exports ONNX and
checks parity with onnx's reference evaluator (onnxruntime does not fit in this function's
layers next to scikit-learn and scipy: ``PARITY_RUNTIME=reference``), evaluates, registers
the version as pending and writes its model card. It returns the version's summary; a bad
event, unusable data, a failed parity check or an unreachable threshold raise
(``TrainingRequestError``, ``TrainingDataError``, ``ParityError``, ``ThresholdError``), which a
state machine can catch by name.

The registration is audited (``registry.version_registered`` on the model's audit chain, by
`mlops.audit.trail`) once it is made; if the audit append fails, the version stays registered
and the answer is unchanged, the failure is logged as an error and counted in the
``AuditWriteFailures`` metric.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.audit.events import REGISTRY_VERSION_REGISTERED, version_entity
from mlops.audit.store import AuditStore
from mlops.audit.trail import record_change
from mlops.models.registry_store import RegistryStore

logger = Logger()
metrics = Metrics()
registry = RegistryStore(os.environ["REGISTRY_TABLE"], os.environ["ARTIFACTS_BUCKET"],
                         deployments_table=os.environ["DEPLOYMENTS_TABLE"])
audit = AuditStore(os.environ["AUDIT_TABLE"])


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # scikit-learn, scipy, skl2onnx and onnx take seconds to import: on the first invoke, inside
    # the function's timeout, rather than in the init phase that Lambda cuts at 10 s.
    from mlops.features.offline_store import OfflineStore
    from mlops.models.training_job import parse_training_request, run_training

    if "action" in event:
        return _retraining_step(event, context)
    request = parse_training_request(event)
    result = run_training(request, registry, parity_runtime=os.environ.get("PARITY_RUNTIME") or None,
                          created_by=context.invoked_function_arn, offline=OfflineStore.from_env)
    record_change(audit, logger, REGISTRY_VERSION_REGISTERED, context.invoked_function_arn, model=result["model"],
                  entity=version_entity(result["model"], result["version"]),
                  details={k: result.get(k) for k in ("version", "approval_status", "sha256", "artifact_key",
                                                      "parent_version", "missing_policy", "threshold", "metrics",
                                                      "feature_source", "training_data")})
    metrics.add_dimension(name="model", value=result["model"])
    metrics.add_metric(name="VersionsRegistered", unit=MetricUnit.Count, value=1)
    logger.info("version registered", extra={k: result[k] for k in ("model", "version", "sha256", "metrics")})
    return result


def _retraining_step(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """One step of the retraining state machine (`mlops.models.retraining`): ``validate``,
    ``build``, ``train`` or ``register``, on the execution's ``run``. Errors are raised by type
    (``DataValidationError``, ``TrainingDataError``, ``ParityError``...) for the machine to catch."""
    from mlops.features.offline_store import OfflineStore
    from mlops.models import retraining

    action, run = event["action"], event["run"]
    bucket = os.environ["ARTIFACTS_BUCKET"]
    if action == "validate":
        return retraining.validate_data(run, OfflineStore.from_env())
    if action == "build":
        return retraining.build_training_set(run, OfflineStore.from_env(), registry.s3, bucket)
    if action == "train":
        return retraining.train_candidate(run, registry, registry.s3, bucket,
                                          parity_runtime=os.environ.get("PARITY_RUNTIME") or None)
    if action == "register":
        result = retraining.register_candidate(run, event["candidate"], registry, registry.s3, bucket,
                                               created_by=run["owner"])
        record_change(audit, logger, REGISTRY_VERSION_REGISTERED, run["owner"], model=run["model"],
                      entity=version_entity(run["model"], result["version"]),
                      details={"run_id": run["run_id"], **result})
        metrics.add_dimension(name="model", value=run["model"])
        metrics.add_metric(name="VersionsRegistered", unit=MetricUnit.Count, value=1)
        return result
    raise ValueError(f"unknown action {action!r}; expected validate, build, train or register")
