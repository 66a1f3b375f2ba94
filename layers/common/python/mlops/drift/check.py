"""One drift check of a model version, end to end: what the drift-check function runs hourly
and at ``GET /drift/{model}``.

1. The version: the one asked for, else the ``champion`` alias (`RegistryStore`).
2. Its training baseline (:mod:`~mlops.drift.baseline_store`).
3. The inputs it scored in the window ``[now - window_hours, now)``, from the prediction log's
   ``by_model_version`` index (`PredictionLog.version_rows`); error rows (no inputs) are left out.
4. Data drift: :func:`~mlops.drift.compare.compare` of the baseline with those inputs, with the
   request's per-feature method overrides.
5. Concept drift: DDM, EDDM and ADWIN over the version's feedback error stream, each fed
   exactly once through :mod:`~mlops.drift.detector_store` (:mod:`~mlops.drift.concept`).
6. The retraining decision (`mlops.rollout.triggers.decide`) on the PSI of the features found
   drifted (by their method, under the correction), the detectors that alarmed in this check
   and the window's accuracy against the version's holdout accuracy. Only drifted features'
   PSI counts: PSI has no notion of sample size, and on a quiet hour's hundred predictions
   sampling noise alone puts it above 0.2 (the report keeps every feature's PSI). Staleness
   counts from the version's creation or the latest retraining run, whichever is later (a
   gated-out run counts: a stale champion starts one run per ``max_age``, not one an hour). When
   the decision says retrain and the checked version is the champion, the launcher
   (`mlops.rollout.launcher`) starts the retraining state machine; a run already holding the
   model's retraining lease, or a launch that fails, is recorded in the report, which is
   written regardless.
7. The report: JSON and PNG in S3 (:mod:`~mlops.drift.report_store`, :mod:`~mlops.drift.plot`),
   and a summary for the API answer and the metrics.

Errors the caller can act on are `ApiError`s: 404 ``model_not_found``, ``version_not_found``,
``not_deployed`` (no champion and no version asked for), ``baseline_not_found``; 400 for
method overrides that do not fit the baseline.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from mlops.api_errors import ApiError
from mlops.drift.baseline import CATEGORICAL, Baseline
from mlops.drift.baseline_store import BaselineCorrupt, BaselineNotFound, BaselineStore
from mlops.drift.check_request import DriftCheckRequest, method_problems
from mlops.drift.chooser import DriftConfig
from mlops.drift.compare import compare
from mlops.drift.concept import DETECTORS, accuracy, error_batch, stream_name
from mlops.drift.detector_store import Applied, DetectorStore
from mlops.drift.report import DriftReport
from mlops.drift.report_store import ReportStore
from mlops.models.prediction_log import PredictionLog
from mlops.models.registry import iso_utc
from mlops.models.registry_store import AliasNotFound, RegistryError, RegistryStore
from mlops.rollout.lock import LockHeld
from mlops.rollout.triggers import RetrainingDecision, RetrainingPolicy, RetrainingSignals, decide

logger = logging.getLogger(__name__)

DEFAULT_LABEL_DELAY = timedelta(hours=6)


def current_columns(rows: Sequence[Mapping[str, Any]], baseline: Baseline) -> dict[str, np.ndarray]:
    """The logged inputs as one column per baseline feature (a missing or null value is NaN
    for a numeric feature, None for a categorical one)."""
    inputs = [r["inputs"] for r in rows]
    columns: dict[str, np.ndarray] = {}
    for name, base in baseline.features.items():
        values = [i.get(name) for i in inputs]
        if base.kind == CATEGORICAL:
            columns[name] = np.array(values, dtype=object)
        else:
            columns[name] = np.array([math.nan if not isinstance(v, (int, float)) or isinstance(v, bool)
                                      else float(v) for v in values], dtype=np.float64)
    return columns


def _finite(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


def feature_summary(report: DriftReport) -> dict[str, dict[str, Any]]:
    """Per feature: method, score, threshold, p-value (tests only), its corrected p-value,
    PSI and the verdict under the report's correction (strict JSON)."""
    out = {}
    for name, f in report.features.items():
        d = f.to_dict()
        out[name] = {"kind": f.kind, "method": f.method, "score": d["score"], "threshold": f.threshold,
                     "p_value": d["score"] if f.is_pvalue else None,
                     "p_value_adjusted": d["adjusted_pvalue"].get(report.correction) if f.is_pvalue else None,
                     "psi": d["metrics"].get("psi"), "drifted": f.drifted_by_correction.get(report.correction, f.drifted),
                     "n_current": f.n_current}
    return out


