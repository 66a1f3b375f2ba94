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
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.models.registry_store import RegistryStore

logger = Logger()
metrics = Metrics()
registry = RegistryStore(os.environ["REGISTRY_TABLE"], os.environ["ARTIFACTS_BUCKET"])


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # scikit-learn, scipy, skl2onnx and onnx take seconds to import: on the first invoke, inside
    # the function's timeout, rather than in the init phase that Lambda cuts at 10 s.
    from mlops.features.offline_store import OfflineStore
    from mlops.models.training_job import parse_training_request, run_training

    request = parse_training_request(event)
    result = run_training(request, registry, parity_runtime=os.environ.get("PARITY_RUNTIME") or None,
                          created_by=context.invoked_function_arn, offline=OfflineStore.from_env)
    metrics.add_dimension(name="model", value=result["model"])
    metrics.add_metric(name="VersionsRegistered", unit=MetricUnit.Count, value=1)
    logger.info("version registered", extra={k: result[k] for k in ("model", "version", "sha256", "metrics")})
    return result
