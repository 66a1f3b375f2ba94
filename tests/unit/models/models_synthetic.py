"""A seeded synthetic yield data set for the model tests: parametric test results -> fail label.

20 parametric features (standard normal, a few correlated), a known logistic function of four
of them plus a tester offset, an intercept solved so that about 7% of devices fail, about 3%
missing values, slice columns `tester` and `fab_site`, and timestamps over 13 weeks. Also a
cache of trained models, so each test module trains once.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

FEATURES = tuple(f"p{i:02d}" for i in range(20))
TESTERS = ("T1", "T2", "T3", "T4")
SITES = ("fab_a", "fab_b", "fab_c")
START = np.datetime64("2024-01-01T00:00:00", "s")
WEEKS = 13
TRUE_WEIGHTS = {"p00": 1.6, "p03": -1.2, "p07": 0.9, "p11": 0.7}


def _intercept_for(logit_wo: np.ndarray, rate: float) -> float:
    lo, hi = -20.0, 20.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if np.mean(1 / (1 + np.exp(-(logit_wo + mid)))) > rate:
            hi = mid
        else:
            lo = mid
    return (lo + hi) / 2


def make_yield_data(n: int = 4000, seed: int = 0, positive_rate: float = 0.07,
                    missing_rate: float = 0.03) -> dict[str, Any]:
    """Features (dict of float columns with NaNs), labels (0/1), timestamps (datetime64[s],
    shuffled order), slices (tester, fab_site) and the true probabilities."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, len(FEATURES)))
    z[:, 1] = 0.6 * z[:, 0] + 0.8 * z[:, 1]  # correlated parametric pair
    tester = rng.choice(TESTERS, size=n, p=[0.4, 0.3, 0.25, 0.05])
    site = rng.choice(SITES, size=n, p=[0.5, 0.35, 0.15])
    offsets = {"T1": 0.0, "T2": 0.3, "T3": -0.2, "T4": 0.6}
    logit = sum(w * z[:, FEATURES.index(f)] for f, w in TRUE_WEIGHTS.items())
    logit = logit + np.array([offsets[t] for t in tester])
    b0 = _intercept_for(logit, positive_rate)
    prob = 1 / (1 + np.exp(-(logit + b0)))
    labels = (rng.random(n) < prob).astype(np.int64)
    x = z.copy()
    x[rng.random(x.shape) < missing_rate] = np.nan
    seconds = rng.integers(0, WEEKS * 7 * 86400, size=n)
    timestamps = START + seconds.astype("timedelta64[s]")
    return {
        "features": {name: x[:, j] for j, name in enumerate(FEATURES)},
        "labels": labels,
        "timestamps": timestamps,
        "slices": {"tester": tester, "fab_site": site},
        "true_probability": prob,
    }


@functools.lru_cache(maxsize=None)
def trained(model: str = "gradient_boosting", n_estimators: int = 60, seed: int = 0):
    """A TrainedModel on the default data set (cached per process)."""
    from mlops.models.training import TrainingConfig, train_model

    d = make_yield_data()
    return train_model(
        d["features"], d["labels"], d["timestamps"],
        TrainingConfig(model=model, n_estimators=n_estimators, seed=seed),
        slices=d["slices"], code_version="test",
    )
