"""k-sigma anomalies on moving averages: the moving statistics equal pandas' ewm/rolling on the
same series, and the alerts follow from them."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mlops.monitoring.anomaly import AnomalyConfig, EWMState, anomalies, detect


def series(seed: int, n: int = 300, nans: int = 10) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(10, 2, size=n) + np.linspace(0, 3, n)
    x[rng.choice(n, size=nans, replace=False)] = np.nan
    return x


@pytest.mark.parametrize("adjust", [False, True])
@pytest.mark.parametrize("alpha", [0.05, 0.3, 1.0])
def test_ewm_state_equals_pandas(adjust: bool, alpha: float) -> None:
    x = series(int(alpha * 100) + adjust)
    state = EWMState(alpha, adjust)
    means, stds = [], []
    for v in x:
        state.update(v)
        means.append(state.mean)
        stds.append(state.std)
    ewm = pd.Series(x).ewm(alpha=alpha, adjust=adjust, ignore_na=True)
    np.testing.assert_allclose(means, ewm.mean().to_numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stds, ewm.std().to_numpy(), rtol=1e-10, atol=1e-12, equal_nan=True)


def test_ewm_state_survives_json() -> None:
    x = series(7, n=50, nans=0)
    a = EWMState(0.2)
    for v in x[:25]:
        a.update(v)
    b = EWMState.from_dict(a.to_dict())
    for v in x[25:]:
        a.update(v)
        b.update(v)
    assert (a.mean, a.std) == (b.mean, b.std)


def reference(x: np.ndarray, config: AnomalyConfig) -> tuple[np.ndarray, np.ndarray]:
    """(z, anomaly) from pandas: the statistics of the points before each point."""
    s = pd.Series(x)
    if config.method == "ewma":
        moving = s.ewm(alpha=config.alpha, adjust=config.adjust, ignore_na=True)
        mean, std = moving.mean(), moving.std()
    else:
        kept = s.dropna()
        rolling = kept.rolling(config.window, min_periods=2)
        mean, std = rolling.mean().reindex(s.index).ffill(), rolling.std().reindex(s.index).ffill()
    seen = s.notna().cumsum().shift(1).fillna(0)
    prev_mean, prev_std = mean.shift(1), np.maximum(std.shift(1), config.min_std)
    z = (s - prev_mean) / prev_std
    judged = s.notna() & (seen >= config.warmup) & prev_std.notna()
    return z.where(judged).to_numpy(), (judged & (z.abs() > config.k)).to_numpy()


@pytest.mark.parametrize("config", [
    AnomalyConfig(k=2.0, method="ewma", alpha=0.3, warmup=5),
    AnomalyConfig(k=2.0, method="ewma", alpha=0.1, adjust=True, warmup=10),
    AnomalyConfig(k=1.5, method="rolling", window=12, warmup=6),
    AnomalyConfig(k=2.0, method="rolling", window=5, warmup=3, min_std=1.5),
])
def test_detection_equals_a_pandas_reference(config: AnomalyConfig) -> None:
    x = series(11, n=200)
    spikes = [i for i in (60, 120, 150, 151, 170) if not np.isnan(x[i])][:3]
    x[spikes] += 40.0
    points = detect(x.tolist(), config)
    z_ref, flags_ref = reference(x, config)
    z = np.array([np.nan if p.z is None else p.z for p in points])
    np.testing.assert_allclose(z, z_ref, rtol=1e-9, atol=1e-9, equal_nan=True)
    assert [p.anomaly for p in points] == flags_ref.tolist()
    assert set(spikes) <= {p.index for p in points if p.anomaly}


def test_warmup_direction_and_flat_series() -> None:
    x = [1.0, 1.2, 0.9, 1.1, 1.0, 9.0]
    assert anomalies(x, AnomalyConfig(k=3, warmup=6)) == []          # not warmed up at index 5
    [spike] = anomalies(x, AnomalyConfig(k=3, warmup=5))
    assert spike.index == 5 and spike.z > 3
    assert anomalies(x, AnomalyConfig(k=3, warmup=5, direction="down")) == []
    drop = x[:5] + [-9.0]
    assert [p.index for p in anomalies(drop, AnomalyConfig(k=3, warmup=5, direction="down"))] == [5]
    flat = [0.0] * 8 + [0.01]
    [moved] = anomalies(flat, AnomalyConfig(warmup=3))
    assert moved.index == 8 and moved.z is None and moved.std == 0.0  # infinite z: reported as None
    assert anomalies(flat, AnomalyConfig(warmup=3, min_std=0.05)) == []
    gaps = [1.0, None, 1.1, math.nan, 0.9, 1.0, None, 1.05]
    assert [p.value for p in detect(gaps, AnomalyConfig(warmup=2))][1] is None


@pytest.mark.parametrize("kwargs", [{"k": 0}, {"alpha": 0}, {"alpha": 1.5}, {"window": 1}, {"warmup": 1},
                                    {"method": "median"}, {"direction": "sideways"}, {"min_std": -1}])
def test_bad_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        AnomalyConfig(**kwargs)
