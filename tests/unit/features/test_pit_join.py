"""Point-in-time joins against pandas.merge_asof, no future leakage, and the online answer."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops.features.definitions import Entity, FeatureView, Field
from mlops.features.pit import _sorted_order, latest_as_of, pit_join, training_set

FEATURES = ["f", "g", "s", "ft"]  # float (with NaN), int, str, and a copy of the row's time
NS_KINDS = ("wide_ns", "ns_whole_us")  # time kinds held as datetime64[ns] (the ttl_us are then ns)
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- data -------------------------------------------------------------------------------------

@st.composite
def pit_data(draw: st.DrawFn) -> dict[str, Any]:
    """Random labels and feature rows with few entities and few distinct times, so that ties,
    exact matches and TTL edges happen often. Times come in several forms and scales: small
    and wide ranges in epoch micros, datetime64[us] and datetime64[ns]; int ids dense or
    spread out. Together they reach every path of the join: one- and two-pass sorts of the
    combined key, coarsened time, the fallback to time ranks, dense and sparse id codes,
    object keys."""
    key_kind = draw(st.sampled_from(["int", "str", "pair"]))
    time_kind = draw(st.sampled_from(["int_us", "narrow_us", "wide_us", "wide_ns", "ns_whole_us"]))
    n_ent = draw(st.integers(1, 5))
    id_scale = draw(st.sampled_from([1, 100, 10**7]))
    if time_kind == "wide_ns":
        pool = draw(st.lists(st.integers(-(2**61), 2**61), min_size=1, max_size=8))
    elif time_kind == "ns_whole_us":  # nanosecond columns holding whole microseconds
        pool = [1000 * t for t in draw(st.lists(st.integers(-(2**52), 2**52), min_size=1, max_size=8))]
    elif time_kind == "wide_us":
        pool = draw(st.lists(st.integers(0, 6 * 10**15), min_size=1, max_size=8))
    else:
        pool = [t * 1_000_000 for t in range(draw(st.integers(1, 12)))]
    n_f = draw(st.integers(0, 40))
    n_l = draw(st.integers(0, 25))

    def entity(present: bool) -> int:
        return draw(st.integers(0, n_ent - 1)) if present else draw(st.integers(n_ent, n_ent + 2))

    f_ent = [entity(True) for _ in range(n_f)]
    l_ent = [entity(draw(st.booleans()) or draw(st.booleans())) for _ in range(n_l)]
    f_t = [draw(st.sampled_from(pool)) for _ in range(n_f)]
    l_t = [draw(st.one_of(st.sampled_from(pool), st.sampled_from(pool).map(lambda t: t + 1))) for _ in range(n_l)]
    diffs = sorted({abs(a - b) for a in pool for b in pool})
    ttl_us = draw(st.sampled_from(diffs + [d + 1 for d in diffs] + [0]))
    f = [draw(st.one_of(st.just(math.nan), st.floats(-10, 10))) for _ in range(n_f)]
    g = [draw(st.integers(-5, 5)) for _ in range(n_f)]

    def keys(ents: list[int]) -> dict[str, np.ndarray]:
        if key_kind == "int":  # ids spread out: wider sort keys, or sparse ids
            return {"k": np.array(ents, dtype=np.int64) * id_scale}
        if key_kind == "str":
            arr = np.empty(len(ents), dtype=object)
            arr[:] = [f"dev-{e}" for e in ents]
            return {"k": arr}
        return {"k": np.array([e % 2 for e in ents], dtype=np.int64),
                "k2": np.array([f"w{e // 2}" for e in ents], dtype=object)}

    def times(ts: list[int]) -> np.ndarray:
        arr = np.array(ts, dtype=np.int64)
        if time_kind == "int_us":
            return arr
        return arr.astype("datetime64[ns]" if time_kind in NS_KINDS else "datetime64[us]")

    s = np.empty(n_f, dtype=object)
    s[:] = [f"s{i}" for i in range(n_f)]
    ttl: Any = np.timedelta64(ttl_us, "ns") if time_kind in NS_KINDS else timedelta(microseconds=ttl_us)
    features = {**keys(f_ent), "event_timestamp": times(f_t), "f": np.array(f, dtype=np.float64),
                "g": np.array(g, dtype=np.int64), "s": s}
    features["ft"] = features["event_timestamp"].copy()
    labels = {**keys(l_ent), "event_timestamp": times(l_t), "label": np.arange(n_l) % 2}
    return {"labels": labels, "features": features, "keys": [k for k in ("k", "k2") if k in labels],
            "ttl": ttl}


def as_pandas_time(a: np.ndarray) -> np.ndarray:
    return a.astype("datetime64[us]") if a.dtype.kind in "iu" else a


def merge_asof_reference(labels: dict, features: dict, keys: list[str], ttl: Any, names: list[str]) -> dict:
    """pandas.merge_asof per the contract: both sides sorted stably by time, backward,
    tolerance = ttl, exact matches allowed; then back to the labels' order."""
    left = pd.DataFrame({**labels, "event_timestamp": as_pandas_time(labels["event_timestamp"])})
    left["_row"] = np.arange(len(left))
    right = pd.DataFrame({**{k: features[k] for k in keys}, "event_timestamp": as_pandas_time(features["event_timestamp"]),
                          **{n: features[n] for n in names}})
    merged = pd.merge_asof(
        left.sort_values("event_timestamp", kind="stable"),
        right.sort_values("event_timestamp", kind="stable"),
        on="event_timestamp", by=keys, direction="backward", tolerance=pd.Timedelta(ttl),
        allow_exact_matches=True,
    ).sort_values("_row")
    return {n: merged[n].to_numpy() for n in names}


