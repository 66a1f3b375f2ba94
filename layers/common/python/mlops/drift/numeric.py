"""All numeric drift statistics of one feature from one merge, and many features at once.

:func:`numeric_drift` compares a reference (a baseline's sample plus its exact bin counts,
or raw training values) with a current window: KS statistic and p-value, Wasserstein-1
and its normalised form, and PSI, KL and Jensen-Shannon on the reference quantile bins.
:func:`numeric_drift_many` runs it over many features on a thread pool (numpy releases the
GIL in the sort and the elementwise passes, so two threads use two cores).

Equal to scipy on the same data: ``ks_2samp`` (statistic, p-value, regime),
``wasserstein_distance``, ``entropy(p, q)`` and ``jensenshannon(p, q)`` on the shares.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> d = numeric_drift_raw(rng.normal(size=500), rng.normal(0.5, 1, size=400))
>>> d.ks_method, d.ks_pvalue < 1e-6, round(d.wasserstein_norm, 2)
('exact', True, 0.5)
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from mlops.drift.divergence import jensen_shannon, kl_divergence
from mlops.drift.ks import ks_pvalue
from mlops.drift.psi import DEFAULT_BINS, EPSILON, psi, share_list
from mlops.drift.twosample import two_sample
from mlops.drift.wasserstein import normalised_wasserstein


@dataclass(frozen=True)
class NumericDrift:
    """Every statistic of one numeric feature (counts per bin: reference then current)."""

    n_reference: int
    n_current: int
    ks_statistic: float
    ks_pvalue: float
    ks_method: str
    wasserstein: float
    wasserstein_norm: float
    psi: float
    kl: float
    jensenshannon: float
    edges: np.ndarray
    reference_counts: np.ndarray
    current_counts: np.ndarray

    def metrics(self) -> dict[str, float]:
        return {"ks_statistic": self.ks_statistic, "ks_pvalue": self.ks_pvalue,
                "wasserstein": self.wasserstein, "wasserstein_norm": self.wasserstein_norm,
                "psi": self.psi, "kl": self.kl, "jensenshannon": self.jensenshannon}


def numeric_drift(sample: np.ndarray, current: np.ndarray, *, edges: np.ndarray | None,
                  reference_counts: np.ndarray | None, n_reference: int, reference_std: float,
                  sample_sorted: bool = False, eps: float = EPSILON, n_bins: int = DEFAULT_BINS) -> NumericDrift:
    """Compare a current window (NaN removed by the caller) with a reference.

    ``sample`` stands for the reference in KS and Wasserstein (the whole reference, or a
    baseline's quantile sample); ``reference_counts`` are its exact bin counts on ``edges``
    (``None``: count the sample itself); ``n_reference`` is the size used for the KS p-value.
    ``edges=None``: the sample's own quantiles k/n_bins (found during the merge).
    """
    cur = np.asarray(current, dtype=np.float64)
    if edges is None:
        t = two_sample(sample, cur, None, reference_sorted=sample_sorted, n_bins=n_bins)
    else:
        t = two_sample(sample, cur, np.asarray(edges, dtype=np.float64), reference_sorted=sample_sorted)
    edges = t.edges
    ks = ks_pvalue(t.ks_statistic, int(n_reference), len(cur))
    cur_counts = _bin_counts(t.cur_below.tolist(), len(cur))
    if reference_counts is None:
        ref_counts = _bin_counts(t.ref_below.tolist(), len(sample))
    else:
        ref_counts = [int(c) for c in reference_counts]
    return NumericDrift(
        n_reference=int(n_reference), n_current=len(cur),
        ks_statistic=ks.statistic, ks_pvalue=ks.pvalue, ks_method=ks.method,
        wasserstein=t.wasserstein, wasserstein_norm=normalised_wasserstein(t.wasserstein, reference_std),
        psi=float(psi(ref_counts, cur_counts, eps)),
        kl=float(kl_divergence(share_list(ref_counts, eps), share_list(cur_counts, eps))),
        jensenshannon=float(jensen_shannon(ref_counts, cur_counts)),
        edges=edges, reference_counts=np.asarray(ref_counts, dtype=np.int64),
        current_counts=np.asarray(cur_counts, dtype=np.int64))


def _bin_counts(below: list[int], total: int) -> list[int]:
    """Counts per bin from the counts below each edge (pure Python: a dozen numbers)."""
    bounds = [0] + below + [total]
    return [b - a for a, b in zip(bounds, bounds[1:])]


def numeric_drift_raw(reference: np.ndarray, current: np.ndarray, n_bins: int = DEFAULT_BINS,
                      eps: float = EPSILON) -> NumericDrift:
    """Compare two raw samples (NaN dropped from both): bins from the reference quantiles."""
    ref = _drop_nan(np.asarray(reference, dtype=np.float64))
    cur = _drop_nan(np.asarray(current, dtype=np.float64))
    if len(ref) == 0 or len(cur) == 0:
        raise ValueError("both samples need at least one non-NaN value")
    return numeric_drift(ref, cur, edges=None, n_bins=n_bins, reference_counts=None, n_reference=len(ref),
                         reference_std=_std(ref, _scratch(len(ref))), eps=eps)


def _std(x: np.ndarray, tmp: np.ndarray) -> float:
    """``np.std(x)`` (ddof=0) with numpy's own steps, into a reused buffer (no page faults)."""
    mean = np.add.reduce(x) / len(x)
    np.subtract(x, mean, out=tmp)
    np.multiply(tmp, tmp, out=tmp)
    return float(np.sqrt(np.add.reduce(tmp) / len(x)))


_LOCAL = threading.local()


def _scratch(n: int) -> np.ndarray:
    """A float buffer of at least n values, reused within a thread."""
    buf = getattr(_LOCAL, "buf", None)
    if buf is None or len(buf) < n:
        buf = np.empty(n)
        _LOCAL.buf = buf
    return buf[:n]


def _drop_nan(x: np.ndarray) -> np.ndarray:
    """x without NaN; a NaN-free column (the sum is not NaN) costs one reduction."""
    if not np.isnan(np.sum(x)):
        return x
    return x[~np.isnan(x)]


def numeric_drift_many(references: Sequence[np.ndarray] | np.ndarray, currents: Sequence[np.ndarray] | np.ndarray,
                       n_bins: int = DEFAULT_BINS, n_jobs: int = 2, eps: float = EPSILON) -> list[NumericDrift]:
    """:func:`numeric_drift_raw` for each pair of columns (rows of 2-D arrays), threaded."""
    if len(references) != len(currents):
        raise ValueError("as many reference as current columns are needed")
    pairs = list(zip(references, currents))
    if n_jobs <= 1 or len(pairs) < 2:
        return [numeric_drift_raw(r, c, n_bins, eps) for r, c in pairs]
    with ThreadPoolExecutor(max_workers=n_jobs) as pool:
        return list(pool.map(lambda rc: numeric_drift_raw(rc[0], rc[1], n_bins, eps), pairs))
