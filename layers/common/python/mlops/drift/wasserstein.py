"""Wasserstein-1 (earth mover's) distance between two samples, plain and normalised.

``W1 = integral |F_ref(z) - F_cur(z)| dz``, equal to ``scipy.stats.wasserstein_distance``
(computed by :func:`~mlops.drift.twosample.two_sample` from one merge of the samples). Its
unit is the feature's, so a threshold needs a scale: :func:`normalised_wasserstein`
divides by the reference standard deviation (population, ``ddof=0``, as Evidently's
``wasserstein_distance(ref, cur) / np.std(ref)``). Evidently's default threshold on the
normalised distance is 0.1: the distributions moved by a tenth of a standard deviation.
A constant reference (std 0) gives 0.0 if the current sample is the same constant and
+inf otherwise.

>>> round(wasserstein([0.0, 1.0, 3.0], [5.0, 6.0, 8.0]), 6)
5.0
>>> normalised_wasserstein(5.0, 2.0)
2.5
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from mlops.drift.twosample import two_sample

DEFAULT_THRESHOLD = 0.1


def wasserstein(reference: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray) -> float:
    """W1 between two NaN-free samples (= ``scipy.stats.wasserstein_distance``)."""
    return two_sample(np.asarray(reference, dtype=np.float64), np.asarray(current, dtype=np.float64)).wasserstein


def normalised_wasserstein(distance: float, reference_std: float) -> float:
    """W1 in units of the reference standard deviation (0/0 -> 0, x/0 -> inf)."""
    if reference_std > 0 and math.isfinite(reference_std):
        return distance / reference_std
    return 0.0 if distance == 0 else math.inf