def normalised(values: np.ndarray) -> list[Any]:
    """Missing (NaN, NaT, None) as None; numbers as floats; times as int ticks."""
    out: list[Any] = []
    for v in values.tolist() if values.dtype.kind != "M" else values.astype("datetime64[ns]").view(np.int64).tolist():
        if values.dtype.kind == "M":
            out.append(None if v == np.iinfo(np.int64).min else v)
        elif v is None or (isinstance(v, float) and math.isnan(v)):
            out.append(None)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append(float(v))
        else:
            out.append(v)
    return out


def assert_same_columns(ours: dict, ref: dict, names: list[str]) -> None:
    for name in names:
        assert normalised(np.asarray(ours[name])) == normalised(np.asarray(ref[name])), name


# --- equal to pandas.merge_asof ---------------------------------------------------------------

@SETTINGS
@given(pit_data())
def test_equals_pandas_merge_asof(data: dict[str, Any]) -> None:
    labels, features, keys, ttl = data["labels"], data["features"], data["keys"], data["ttl"]
    ours = pit_join(labels, features, keys=keys, ttl=ttl, feature_names=FEATURES)
    if len(labels["event_timestamp"]) == 0:
        assert all(len(ours[n]) == 0 for n in FEATURES)
        return
    ref = merge_asof_reference(labels, features, keys, ttl, FEATURES)
    assert_same_columns(ours, ref, FEATURES)
    for name, col in labels.items():  # the label columns come back untouched, in order
        assert ours[name] is col
    assert ours["f"].dtype == np.float64


def test_exact_time_and_ttl_edges_and_ties() -> None:
    us = 1_000_000
    features = {
        "device_id": np.array(["a", "a", "a", "b", "b"], dtype=object),
        "event_timestamp": np.array([10 * us, 10 * us, 20 * us, 5 * us, 30 * us]),
        "x": np.array([1.0, 2.0, 3.0, 4.0, 5.0]),
    }
    labels = {
        "device_id": np.array(["a", "a", "a", "b", "b", "c", "a"], dtype=object),
        "event_timestamp": np.array([10 * us, 19 * us, 20 * us, 15 * us, 15 * us + 1, 20 * us, 9 * us]),
    }
    out = pit_join(labels, features, keys=["device_id"], ttl=timedelta(seconds=10), matched_time="matched")
    # at the event time: match; tie at t=10: the later input row (2.0); TTL edge (15 - 5 = 10 s):
    # match; one microsecond past the edge: missing; unknown entity and before any row: missing
    np.testing.assert_array_equal(out["x"], [2.0, 2.0, 3.0, 4.0, np.nan, np.nan, np.nan])
    assert out["matched"].dtype == np.dtype("datetime64[us]")
    assert np.isnat(out["matched"][4]) and out["matched"][0] == np.datetime64(10, "s")


