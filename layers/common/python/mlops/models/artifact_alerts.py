"""The alert when serving refuses a model version's artifact (corrupt, tampered or missing).

Serving checks each artifact's sha256 against the registry before loading it
(`mlops.models.serving_model`); a challenger that fails hands its rows to the champion
(`mlops.models.serving`). That keeps answers right, but someone must hear of it: each failed
load (once per load attempt, not per request the cached failure refuses) raises an alert -

- the ``ArtifactRejected`` CloudWatch metric of the version (EMF, `serving_metrics`), which
  an alarm watches;
- an ``artifact.rejected`` record in the model's audit trail (entity ``version:<model>/<n>``)
  naming the error, readable with ``GET /audit?entity=version:<model>/<n>``;
- an error log line.

An alert never changes an answer: every failure of it is logged and swallowed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlops.audit.events import ARTIFACT_REJECTED, version_entity
from mlops.audit.store import AuditStore
from mlops.audit.trail import record_change
from mlops.models.serving_metrics import emit_artifact_rejected

ACTOR = "inference"


def artifact_alert(audit: AuditStore, logger: Any) -> Callable[[str, int, Exception], None]:
    """The ``on_load_failure`` callback of a `Predictor` that raises the alert."""

    def alert(model: str, version: int, exc: Exception) -> None:
        error = {"type": type(exc).__name__, "message": str(exc)[:500]}
        try:
            logger.error("model artifact rejected", extra={"model": model, "version": version, "error": error})
            emit_artifact_rejected(model, version)
            record_change(audit, logger, ARTIFACT_REJECTED, ACTOR, model=model, entity=version_entity(model, version),
                          details={"version": version, "error": error})
        except Exception:  # noqa: BLE001 - the alert is best effort; serving goes on
            logger.exception("artifact alert failed", extra={"model": model, "version": version})

    return alert
