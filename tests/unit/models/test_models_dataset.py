"""Training-set checks, the time-based split and the content hash."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops.models.dataset import (
    TrainingDataError,
    as_epoch_ms,
    content_hash,
    data_reference,
    iso_utc,
    make_training_set,
    time_split,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=2, max_size=60), st.floats(0.05, 0.6))
def test_time_split_never_crosses_time(ts_list: list[int], fraction: float) -> None:
    ts = np.array(ts_list, dtype=np.int64)
    n_val = max(1, math.ceil(len(ts) * fraction))
    if n_val >= len(ts) or (np.sort(ts)[len(ts) - n_val] == ts.min()):
        with pytest.raises(TrainingDataError):
            time_split(ts, fraction)
        return
    split = time_split(ts, fraction)
    assert (split.train ^ split.validation).all()
    assert ts[split.train].max() < ts[split.validation].min() == split.split_time_ms
    # The validation side is the latest fraction, widened only by rows tied at the cut.
    assert split.validation.sum() >= n_val
    assert (ts > split.split_time_ms).sum() < n_val


def test_time_split_distinct_timestamps_take_exact_fraction() -> None:
    ts = np.random.default_rng(0).permutation(1000).astype(np.int64)
    split = time_split(ts, 0.2)
    assert split.validation.sum() == 200
    assert set(ts[split.validation].tolist()) == set(range(800, 1000))


def test_time_split_refuses_bad_fractions() -> None:
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(TrainingDataError, match="validation_fraction"):
            time_split(np.arange(10), bad)


def test_timestamps_in_any_form_become_epoch_ms() -> None:
    expected = np.array([1704067200000, 1704067201500])
    assert (as_epoch_ms(np.array(["2024-01-01T00:00:00", "2024-01-01T00:00:01.5"])) == expected).all()
    assert (as_epoch_ms(np.array(["2024-01-01T00:00:00", "2024-01-01T00:00:01.500"], dtype="datetime64[ns]")) == expected).all()
    assert (as_epoch_ms([1704067200, 1704067201.5]) == expected).all()
    assert iso_utc(1704067201500) == "2024-01-01T00:00:01.500Z"
    with pytest.raises(TrainingDataError, match="NaT"):
        as_epoch_ms(np.array(["2024-01-01", "NaT"], dtype="datetime64[s]"))
    with pytest.raises(TrainingDataError, match="NaN"):
        as_epoch_ms([1.0, float("nan")])


def _columns() -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    a = rng.normal(size=50)
    a[3] = np.nan
    b = rng.normal(size=50)
    return {"a": a, "b": b}, (rng.random(50) < 0.3).astype(int), np.arange(50) * 60


def test_make_training_set_keeps_column_order_and_missing_values() -> None:
    feats, y, ts = _columns()
    data = make_training_set({"b": feats["b"], "a": list(feats["a"][:-1]) + [None]}, y.astype(bool), ts)
    assert data.feature_names == ("b", "a")
    assert np.isnan(data.x[3, 1]) and np.isnan(data.x[49, 1])
    assert data.labels.dtype == np.int8 and (data.labels == y).all()
    assert (data.timestamps_ms == ts * 1000).all()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f, y, t: ({**f, "a": np.r_[f["a"][:-1], np.inf]}, y, t), "feature 'a': 1 infinite"),
        (lambda f, y, t: ({**f, "b": f["b"][:-1]}, y, t), "feature 'b': has 49 rows"),
        (lambda f, y, t: ({**f, "c": np.array(["x"] * 50)}, y, t), "feature 'c': not numeric"),
        (lambda f, y, t: (f, np.r_[y[:-1], 2], t), "labels must be 0 or 1"),
        (lambda f, y, t: (f, y, t[:-1]), "timestamps have 49 rows"),
        (lambda f, y, t: ({}, y, t), "no feature columns"),
        (lambda f, y, t: ({**f, "m": f["a"].reshape(10, 5)}, y, t), "feature 'm': must be one-dimensional"),
    ],
)
def test_malformed_training_sets_name_the_problem(mutate, message: str) -> None:
    with pytest.raises(TrainingDataError, match=message):
        make_training_set(*mutate(*_columns()))


def test_content_hash_is_stable_and_sensitive() -> None:
    feats, y, ts = _columns()
    base = content_hash(make_training_set(feats, y, ts))
    # Another NaN payload and a negative zero are the same data.
    odd_nan = feats["a"].copy()
    odd_nan.view(np.uint64)[3] = 0x7FF8_0000_DEAD_BEEF
    zero = feats["b"].copy()
    zero[0] = -0.0
    zero_pos = feats["b"].copy()
    zero_pos[0] = 0.0
    assert np.isnan(odd_nan[3])
    assert content_hash(make_training_set({"a": odd_nan, "b": feats["b"]}, y, ts)) == base
    assert content_hash(make_training_set({"a": feats["a"], "b": zero}, y, ts)) == content_hash(
        make_training_set({"a": feats["a"], "b": zero_pos}, y, ts))
    changed_value = feats["b"].copy()
    changed_value[10] += 1e-12
    variants = [
        ({"a": feats["a"], "b": changed_value}, y, ts),
        ({"b": feats["b"], "a": feats["a"]}, y, ts),
        ({"a": feats["a"], "c": feats["b"]}, y, ts),
        (feats, 1 - y, ts),
        (feats, y, ts + 1),
    ]
    hashes = {content_hash(make_training_set(*v)) for v in variants}
    assert base not in hashes and len(hashes) == len(variants)


def test_data_reference_describes_both_sides() -> None:
    feats, y, ts = _columns()
    data = make_training_set(feats, y, ts)
    split = time_split(data.timestamps_ms, 0.2)
    ref = data_reference(data, split, 0.2)
    assert ref["rows"] == 50 and ref["features"] == 2 and ref["positives"] == int(y.sum())
    assert ref["train"]["rows"] == 40 and ref["validation"]["rows"] == 10
    assert ref["train"]["positives"] + ref["validation"]["positives"] == int(y.sum())
    assert ref["time_range"] == {"start": "1970-01-01T00:00:00.000Z", "end": "1970-01-01T00:49:00.000Z"}
    assert ref["split_time"] == ref["validation"]["start"] == "1970-01-01T00:40:00.000Z"
    assert ref["train"]["end"] == "1970-01-01T00:39:00.000Z"
    assert ref["content_sha256"] == content_hash(data)