def test_missing_non_float_features_are_none() -> None:
    features = {"k": np.array([1]), "event_timestamp": np.array([5]), "n": np.array([7]),
                "b": np.array([True]), "t": np.array(["2024-01-01"], dtype="datetime64[us]")}
    out = pit_join({"k": np.array([1, 2]), "event_timestamp": np.array([6, 6])}, features, keys=["k"], ttl=None)
    assert out["n"].tolist() == [7, None] and out["b"].tolist() == [True, None]
    assert out["t"][0] == np.datetime64("2024-01-01") and np.isnat(out["t"][1])


def test_no_feature_rows_means_all_missing() -> None:
    features = {"k": np.array([], dtype=np.int64), "event_timestamp": np.array([], dtype=np.int64),
                "x": np.array([], dtype=np.float64), "s": np.array([], dtype=object)}
    out = pit_join({"k": np.array([1, 2]), "event_timestamp": np.array([5, 6])}, features, keys=["k"], ttl=10)
    assert np.isnan(out["x"]).all() and out["s"].tolist() == [None, None]


# --- no future leakage ------------------------------------------------------------------------

@SETTINGS
@given(pit_data(), st.data())
def test_rows_after_a_label_never_change_its_row(data: dict[str, Any], draw: st.DataObject) -> None:
    labels, features, keys, ttl = data["labels"], data["features"], data["keys"], data["ttl"]
    n_l = len(labels["event_timestamp"])
    if n_l == 0:
        return
    ticks = lambda a: a.view(np.int64) if a.dtype.kind == "M" else a  # noqa: E731
    cut = int(ticks(labels["event_timestamp"])[draw.draw(st.integers(0, n_l - 1))])
    before = pit_join(labels, features, keys=keys, ttl=ttl, feature_names=FEATURES)

    # change every value of rows later than the cut, and insert new later rows anywhere
    later = ticks(features["event_timestamp"]) > cut
    changed = {name: col.copy() for name, col in features.items()}
    changed["f"][later] = draw.draw(st.floats(-100, 100))
    changed["g"][later] = 99
    changed["s"][later] = "future"
    n_new = draw.draw(st.integers(1, 5))
    new_t = ticks(features["event_timestamp"]).dtype.type(cut) + np.array(
        [draw.draw(st.integers(1, 10**6)) for _ in range(n_new)])
    rows = {name: [] for name in features}
    for i in range(n_new):
        for name in keys:
            rows[name].append(labels[name][draw.draw(st.integers(0, n_l - 1))])
        rows["event_timestamp"].append(new_t[i])
        rows["f"].append(123.0)
        rows["g"].append(-1)
        rows["s"].append("new")
        rows["ft"].append(new_t[i])
    positions = sorted(draw.draw(st.lists(st.integers(0, len(later)), min_size=n_new, max_size=n_new)))
    perturbed = {}
    for name, col in changed.items():
        extra = np.array(rows[name], dtype=col.dtype) if col.dtype.kind != "M" else \
            np.array(rows[name], dtype=np.int64).view(col.dtype)
        perturbed[name] = np.insert(col, positions, extra)
    after = pit_join(labels, perturbed, keys=keys, ttl=ttl, feature_names=FEATURES)
    upto = ticks(labels["event_timestamp"]) <= cut
    for name in FEATURES:
        assert normalised(before[name][upto]) == normalised(after[name][upto]), name


# --- the online answer at t is the point-in-time answer at t ----------------------------------

