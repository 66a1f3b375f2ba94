"""The result of a drift check: per-feature verdicts and the dataset-level decision.

A :class:`DriftReport` holds one :class:`FeatureDrift` per compared feature (its method,
score, threshold, verdict and every statistic computed), the features that could not be
compared and why, and the dataset-level drift share under each multiple-testing
correction. :meth:`DriftReport.to_dict` is strict JSON (non-finite numbers become the
strings "inf", "-inf", "nan") for S3 and the API.

**Dataset drift.** A feature judged by a distance drifts when its score reaches the
threshold, whatever the correction. The features judged by a p-value form one family:
under "none" each drifts when ``p < threshold``; under "bonferroni" and "holm" when the
correction rejects at level ``alpha`` (:mod:`~mlops.drift.correction`). The share is
drifted features over compared features; the dataset drifts when the share under the
configured correction reaches ``drift_share``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from mlops.drift.correction import METHODS as CORRECTIONS


def _j(x: Any) -> Any:
    """Strict-JSON numbers: non-finite floats become strings."""
    if isinstance(x, float) and not math.isfinite(x):
        return repr(x)
    if isinstance(x, dict):
        return {k: _j(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_j(v) for v in x]
    return x


@dataclass
class FeatureDrift:
    """One feature's verdict. ``score`` is a p-value for ks/chisquare, else a distance."""

    name: str
    kind: str
    method: str
    score: float
    threshold: float
    is_pvalue: bool
    drifted: bool
    n_reference: int
    n_current: int
    nulls_current: int
    metrics: dict[str, float]
    adjusted_pvalue: dict[str, float] = field(default_factory=dict)
    drifted_by_correction: dict[str, bool] = field(default_factory=dict)
    bins: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def severity(self) -> float:
        """How far past its threshold: score/threshold for distances, threshold/p for p-values."""
        if self.is_pvalue:
            return self.threshold / self.score if self.score > 0 else math.inf
        return self.score / self.threshold if self.threshold > 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        return _j({"name": self.name, "kind": self.kind, "method": self.method, "score": self.score,
                   "threshold": self.threshold, "is_pvalue": self.is_pvalue, "drifted": self.drifted,
                   "n_reference": self.n_reference, "n_current": self.n_current,
                   "nulls_current": self.nulls_current, "metrics": dict(self.metrics),
                   "adjusted_pvalue": dict(self.adjusted_pvalue),
                   "drifted_by_correction": dict(self.drifted_by_correction), "bins": dict(self.bins)})


@dataclass
class DriftReport:
    """Per-feature results plus the dataset-level share and decision."""

    features: dict[str, FeatureDrift]
    skipped: dict[str, str]
    correction: str
    alpha: float
    drift_share_threshold: float
    n_drifted: dict[str, int]
    shares: dict[str, float]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def share(self) -> float:
        """Share of drifted features under the configured correction."""
        return self.shares[self.correction]

    @property
    def dataset_drift(self) -> bool:
        return bool(self.features) and self.share >= self.drift_share_threshold

    @property
    def drifted_features(self) -> list[str]:
        return [n for n, f in self.features.items() if f.drifted_by_correction.get(self.correction, f.drifted)]

    def worst_feature(self) -> str | None:
        """The feature furthest past (or closest to) its threshold."""
        if not self.features:
            return None
        return max(self.features.values(), key=lambda f: f.severity).name

    def to_dict(self) -> dict[str, Any]:
        return _j({"correction": self.correction, "alpha": self.alpha,
                   "drift_share_threshold": self.drift_share_threshold,
                   "n_features": len(self.features), "n_drifted": dict(self.n_drifted),
                   "shares": dict(self.shares), "share": self.share, "dataset_drift": self.dataset_drift,
                   "drifted_features": self.drifted_features, "worst_feature": self.worst_feature(),
                   "skipped": dict(self.skipped), "metadata": dict(self.metadata),
                   "features": {n: f.to_dict() for n, f in self.features.items()}})


__all__ = ["CORRECTIONS", "DriftReport", "FeatureDrift"]
