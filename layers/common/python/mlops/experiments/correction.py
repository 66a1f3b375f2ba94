"""Multiple-testing corrections across metrics and variants: Bonferroni and Holm.

An experiment with k treatments and m metrics makes k x m comparisons; testing each at
``alpha`` would make *some* false positive likely. Both corrections control the family-wise
error rate (the chance of any false positive) at ``alpha`` with no assumption about how the
comparisons depend on each other - the metrics of one experiment are correlated, so that
matters:

* ``bonferroni`` - ``p_adj = min(1, m p)``;
* ``holm`` - step-down: sort the p-values, ``p_adj_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))``;
  uniformly more powerful than Bonferroni at the same guarantee (the analysis default);
* ``none`` - the p-values unchanged.

Adjusted p-values and reject decisions equal ``statsmodels.stats.multitest.multipletests(p,
alpha, method="bonferroni" | "holm")`` (the tests check 1e-15). NaN p-values (comparisons that
could not be computed) are left out of the family and come back as NaN, not rejected.

>>> adjust([0.01, 0.04, 0.03], "holm")
[0.03, 0.06, 0.06]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from mlops.experiments.errors import ExperimentError, check_probability

METHODS = ("holm", "bonferroni", "none")


def adjust(p_values: Sequence[float], method: str = "holm") -> list[float]:
    """Adjusted p-values in the input order (NaN stays NaN and does not count in the family)."""
    if method not in METHODS:
        raise ExperimentError("correction", f"must be one of {METHODS}, got {method!r}")
    ps = [float(p) for p in p_values]
    for i, p in enumerate(ps):
        if not math.isnan(p) and not 0.0 <= p <= 1.0:
            raise ExperimentError(f"p_values[{i}]", f"must be in [0, 1], got {p!r}")
    valid = [i for i, p in enumerate(ps) if not math.isnan(p)]
    m = len(valid)
    out = [math.nan] * len(ps)
    if method == "none":
        for i in valid:
            out[i] = ps[i]
    elif method == "bonferroni":
        for i in valid:
            out[i] = min(1.0, ps[i] * m)
    else:
        order = sorted(valid, key=lambda i: ps[i])  # stable, as numpy's mergesort in statsmodels
        running = 0.0
        for rank, i in enumerate(order):
            running = max(running, ps[i] * (m - rank))
            out[i] = min(1.0, running)
    return out


def reject(p_values: Sequence[float], alpha: float = 0.05, method: str = "holm") -> list[bool]:
    """Which hypotheses are rejected at family-wise level ``alpha`` (NaN: never)."""
    alpha = check_probability("alpha", alpha, high=0.5, high_open=False)
    return [(not math.isnan(p)) and p <= alpha for p in adjust(p_values, method)]