@SETTINGS
@given(pit_data(), st.data())
def test_latest_as_of_equals_the_point_in_time_answer(data: dict[str, Any], draw: st.DataObject) -> None:
    features, keys, ttl = data["features"], data["keys"], data["ttl"]
    labels = data["labels"]
    n_l = len(labels["event_timestamp"])
    if n_l == 0:
        return
    t = labels["event_timestamp"][draw.draw(st.integers(0, n_l - 1))]
    ids = {k: labels[k] for k in keys}
    at_t = {**ids, "event_timestamp": np.full(n_l, t, dtype=labels["event_timestamp"].dtype)}
    pit = pit_join(at_t, features, keys=keys, ttl=ttl, feature_names=FEATURES, matched_time="matched")
    online = latest_as_of(features, ids if len(keys) > 1 else ids["k"], t, ttl, keys=keys, feature_names=FEATURES)
    assert_same_columns(online, pit, FEATURES)
    assert normalised(online["event_timestamp"]) == normalised(pit["matched"])


# --- several views: a training set ------------------------------------------------------------

def test_training_set_joins_each_view_with_its_own_keys_and_ttl() -> None:
    device, tester = Entity("device", "device_id"), Entity("tester", "tester_id")
    params = FeatureView("params", [device], [Field("vdd", "float")], ttl=timedelta(days=14), source="s")
    health = FeatureView("health", [tester], [Field("vdd", "float"), Field("alarms", "int")],
                         ttl=timedelta(hours=1), source="s")
    day, hour = 86_400_000_000, 3_600_000_000
    labels = {"device_id": np.array(["d1", "d1", "d2"], dtype=object),
              "tester_id": np.array(["t1", "t1", "t2"], dtype=object),
              "event_timestamp": np.array([20 * day, 40 * day, 20 * day]),
              "label": np.array([1, 0, 1])}
    param_rows = {"device_id": np.array(["d1", "d2"], dtype=object), "event_timestamp": np.array([10 * day, 21 * day]),
                  "vdd": np.array([1.1, 1.2])}
    health_rows = {"tester_id": np.array(["t1", "t2"], dtype=object),
                   "event_timestamp": np.array([20 * day - hour, 20 * day - 2 * hour]),
                   "vdd": np.array([0.9, 0.8]), "alarms": np.array([3, 4])}
    with pytest.raises(ValueError, match="full_feature_names"):
        training_set(labels, [(params, param_rows), (health, health_rows)])
    out = training_set(labels, [(params, param_rows), (health, health_rows)], full_feature_names=True)
    # d1 at day 20: the day-10 row (within 14 days); at day 40: expired; d2's row is later
    np.testing.assert_array_equal(out["params__vdd"], [1.1, np.nan, np.nan])
    # t1's row is exactly one hour (the TTL) old; t2's two hours: expired
    np.testing.assert_array_equal(out["health__vdd"], [0.9, np.nan, np.nan])
    assert out["health__alarms"].tolist() == [3, None, None]
    assert out["label"] is labels["label"]


# --- refusals ---------------------------------------------------------------------------------

def test_bad_inputs_are_refused_with_a_reason() -> None:
    f = {"k": np.array([1]), "event_timestamp": np.array([1]), "x": np.array([1.0])}
    lab = {"k": np.array([1]), "event_timestamp": np.array([1])}
    with pytest.raises(ValueError, match="NaT"):
        pit_join({"k": np.array([1]), "event_timestamp": np.array(["NaT"], dtype="datetime64[us]")}, f,
                 keys=["k"], ttl=None)
    with pytest.raises(KeyError, match="key column"):
        pit_join(lab, f, keys=["device_id"], ttl=None)
    with pytest.raises(TypeError, match="key 'k'"):
        pit_join({"k": np.array(["1"], dtype=object), "event_timestamp": np.array([1])}, f, keys=["k"], ttl=None)
    with pytest.raises(ValueError, match="both"):
        pit_join({**lab, "x": np.array([0.0])}, f, keys=["k"], ttl=None)
    with pytest.raises(TypeError, match="datetime64"):
        pit_join({"k": np.array([1]), "event_timestamp": np.array([1.5])}, f, keys=["k"], ttl=None)
    with pytest.raises(ValueError, match="different lengths"):
        pit_join({"k": np.array([1, 2]), "event_timestamp": np.array([1])}, f, keys=["k"], ttl=None)


