"""CloudWatch metrics of the inference function, per model version, in Embedded Metric Format.

One EMF document per version that took part in a request (the shadow included), with the
dimensions ``model`` and ``version`` and the metrics:

- ``Predictions`` (Count): rows the version scored;
- ``PredictedPositive`` (Count): of them, predicted positive (``label`` 1);
- ``PredictedPositiveRate`` (Percent): their share in this request (CloudWatch's
  ``Sum(PredictedPositive) / Sum(Predictions)`` is the exact rate over a period);
- ``Errors`` (Count): rows the version failed (load failures, a failing shadow);
- ``Latency`` (Milliseconds): the request's latency, handler start to answer.

and, once per failed load of a version's artifact, ``ArtifactRejected`` (Count).

Powertools' EMF provider (`EphemeralMetrics`: no state shared between documents) serializes
and prints each document; CloudWatch Logs turns them into metrics.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from mlops.models.serving import VersionStats


_emitters: dict[tuple[str, str, str | None, str | None], EphemeralMetrics] = {}


def _emitter(model: str, version: str, namespace: str | None, service: str | None) -> EphemeralMetrics:
    """One EMF provider per (model, version), kept by the warm function: the dimensions are set
    once as its defaults, and every flush starts from them again."""
    key = (model, version, namespace, service)
    metrics = _emitters.get(key)
    if metrics is None:
        metrics = EphemeralMetrics(namespace=namespace, service=service)
        metrics.set_default_dimensions(model=model, version=version)
        _emitters[key] = metrics
    return metrics


def emit_version_metrics(model: str, stats: Mapping[int, VersionStats], latency_ms: float, *,
                         namespace: str | None = None, service: str | None = None) -> int:
    """Print one EMF document per version; returns how many were printed."""
    printed = 0
    for version, st in stats.items():
        metrics = _emitter(model, str(version), namespace, service)
        metrics.add_metric(name="Predictions", unit=MetricUnit.Count, value=st.predictions)
        metrics.add_metric(name="PredictedPositive", unit=MetricUnit.Count, value=st.positives)
        if st.predictions:
            metrics.add_metric(name="PredictedPositiveRate", unit=MetricUnit.Percent,
                               value=100.0 * st.positives / st.predictions)
        metrics.add_metric(name="Errors", unit=MetricUnit.Count, value=st.errors)
        metrics.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=round(latency_ms, 3))
        metrics.add_metadata(key="variant", value=st.variant)
        metrics.flush_metrics()
        printed += 1
    return printed


def emit_error_metric(model: str, version: int | None, *, namespace: str | None = None,
                      service: str | None = None) -> None:
    """Count one failed request against a version (or against the model when no version was
    chosen yet)."""
    metrics = _emitter(model, "none" if version is None else str(version), namespace, service)
    metrics.add_metric(name="Errors", unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()


def emit_artifact_rejected(model: str, version: int, *, namespace: str | None = None,
                           service: str | None = None) -> None:
    """Count one refused artifact of a version (``ArtifactRejected``: a sha256 mismatch, a
    missing or unreadable artifact): the metric an alarm watches."""
    metrics = _emitter(model, str(version), namespace, service)
    metrics.add_metric(name="ArtifactRejected", unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()
