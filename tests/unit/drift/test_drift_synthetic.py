"""The synthetic generator puts drift where it says, and scoring matches detections."""

from __future__ import annotations

import numpy as np
import pytest

from mlops.drift import synthetic


def test_abrupt_levels_and_reproducibility() -> None:
    s = synthetic.abrupt(30_000, [10_000, 20_000], [2.0, -3.0], noise=0.5, seed=3)
    means = [s.values[a:b].mean() for a, b in [(0, 10_000), (10_000, 20_000), (20_000, 30_000)]]
    np.testing.assert_allclose(means, [0.0, 1.0, -0.5], atol=0.02)
    assert np.array_equal(s.values, synthetic.abrupt(30_000, [10_000, 20_000], [2.0, -3.0], noise=0.5, seed=3).values)
    assert s.drift_points == [10_000, 20_000]


def test_gradual_mixes_linearly_and_incremental_ramps() -> None:
    g = synthetic.gradual(40_000, [10_000], [40.0], width=20_000, noise=0.1, seed=1)  # 40 sd = 4.0
    new = g.values[10_000:30_000] > 2.0  # which concept each value came from
    share = [new[i:i + 5000].mean() for i in range(0, 20_000, 5000)]
    np.testing.assert_allclose(share, [0.125, 0.375, 0.625, 0.875], atol=0.03)
    assert g.values[:10_000].max() < 1.0 and g.values[30_000:].min() > 3.0
    inc = synthetic.incremental(3000, [1000], [1e9], width=1000, noise=1e-9, seed=0)  # 1e9 sd = 1.0
    np.testing.assert_allclose(inc.values[1000:2000], np.arange(1, 1001) / 1000, atol=1e-6)


def test_bernoulli_rates() -> None:
    b = synthetic.bernoulli(60_000, [20_000, 40_000], [0.1, 0.4, 0.2], seed=2)
    assert set(np.unique(b.values).tolist()) == {0, 1}
    np.testing.assert_allclose([b.values[:20_000].mean(), b.values[20_000:40_000].mean(), b.values[40_000:].mean()],
                               [0.1, 0.4, 0.2], atol=0.01)


def test_validation() -> None:
    with pytest.raises(ValueError):
        synthetic.abrupt(100, [50, 40], [1.0, 1.0])
    with pytest.raises(ValueError):
        synthetic.abrupt(100, [150], [1.0])
    with pytest.raises(ValueError):
        synthetic.bernoulli(100, [50], [0.1])


def test_score_matches_first_detection_per_drift_point() -> None:
    r = synthetic.score([5, 120, 130, 260, 900], [100, 250, 600], n=1000, max_delay=100)
    assert r.delays == [20, 10, None]  # 600 is missed: 900 comes too late
    assert r.false_alarms == 3 and r.false_alarm_rate == 30.0  # 5, 130 (second for 100) and 900
    assert synthetic.score([], [], n=500, max_delay=10).false_alarm_rate == 0.0
