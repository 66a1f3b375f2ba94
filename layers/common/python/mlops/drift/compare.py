"""``compare(baseline, current_columns, config) -> DriftReport``: the batch drift check.

For each feature of the baseline (or ``config.features``):

* **numeric** - NaN counts as null and is left out; one merge of the baseline sample with
  the current values gives KS (statistic; p-value with the true reference count) and
  Wasserstein (plain and over the reference std); PSI, KL(reference || current) and
  Jensen-Shannon come from the current counts in the baseline's quantile bins against the
  baseline's exact counts (:mod:`~mlops.drift.numeric`). A feature the baseline keeps value
  frequencies for (at most 20 distinct values) has PSI, KL, JS and chi-square computed on
  the values instead of the bins - its values are its natural bins. Without them,
  chi-square (if asked for) uses the bins.
* **categorical** - categories are matched as strings (:func:`~mlops.drift.baseline.value_key`);
  over the union of categories: chi-square with expected counts scaled from the reference
  frequencies (:mod:`~mlops.drift.chisquare`), PSI and KL with empty shares set to
  ``psi.EPSILON``, Jensen-Shannon on the raw shares.

The method that decides each feature comes from :mod:`~mlops.drift.chooser` (overridable
per feature); the dataset-level decision applies Bonferroni and Holm to the p-value
features (:mod:`~mlops.drift.report`). Numeric features run on ``config.n_jobs`` threads.
Features missing from the current columns, or with no non-null current value, are listed
in ``report.skipped`` with the reason.

>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> base = Baseline.build({"x": rng.normal(size=800), "c": rng.choice(["a", "b"], size=800)})
>>> r = compare(base, {"x": rng.normal(2.0, 1, size=300), "c": rng.choice(["a", "b"], size=300)})
>>> r.features["x"].method, r.features["x"].drifted, r.features["c"].method, r.features["c"].drifted
('ks', True, 'chisquare', False)
>>> r.shares["holm"], r.dataset_drift
(0.5, True)
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from mlops.drift.baseline import (CATEGORICAL, Baseline, CategoricalBaseline, NumericBaseline, categorical_keys,
                                  value_key)
from mlops.drift.chisquare import chisquare, expected_from_reference
from mlops.drift.chooser import DriftConfig, drifted, is_pvalue
from mlops.drift.correction import METHODS as CORRECTIONS
from mlops.drift.correction import correct
from mlops.drift.divergence import jensen_shannon, kl_divergence
from mlops.drift.numeric import NumericDrift, numeric_drift
from mlops.drift.psi import EPSILON, psi, shares
from mlops.drift.report import DriftReport, FeatureDrift


def _frequency_metrics(ref: Mapping[str, int], cur: Mapping[str, int]) -> tuple[dict[str, float], dict[str, list[Any]]]:
    """chi-square, PSI, KL and JS over the union of categories (see the module docstring)."""
    categories, observed, expected = expected_from_reference(ref, cur)
    ref_counts = np.array([float(ref.get(c, 0)) for c in categories])
    chi = chisquare(observed, expected)
    metrics = {"chisquare_statistic": chi.statistic, "chisquare_pvalue": chi.pvalue,
               "psi": float(psi(ref_counts, observed)),
               "kl": float(kl_divergence(shares(ref_counts, EPSILON), shares(observed, EPSILON))),
               "jensenshannon": float(jensen_shannon(ref_counts, observed))}
    bins = {"categories": categories, "reference": ref_counts.astype(int).tolist(),
            "current": observed.astype(int).tolist()}
    return metrics, bins


def _bin_chisquare(d: NumericDrift) -> dict[str, float]:
    ref = d.reference_counts.astype(np.float64)
    obs = d.current_counts.astype(np.float64)
    chi = chisquare(obs, ref * (obs.sum() / ref.sum()))
    return {"chisquare_statistic": chi.statistic, "chisquare_pvalue": chi.pvalue}


def _score(method: str, metrics: Mapping[str, float]) -> float:
    key = {"ks": "ks_pvalue", "chisquare": "chisquare_pvalue", "wasserstein": "wasserstein_norm",
           "jensenshannon": "jensenshannon", "psi": "psi", "kl": "kl"}[method]
    return float(metrics[key])


def _numeric_feature(name: str, base: NumericBaseline, values: Any, config: DriftConfig) -> FeatureDrift:
    x = np.asarray(values, dtype=np.float64)
    nulls = 0
    cur = x
    if np.isnan(np.sum(x)):  # one reduction for the usual NaN-free column
        nan = np.isnan(x)
        nulls = int(nan.sum())
        cur = x[~nan]
    method = config.method_for(name, base.kind, base.count, base.n_unique)
    d = numeric_drift(base.sample, cur, edges=np.asarray(base.edges), reference_counts=np.asarray(base.counts),
                      n_reference=base.count, reference_std=base.std, sample_sorted=True)
    metrics = d.metrics()
    bins: dict[str, list[Any]] = {"edges": [float(e) for e in d.edges], "reference": d.reference_counts.tolist(),
                                  "current": d.current_counts.tolist()}
    if base.frequencies is not None:
        uniq, counts = np.unique(cur, return_counts=True)
        freq, bins = _frequency_metrics(base.frequencies, {value_key(u): int(c) for u, c in zip(uniq.tolist(), counts)})
        metrics.update(freq)
    elif method == "chisquare":
        metrics.update(_bin_chisquare(d))
    threshold = config.threshold_for(name, method)
    score = _score(method, metrics)
    return FeatureDrift(name, base.kind, method, score, threshold, is_pvalue(method), drifted(method, score, threshold),
                        base.count, len(cur), nulls, metrics, bins=bins)


def _categorical_feature(name: str, base: CategoricalBaseline, values: Any, config: DriftConfig) -> FeatureDrift:
    keys, nulls = categorical_keys(values)
    uniq, counts = np.unique(keys, return_counts=True)
    method = config.method_for(name, CATEGORICAL, base.count, base.n_unique)
    metrics, bins = _frequency_metrics(base.frequencies, {str(u): int(c) for u, c in zip(uniq.tolist(), counts)})
    threshold = config.threshold_for(name, method)
    score = _score(method, metrics)
    return FeatureDrift(name, CATEGORICAL, method, score, threshold, is_pvalue(method),
                        drifted(method, score, threshold), base.count, len(keys), nulls, metrics, bins=bins)


def _has_values(base: NumericBaseline | CategoricalBaseline, values: Any) -> bool:
    if isinstance(base, NumericBaseline):
        x = np.asarray(values, dtype=np.float64)
        return bool(len(x)) and not bool(np.isnan(x).all())
    return len(categorical_keys(values)[0]) > 0


def compare(baseline: Baseline, current: Mapping[str, Any], config: DriftConfig | None = None) -> DriftReport:
    """Run the batch drift tests of every baseline feature against the current columns."""
    config = config or DriftConfig()
    if config.correction not in CORRECTIONS:
        raise ValueError(f"unknown correction {config.correction!r}; expected one of {CORRECTIONS}")
    names = list(config.features) if config.features is not None else list(baseline.features)
    skipped: dict[str, str] = {}
    numeric: list[tuple[str, NumericBaseline, Any]] = []
    results: dict[str, FeatureDrift] = {}
    for name in names:
        base = baseline.features.get(name)
        if base is None:
            skipped[name] = "not in the baseline"
        elif name not in current:
            skipped[name] = "missing from the current data"
        elif base.count == 0:
            skipped[name] = "no non-null reference value"
        elif not _has_values(base, current[name]):
            skipped[name] = "no non-null current value"
        elif isinstance(base, NumericBaseline):
            numeric.append((name, base, current[name]))
        else:
            results[name] = _categorical_feature(name, base, current[name], config)
    if config.n_jobs > 1 and len(numeric) > 1:
        with ThreadPoolExecutor(max_workers=config.n_jobs) as pool:
            done = list(pool.map(lambda t: _numeric_feature(t[0], t[1], t[2], config), numeric))
    else:
        done = [_numeric_feature(n, b, v, config) for n, b, v in numeric]
    results.update({f.name: f for f in done})
    features = {n: results[n] for n in names if n in results}
    return _decide(features, skipped, config, dict(baseline.metadata))


def _decide(features: dict[str, FeatureDrift], skipped: dict[str, str], config: DriftConfig,
            metadata: dict[str, Any]) -> DriftReport:
    tested = [f for f in features.values() if f.is_pvalue]
    pvalues = np.array([f.score for f in tested], dtype=np.float64)
    n_drifted: dict[str, int] = {}
    shares_by: dict[str, float] = {}
    for method in CORRECTIONS:
        if method == "none":
            reject = np.array([f.drifted for f in tested], dtype=bool)
            adjusted = pvalues.copy()
        else:
            reject, adjusted = correct(pvalues, config.alpha, method)
        for f, r, a in zip(tested, reject.tolist(), adjusted.tolist()):
            f.adjusted_pvalue[method] = a
            f.drifted_by_correction[method] = bool(r)
        for f in features.values():
            if not f.is_pvalue:
                f.drifted_by_correction[method] = f.drifted
        n = sum(f.drifted_by_correction[method] for f in features.values())
        n_drifted[method] = n
        shares_by[method] = n / len(features) if features else 0.0
    return DriftReport(features, skipped, config.correction, config.alpha, config.drift_share, n_drifted,
                       shares_by, metadata)
