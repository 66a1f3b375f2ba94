"""Which test decides drift for a feature, and at what threshold (Evidently's rule).

The default method depends on the feature's kind, its number of distinct values in the
reference and the reference size (Evidently's ``get_default_stattest``):

============================================  ==========================  =====================
feature                                       reference <= 1000 values    reference > 1000
============================================  ==========================  =====================
numeric with more than 5 distinct values      ``ks``: p-value < 0.05      ``wasserstein`` (normalised) >= 0.1
categorical, or numeric with <= 5 values      ``chisquare``: p < 0.05     ``jensenshannon`` >= 0.1
============================================  ==========================  =====================

Small samples are judged by a test (is the difference significant?), large ones by a
distance (is it big enough to matter?): with 100k rows a KS test flags shifts nobody
cares about. Evidently uses a z-test for binary categoricals; here chi-square covers them
(for two categories it is the same test, z^2 = chi^2 with one degree of freedom, on the
goodness-of-fit form). The reference size is the non-null count in the baseline; the
distinct values are the reference's.

Overrides: ``DriftConfig.methods[feature]`` forces a method (any of :data:`METHODS`),
``DriftConfig.thresholds[feature]`` a threshold; ``DriftConfig.method_thresholds`` changes
a method's default. p-value methods drift when ``p < threshold``, distances when
``score >= threshold``.

>>> choose_method("numeric", n_reference=500, n_unique=300)
'ks'
>>> choose_method("numeric", n_reference=50_000, n_unique=300)
'wasserstein'
>>> choose_method("categorical", n_reference=50_000, n_unique=4)
'jensenshannon'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

SMALL_REFERENCE = 1000
FEW_VALUES = 5

# method -> (default threshold, True if the score is a p-value)
METHODS: dict[str, tuple[float, bool]] = {
    "ks": (0.05, True),
    "chisquare": (0.05, True),
    "wasserstein": (0.1, False),  # normalised by the reference std
    "jensenshannon": (0.1, False),
    "psi": (0.1, False),
    "kl": (0.1, False),
}
NUMERIC_ONLY = {"ks", "wasserstein"}


def choose_method(kind: str, n_reference: int, n_unique: int) -> str:
    """The default method for a feature (see the table in the module docstring)."""
    categorical = kind == "categorical" or n_unique <= FEW_VALUES
    if n_reference <= SMALL_REFERENCE:
        return "chisquare" if categorical else "ks"
    return "jensenshannon" if categorical else "wasserstein"


def is_pvalue(method: str) -> bool:
    return METHODS[method][1]


def drifted(method: str, score: float, threshold: float) -> bool:
    """p-value methods: p < threshold; distances: score >= threshold (NaN never drifts)."""
    if score != score:
        return False
    return score < threshold if is_pvalue(method) else score >= threshold


@dataclass
class DriftConfig:
    """How :func:`~mlops.drift.compare.compare` decides (all fields optional).

    ``correction`` ("holm", "bonferroni" or "none") applies to the p-value features for the
    dataset-level decision at level ``alpha``; ``drift_share`` is the share of drifted
    features from which the dataset counts as drifted (Evidently's default 0.5).
    ``n_jobs`` threads share the numeric features.
    """

    methods: Mapping[str, str] = field(default_factory=dict)
    thresholds: Mapping[str, float] = field(default_factory=dict)
    method_thresholds: Mapping[str, float] = field(default_factory=dict)
    correction: str = "holm"
    alpha: float = 0.05
    drift_share: float = 0.5
    n_jobs: int = 2
    features: list[str] | None = None

    def method_for(self, name: str, kind: str, n_reference: int, n_unique: int) -> str:
        method = self.methods.get(name) or choose_method(kind, n_reference, n_unique)
        if method not in METHODS:
            raise ValueError(f"feature {name!r}: unknown method {method!r}; expected one of {sorted(METHODS)}")
        if kind == "categorical" and method in NUMERIC_ONLY:
            raise ValueError(f"feature {name!r}: {method} needs a numeric feature")
        return method

    def threshold_for(self, name: str, method: str) -> float:
        if name in self.thresholds:
            return float(self.thresholds[name])
        return float(self.method_thresholds.get(method, METHODS[method][0]))