# --- the sort underneath ----------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3000), st.integers(0, 62), st.integers(0, 2**32 - 1))
def test_packed_sort_is_a_stable_argsort(n: int, bits: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    max_key = (1 << bits) - 1 if bits else 0
    keys = rng.integers(0, max_key + 1, n, dtype=np.int64) if max_key else np.zeros(n, np.int64)
    if n > 3:
        keys[: n // 3] = keys[0]  # plenty of ties
    order, sorted_keys = _sorted_order(keys, max_key)
    expected = np.argsort(keys, kind="stable")
    np.testing.assert_array_equal(order, expected)
    np.testing.assert_array_equal(sorted_keys, keys[expected])


def test_a_larger_join_equals_pandas() -> None:
    """10^5 feature rows, 2*10^4 labels, 2000 entities, microsecond times over a year."""
    rng = np.random.default_rng(7)
    n_f, n_l, n_e = 100_000, 20_000, 2_000
    year_us = 365 * 86_400 * 10**6
    features = {"device_id": rng.integers(0, n_e, n_f), "event_timestamp": rng.integers(0, year_us, n_f),
                "f": np.where(rng.random(n_f) < 0.05, np.nan, rng.normal(size=n_f)),
                "g": rng.integers(0, 100, n_f), "s": np.array([f"s{i}" for i in range(n_f)], dtype=object)}
    features["ft"] = features["event_timestamp"].copy()
    labels = {"device_id": rng.integers(0, n_e + 100, n_l), "event_timestamp": rng.integers(0, year_us, n_l)}
    labels["event_timestamp"][:100] = features["event_timestamp"][:100]  # exact matches
    labels["device_id"][:100] = features["device_id"][:100]
    ttl = timedelta(days=14)
    ours = pit_join(labels, features, keys=["device_id"], ttl=ttl, feature_names=FEATURES)
    ref = merge_asof_reference(labels, features, ["device_id"], ttl, FEATURES)
    assert_same_columns(ours, ref, FEATURES)
    found = ~np.isnan(np.asarray(normalised(ours["ft"]), dtype=float))
    assert 0.1 < found.mean() < 0.99  # the TTL matters in this data: some found, some expired


# --- keys: exact even when hashes collide ------------------------------------------------------

@pytest.mark.parametrize("kind", ["str", "sparse_int"])
def test_codes_are_exact_even_when_every_hash_collides(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlops.features.pit as pit

    rng = np.random.default_rng(11)
    n_f, n_l = 2_000, 500
    ids = rng.integers(0, 50, n_f)
    label_ids = rng.integers(0, 60, n_l)
    if kind == "str":
        f_keys = np.array([f"dev-{i}" for i in ids], dtype=object)
        l_keys = np.array([f"dev-{i}" for i in label_ids], dtype=object)
    else:  # ids too far apart for offsets: they are hashed
        f_keys, l_keys = ids * 10**12, label_ids * 10**12
    features = {"k": f_keys, "event_timestamp": rng.integers(0, 1000, n_f), "x": rng.normal(size=n_f)}
    labels = {"k": l_keys, "event_timestamp": rng.integers(0, 1000, n_l)}
    expected = merge_asof_reference(labels, features, ["k"], timedelta(microseconds=300), ["x"])
    monkeypatch.setattr(pit, "_hash", lambda v: 7)
    monkeypatch.setattr(pit, "_mix64", lambda v: np.zeros(v.size, dtype=np.uint64))
    ours = pit_join(labels, features, keys=["k"], ttl=timedelta(microseconds=300))
    np.testing.assert_array_equal(ours["x"], expected["x"])


def test_int_keys_held_as_objects_match_int_keys() -> None:
    features = {"k": np.array([1, 2], dtype=object), "event_timestamp": np.array([1, 1]), "x": np.array([1.0, 2.0])}
    out = pit_join({"k": np.array([2, 3]), "event_timestamp": np.array([5, 5])}, features, keys=["k"], ttl=None)
    np.testing.assert_array_equal(out["x"], [2.0, np.nan])
