"""Difference-in-differences: the effect of a rollout that could not be randomised.

When a model goes to some testers (or fabs, or product lines) and not others, chosen by
convenience rather than by hash, a plain treated-vs-control comparison mixes the model's
effect with whatever already differed between the groups. DiD compares *changes*:

    effect = (treated_post - treated_pre) - (control_post - control_pre)

(cell means), which removes fixed differences between the groups and shocks common to both
periods. It assumes parallel trends: without the rollout, both groups would have changed by
the same amount. That is an assumption about the world, not something this estimate checks.

The estimate and its standard error are those of the OLS regression
``y ~ 1 + treated + post + treated:post`` (the interaction coefficient), computed from the
four cells' counts, means and sums of squares - no matrix algebra. The tests check them
against ``statsmodels.formula.api.ols("y ~ treated * post").fit(cov_type=..., use_t=...)`` on
the same data (1e-10):

* ``nonrobust`` - classical OLS: ``s^2 * sum(1/n_g)``, ``s^2 = SSR / (N - 4)``;
* ``HC0``..``HC3`` - heteroskedasticity-robust (cells may differ in spread; ``HC1`` is the
  default here): ``sum(SS_g / n_g^2)`` times ``N/(N-4)`` (HC1), with leverage ``1/n_g``
  corrections for HC2 (``SS_g/(n_g (n_g - 1))``) and HC3 (``SS_g/(n_g - 1)^2``);
* ``cluster`` - cluster-robust for panels (the same unit before and after), needs raw data
  and cluster ids; small-sample factor ``G/(G-1) (N-1)/(N-4)`` and ``G - 1`` degrees of
  freedom, as statsmodels.

Inference uses Student's t (``use_t=True``, df ``N - 4`` or ``G - 1``) or the normal
(``use_t=False``); t quantiles come from ``scipy.special`` (analysis path, see
:mod:`~mlops.experiments.welch`).

>>> r = did_from_cells({"control_pre": MeanStats(100, 10.0, 4.0), "control_post": MeanStats(100, 11.0, 4.0),
...                     "treated_pre": MeanStats(100, 12.0, 4.0), "treated_post": MeanStats(100, 14.0, 4.0)},
...                    cov_type="nonrobust")
>>> round(r.estimate, 6), round(r.se, 6)
(1.0, 0.4)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike

from mlops.experiments import normal
from mlops.experiments.errors import ExperimentError, InsufficientData, check_probability
from mlops.experiments.summary import MeanStats

CELLS = ("control_pre", "control_post", "treated_pre", "treated_post")
_SIGN = {"control_pre": 1.0, "control_post": -1.0, "treated_pre": -1.0, "treated_post": 1.0}
COV_TYPES = ("nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster")


@dataclass(frozen=True)
class DidResult:
    """The DiD estimate with its interval; ``cells`` holds each cell's n and mean."""

    estimate: float
    se: float
    statistic: float
    df: float | None
    p_value: float
    ci_low: float
    ci_high: float
    alpha: float
    cov_type: str
    use_t: bool
    n: int
    cells: dict[str, dict[str, float]]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _inference(estimate: float, var: float, df: float, alpha: float, use_t: bool, cov_type: str, n: int,
               cells: Mapping[str, MeanStats]) -> DidResult:
    if not var > 0:
        raise InsufficientData("var", "every cell has zero spread: the standard error is 0")
    se = math.sqrt(var)
    stat = estimate / se
    if use_t:
        from scipy.special import stdtr, stdtrit  # analysis path only; see module doc

        p = float(2.0 * stdtr(df, -abs(stat)))
        q = float(stdtrit(df, 1.0 - alpha / 2))
    else:
        p = normal.two_sided_p(stat)
        q = normal.isf(alpha / 2)
    return DidResult(estimate=estimate, se=se, statistic=stat, df=df if use_t else None, p_value=p,
                     ci_low=estimate - q * se, ci_high=estimate + q * se, alpha=alpha, cov_type=cov_type,
                     use_t=use_t, n=n, cells={k: {"n": c.n, "mean": c.mean} for k, c in cells.items()})


def _cell_variance(cells: Mapping[str, MeanStats], cov_type: str) -> tuple[float, int]:
    n_total = sum(c.n for c in cells.values())
    ss = {k: (c.n - 1) * c.var for k, c in cells.items()}  # within-cell sum of squared residuals
    if cov_type == "nonrobust":
        s2 = sum(ss.values()) / (n_total - 4)
        return s2 * sum(1.0 / c.n for c in cells.values()), n_total
    if cov_type in ("HC0", "HC1"):
        var = sum(ss[k] / cells[k].n ** 2 for k in cells)
        return (var * n_total / (n_total - 4) if cov_type == "HC1" else var), n_total
    if cov_type in ("HC2", "HC3"):
        for k, c in cells.items():
            if c.n < 2:
                raise InsufficientData(f"cells.{k}.n", f"{cov_type} needs at least 2 observations per cell")
        if cov_type == "HC2":
            return sum(ss[k] / (cells[k].n * (cells[k].n - 1)) for k in cells), n_total
        return sum(ss[k] / (cells[k].n - 1) ** 2 for k in cells), n_total
    raise ExperimentError("cov_type", f"must be one of {COV_TYPES}, got {cov_type!r}")