@dataclass
class DriftCheckResult:
    """The check's summary (the API answer), the full report document written to S3, and the
    numbers the handler emits as metrics."""

    summary: dict[str, Any]
    document: dict[str, Any]
    report: DriftReport
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class DriftCheck:
    """The stores one check reads and writes, and its settings (see the module docstring).

    ``launcher`` builds the retraining launcher when a run is to start (an object with
    ``start(model, decision, now) -> dict``); None never starts one.
    """

    registry: RegistryStore
    baselines: BaselineStore
    predictions: PredictionLog
    detectors: DetectorStore
    reports: ReportStore
    policy: RetrainingPolicy = field(default_factory=RetrainingPolicy)
    label_delay: timedelta = DEFAULT_LABEL_DELAY
    launcher: Callable[[], Any] | None = None
    plot: bool = True

    # ------------------------------------------------------------------ steps
    def _last_trained(self, model: str, version: Any) -> datetime:
        """When the model last trained: the checked version's creation, or the start of a later
        retraining run (one the gate turned down counts too, so a stale champion starts one run
        per ``max_age``, not one per hourly check)."""
        from mlops.rollout.run_store import RunStore

        times = [version.created_at]
        latest = RunStore(self.registry.table, dynamodb=self.registry.dynamodb).runs(model, limit=1)
        if latest:
            times.append(latest[0]["started_at"])
        return datetime.fromisoformat(max(times).replace("Z", "+00:00"))

    def _versions(self, req: DriftCheckRequest) -> tuple[int, int | None]:
        """(the version to check, the champion or None)."""
        try:
            champion: int | None = self.registry.get_alias(req.model, "champion")
        except AliasNotFound:
            champion = None
        except RegistryError as exc:
            raise exc.to_api_error() from None
        if req.version is not None:
            return req.version, champion
        if champion is None:
            raise ApiError(404, "not_deployed", f"model {req.model!r} has no champion; name a version to check",
                           [{"field": "version", "problem": "no champion to default to"}])
        return champion, champion

    def _baseline(self, model: str, version: int) -> Baseline:
        try:
            return self.baselines.load(model, version)
        except BaselineNotFound as exc:
            raise ApiError.not_found("baseline_not_found", str(exc), "version") from None
        except BaselineCorrupt as exc:
            raise ApiError(500, "baseline_corrupt", str(exc)) from None

    def _concept(self, model: str, version: int, rows: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
        cutoff = iso_utc(now - self.label_delay)
        stream = stream_name(version)
        applied: dict[str, Applied] = {
            name: self.detectors.consume(model, name, stream, lambda wm: error_batch(rows, wm, cutoff))
            for name in DETECTORS
        }
        return {"stream": stream, "cutoff": cutoff, "label_delay_hours": self.label_delay.total_seconds() / 3600,
                "detectors": {name: a.to_dict() for name, a in applied.items()},
                "alarms": [name for name, a in applied.items() if a.detections.drifts]}

    def _retraining(self, model: str, version: int, champion: int | None, decision: RetrainingDecision,
                    now: datetime) -> dict[str, Any]:
        out: dict[str, Any] = {**decision.to_dict(), "started": None, "not_started": None}
        if not decision.retrain:
            out["not_started"] = "no trigger holds"
        elif version != champion:
            out["not_started"] = f"version {version} is not the champion"
        elif self.launcher is None:
            out["not_started"] = "no retraining launcher configured"
        else:
            try:
                out["started"] = self.launcher().start(model, decision, now)
            except LockHeld as exc:
                out["not_started"] = str(exc)
            except Exception as exc:  # the report is written whatever the launch does
                logger.exception("starting the retraining of %s failed", model)
                out["not_started"] = f"launch failed: {type(exc).__name__}: {exc}"
        return out

    # ------------------------------------------------------------------ the check
    def run(self, req: DriftCheckRequest, now: datetime, *, trigger: str) -> DriftCheckResult:
        """Run one check at ``now`` (aware); ``trigger`` ("schedule" or "api") is recorded."""
        version, champion = self._versions(req)
        try:
            model_version = self.registry.get_version(req.model, version)
        except RegistryError as exc:
            raise exc.to_api_error() from None
        baseline = self._baseline(req.model, version)
        problems = method_problems(req.methods, baseline, version)
        if problems:
            raise ApiError.invalid(problems)

        start = now - timedelta(hours=req.window_hours)
        rows = [r for r in self.predictions.version_rows(req.model, version, iso_utc(start), iso_utc(now))
                if r.get("inputs") is not None]
        report = compare(baseline, current_columns(rows, baseline), DriftConfig(methods=dict(req.methods)))
        features = feature_summary(report)
        concept = self._concept(req.model, version, rows, now)
        labelled, correct, window_accuracy = accuracy(rows)
        baseline_accuracy = _finite((model_version.record.get("metrics") or {}).get("accuracy"))
        concept.update({"labelled": labelled, "correct": correct, "accuracy": window_accuracy,
                        "baseline_accuracy": baseline_accuracy})
        all_psi = {name: f["psi"] for name, f in features.items() if _finite(f["psi"]) is not None}
        psi = {name: value for name, value in all_psi.items() if features[name]["drifted"]}
        decision = decide(RetrainingSignals(psi=psi, detector_alarms=tuple(concept["alarms"]),
                                            accuracy=window_accuracy, baseline_accuracy=baseline_accuracy,
                                            labelled=labelled,
                                            last_trained_at=self._last_trained(req.model, model_version)),
                          self.policy, now)
        retraining = self._retraining(req.model, version, champion, decision, now)

        window = {"hours": req.window_hours, "start": iso_utc(start), "end": iso_utc(now)}
        head = {"model": req.model, "version": version, "champion": champion, "trigger": trigger,
                "generated_at": iso_utc(now), "window": window, "rows": len(rows)}
        document = {**head, "methods": dict(req.methods), "drift": report.to_dict(), "concept": concept,
                    "retraining": retraining}
        png = None
        if self.plot:
            from mlops.drift.plot import render_png

            png = render_png(report, title=f"{req.model} v{version}: {len(rows)} predictions, "
                                           f"{window['start'][:16]} to {window['end'][:16]} UTC")
        stored = self.reports.save(req.model, now, document, png)
        max_psi = max(all_psi.values()) if all_psi else None
        summary = {**head, "dataset_drift": report.dataset_drift, "drift_share": report.share,
                   "correction": report.correction, "n_drifted": report.n_drifted[report.correction],
                   "drifted_features": report.drifted_features, "worst_feature": report.worst_feature(),
                   "max_psi": max_psi, "features": features, "skipped": dict(report.skipped),
                   "concept": {k: concept[k] for k in ("labelled", "accuracy", "baseline_accuracy", "alarms")}
                   | {"detectors": {n: {k: d[k] for k in ("n_seen", "applied", "drift_detected", "version")}
                                    for n, d in concept["detectors"].items()}},
                   "retraining": retraining, "report": stored.to_dict()}
        metrics = {"DriftShare": report.share, "FeaturesDrifted": float(len(report.drifted_features)),
                   "PredictionsChecked": float(len(rows)), "DetectorAlarms": float(len(concept["alarms"]))}
        if max_psi is not None:
            metrics["MaxPSI"] = max_psi
        return DriftCheckResult(summary, document, report, metrics)
