"""Multiple-testing corrections for the dataset-level drift decision.

Testing 590 features at alpha = 0.05 flags about 30 of them under no drift at all. The
dataset-level decision therefore corrects the per-feature p-values:

* **Bonferroni** controls the family-wise error rate at alpha by testing each p-value at
  ``alpha / m`` (adjusted p = ``min(m p, 1)``);
* **Holm** (step-down) is uniformly more powerful with the same guarantee: sort the
  p-values, reject while ``p_(i) <= alpha / (m - i)``, stop at the first failure; adjusted
  p-values are the running maximum of ``(m - i) p_(i)``, capped at 1.

Both return what ``statsmodels.stats.multitest.multipletests(p, alpha, method)`` returns in
its first two fields (reject flags, adjusted p-values), in the input order.

>>> reject, adjusted = holm([0.01, 0.04, 0.03, 0.005], 0.05)
>>> reject.tolist(), adjusted.round(3).tolist()
([True, False, False, True], [0.03, 0.06, 0.06, 0.02])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

METHODS = ("none", "bonferroni", "holm")


def bonferroni(pvalues: Sequence[float] | np.ndarray, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """(reject, adjusted p-values) under Bonferroni."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = len(p)
    if m == 0:
        return np.zeros(0, dtype=bool), np.zeros(0)
    reject = p <= alpha / float(m)
    adjusted = p * float(m)
    adjusted[adjusted > 1] = 1.0
    return reject, adjusted


def holm(pvalues: Sequence[float] | np.ndarray, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """(reject, adjusted p-values) under Holm's step-down procedure."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = len(p)
    if m == 0:
        return np.zeros(0, dtype=bool), np.zeros(0)
    order = np.argsort(p)
    ps = p[order]
    steps = np.arange(m, 0, -1)
    notreject = ps > alpha / steps
    failed = np.nonzero(notreject)[0]
    first = len(ps) if failed.size == 0 else int(failed.min())
    notreject[first:] = True
    adjusted_sorted = np.maximum.accumulate(ps * steps)
    adjusted_sorted[adjusted_sorted > 1] = 1.0
    reject = np.empty(m, dtype=bool)
    adjusted = np.empty(m)
    reject[order] = ~notreject
    adjusted[order] = adjusted_sorted
    return reject, adjusted


def correct(pvalues: Sequence[float] | np.ndarray, alpha: float = 0.05, method: str = "holm"
            ) -> tuple[np.ndarray, np.ndarray]:
    """Dispatch by name: "none" (reject p <= alpha), "bonferroni" or "holm"."""
    if method == "bonferroni":
        return bonferroni(pvalues, alpha)
    if method == "holm":
        return holm(pvalues, alpha)
    if method == "none":
        p = np.asarray(pvalues, dtype=np.float64)
        return p <= alpha, p.copy()
    raise ValueError(f"unknown correction {method!r}; expected one of {METHODS}")
