"""Bonferroni and Holm against statsmodels' multipletests."""

from __future__ import annotations

import gc
import math

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from mlops.experiments.correction import adjust, reject
from mlops.experiments.errors import ExperimentError


@pytest.mark.parametrize("method", ["holm", "bonferroni"])
def test_matches_multipletests_on_random_families(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # statsmodels' Holm branch calls gc.collect() (about 0.1 s) on every call; skipping that
    # garbage collection changes no number and keeps 500 families fast.
    monkeypatch.setattr(gc, "collect", lambda *args: 0)
    rng = np.random.default_rng(7)
    for _ in range(500):
        k = int(rng.integers(1, 15))
        p = rng.random(k) ** 3
        if k > 2 and rng.random() < 0.3:
            p[1] = p[0]  # ties
        alpha = float(rng.choice([0.01, 0.05, 0.1]))
        ref_reject, ref_adj, _, _ = multipletests(p, alpha=alpha, method=method)
        np.testing.assert_allclose(adjust(p, method), ref_adj, rtol=1e-15, atol=0)
        assert reject(p, alpha, method) == list(ref_reject)


def test_known_values_and_none() -> None:
    assert adjust([0.01, 0.04, 0.03], "holm") == pytest.approx([0.03, 0.06, 0.06])
    assert adjust([0.01, 0.04, 0.03], "bonferroni") == pytest.approx([0.03, 0.12, 0.09])
    assert adjust([0.01, 0.04], "none") == [0.01, 0.04]
    assert reject([0.01, 0.04, 0.03], 0.05, "holm") == [True, False, False]


def test_nan_is_left_out_of_the_family() -> None:
    out = adjust([0.01, math.nan, 0.02], "bonferroni")
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1]) and out[2] == pytest.approx(0.04)
    assert reject([0.01, math.nan], 0.05) == [True, False]


def test_bad_input_names_the_field() -> None:
    with pytest.raises(ExperimentError) as info:
        adjust([0.1], "fdr_bh")
    assert info.value.field == "correction"
    with pytest.raises(ExperimentError) as info:
        adjust([0.1, 1.5])
    assert info.value.field == "p_values[1]"
