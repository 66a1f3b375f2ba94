"""Difference-in-differences against a statsmodels OLS with an interaction term."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from mlops.experiments.did import did, did_from_cells
from mlops.experiments.errors import ExperimentError, InsufficientData
from mlops.experiments.summary import MeanStats


def panel(seed: int, units: int = 400, effect: float = 0.8) -> pd.DataFrame:
    """Units observed before and after; a fixed unit effect; treated units noisier."""
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(units), 2)
    post = np.tile([0, 1], units)
    treated = (unit < units * 3 // 8).astype(int)
    y = (5 + 1.0 * treated + 0.5 * post + effect * treated * post + rng.normal(0, 2, units)[unit]
         + rng.normal(0, 1 + treated, 2 * units))
    return pd.DataFrame({"y": y, "treated": treated, "post": post, "unit": unit})


@pytest.mark.parametrize("cov_type", ["nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster"])
@pytest.mark.parametrize("use_t", [True, False])
@pytest.mark.parametrize("seed", [1, 2])
def test_matches_statsmodels_ols_interaction(cov_type: str, use_t: bool, seed: int) -> None:
    df = panel(seed)
    kwds = {"groups": df["unit"]} if cov_type == "cluster" else None
    fit = smf.ols("y ~ treated * post", df).fit(cov_type=cov_type, cov_kwds=kwds, use_t=use_t)
    ours = did(df["y"], df["treated"], df["post"], cov_type=cov_type, use_t=use_t,
               clusters=df["unit"] if cov_type == "cluster" else None)
    name = "treated:post"
    low, high = fit.conf_int(alpha=0.05).loc[name]
    assert ours.estimate == pytest.approx(fit.params[name], rel=1e-10)
    assert ours.se == pytest.approx(fit.bse[name], rel=1e-10)
    assert ours.statistic == pytest.approx(fit.tvalues[name], rel=1e-10)
    assert ours.p_value == pytest.approx(fit.pvalues[name], rel=1e-9)
    assert (ours.ci_low, ours.ci_high) == pytest.approx((low, high), rel=1e-10)


def test_from_cells_equals_from_rows_and_recovers_a_known_effect() -> None:
    df = panel(3, units=4000, effect=0.8)
    rows = did(df["y"], df["treated"], df["post"], cov_type="HC1")
    cells = {}
    for key, (t, p) in {"control_pre": (0, 0), "control_post": (0, 1), "treated_pre": (1, 0),
                        "treated_post": (1, 1)}.items():
        cells[key] = MeanStats.from_values(df.loc[(df.treated == t) & (df.post == p), "y"].to_numpy())
    from_cells = did_from_cells(cells, cov_type="HC1")
    assert from_cells.estimate == pytest.approx(rows.estimate, rel=1e-12)
    assert from_cells.se == pytest.approx(rows.se, rel=1e-12)
    assert rows.ci_low < 0.8 < rows.ci_high


def test_bad_input_names_the_field() -> None:
    df = panel(4, units=40)
    y, t, p = df["y"], df["treated"], df["post"]
    cases = [
        (lambda: did(y, t, p, cov_type="HC4"), "cov_type"),
        (lambda: did(y, t, p, cov_type="cluster"), "clusters"),
        (lambda: did(y, t, p, clusters=df["unit"]), "clusters"),
        (lambda: did(y, t * 2, p), "treated"),
        (lambda: did(y, t, p + 0.5), "post"),
        (lambda: did(y[:-1], t, p), "y"),
        (lambda: did(y, t, p, alpha=0.9), "alpha"),
        (lambda: did_from_cells({"control_pre": MeanStats(3, 1.0, 1.0)}), "cells.control_post"),
        (lambda: did_from_cells({"pre": MeanStats(3, 1.0, 1.0)}), "cells.pre"),
    ]
    for call, field in cases:
        with pytest.raises(ExperimentError) as info:
            call()
        assert info.value.field == field
    with pytest.raises(InsufficientData):
        did(np.ones(8), [0, 0, 0, 0, 1, 1, 1, 1], [0, 0, 1, 1, 0, 0, 1, 1])