def did_from_cells(cells: Mapping[str, MeanStats], *, alpha: float = 0.05, cov_type: str = "HC1",
                   use_t: bool = True) -> DidResult:
    """DiD from the four cells' (n, mean, var): keys ``control_pre``, ``control_post``,
    ``treated_pre``, ``treated_post``. ``cluster`` needs raw data (use :func:`did`)."""
    alpha = check_probability("alpha", alpha, high=0.5, high_open=False)
    for key in cells:
        if key not in CELLS:
            raise ExperimentError(f"cells.{key}", f"unknown cell; cells are {CELLS}")
    for key in CELLS:
        if key not in cells:
            raise ExperimentError(f"cells.{key}", "is required: DiD needs all four cells")
        if cells[key].n < 1:
            raise InsufficientData(f"cells.{key}.n", "every cell needs at least one observation")
    if cov_type == "cluster":
        raise ExperimentError("cov_type", "cluster-robust errors need the raw data and cluster ids: use did()")
    if cov_type not in COV_TYPES:
        raise ExperimentError("cov_type", f"must be one of {COV_TYPES}, got {cov_type!r}")
    estimate = (cells["treated_post"].mean - cells["treated_pre"].mean) - (
        cells["control_post"].mean - cells["control_pre"].mean)
    n_total = sum(c.n for c in cells.values())
    if n_total <= 4:
        raise InsufficientData("n", f"needs more than 4 observations in all, got {n_total}")
    var, n = _cell_variance(cells, cov_type)
    return _inference(estimate, var, n - 4, alpha, use_t, cov_type, n, cells)


def did(y: ArrayLike, treated: ArrayLike, post: ArrayLike, *, alpha: float = 0.05, cov_type: str = "HC1",
        use_t: bool = True, clusters: ArrayLike | None = None) -> DidResult:
    """DiD from raw outcomes ``y`` with 0/1 indicators ``treated`` and ``post`` per row.

    ``clusters`` (one id per row, e.g. the unit) is required for, and only used by,
    ``cov_type="cluster"``.
    """
    y_ = np.asarray(y, dtype=float)
    t_ = np.asarray(treated)
    p_ = np.asarray(post)
    if y_.ndim != 1 or t_.shape != y_.shape or p_.shape != y_.shape:
        raise ExperimentError("y", "y, treated and post must be 1-d arrays of the same length")
    if not np.all(np.isfinite(y_)):
        raise ExperimentError("y", "contains NaN or infinite values")
    for name, arr in (("treated", t_), ("post", p_)):
        if not np.all((arr == 0) | (arr == 1)):
            raise ExperimentError(name, "must be 0/1 indicators")
    masks = {"control_pre": (t_ == 0) & (p_ == 0), "control_post": (t_ == 0) & (p_ == 1),
             "treated_pre": (t_ == 1) & (p_ == 0), "treated_post": (t_ == 1) & (p_ == 1)}
    cells = {k: MeanStats.from_values(y_[m]) for k, m in masks.items()}
    if cov_type != "cluster":
        if clusters is not None:
            raise ExperimentError("clusters", f"only used with cov_type='cluster', not {cov_type!r}")
        return did_from_cells(cells, alpha=alpha, cov_type=cov_type, use_t=use_t)
    alpha = check_probability("alpha", alpha, high=0.5, high_open=False)
    if clusters is None:
        raise ExperimentError("clusters", "cov_type='cluster' needs one cluster id per row")
    g = np.asarray(clusters)
    if g.shape != y_.shape:
        raise ExperimentError("clusters", "must have one id per row")
    for k, c in cells.items():
        if c.n < 1:
            raise InsufficientData(f"cells.{k}.n", "every cell needs at least one observation")
    estimate = (cells["treated_post"].mean - cells["treated_pre"].mean) - (
        cells["control_post"].mean - cells["control_pre"].mean)
    # Influence of each row on the interaction coefficient times its residual, summed per cluster.
    contrib = np.zeros_like(y_)
    for k, m in masks.items():
        contrib[m] = _SIGN[k] * (y_[m] - cells[k].mean) / cells[k].n
    _, group = np.unique(g, return_inverse=True)
    sums = np.bincount(group, weights=contrib)
    n_groups, n = len(sums), y_.size
    if n_groups < 2:
        raise InsufficientData("clusters", "cluster-robust errors need at least 2 clusters")
    var = float(np.sum(sums * sums)) * n_groups / (n_groups - 1.0) * (n - 1.0) / (n - 4.0)
    return _inference(estimate, var, n_groups - 1, alpha, use_t, "cluster", n, cells)
