"""Streaming detectors: river's detections (river as a test-only reference), batch paths
equal to the scalar ones, and JSON state that resumes exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
from river import drift as river_drift

from mlops.drift import synthetic
from mlops.drift.detectors import ADWIN, DDM, EDDM, KSWIN, PageHinkley
from mlops.drift.detectors import state as detector_state


def numeric_streams(seed: int) -> dict[str, list[float]]:
    rng = np.random.default_rng(seed)
    return {
        "abrupt": synthetic.abrupt(9000, [3000, 6000], [0.8, -1.5], seed=seed).values.tolist(),
        "gradual": synthetic.gradual(8000, [4000], [1.0], width=1500, seed=seed).values.tolist(),
        "incremental": synthetic.incremental(6000, [2000], [2.0], width=800, seed=seed).values.tolist(),
        "integers": np.concatenate([rng.integers(0, 3, 2500), rng.integers(1, 5, 2500)]).astype(float).tolist(),
        "long": (rng.normal(0, 1, 60_000) + np.repeat(rng.normal(0, 0.5, 12), 5000)).tolist(),
    }


def error_streams(seed: int) -> dict[str, list[int]]:
    return {
        "rise": synthetic.bernoulli(8000, [4000], [0.1, 0.3], seed=seed).values.tolist(),
        "steps": synthetic.bernoulli(12_000, [4000, 8000], [0.2, 0.35, 0.1], seed=seed).values.tolist(),
        "half": synthetic.bernoulli(6000, [3000], [0.5, 0.7], seed=seed).values.tolist(),
    }


def river_run(detector, values) -> tuple[list[int], list[int]]:
    drifts, warnings = [], []
    for i, x in enumerate(values):
        detector.update(x)
        if detector.drift_detected:
            drifts.append(i)
        if getattr(detector, "warning_detected", False):
            warnings.append(i)
    return drifts, warnings


def ours_run(detector, values) -> tuple[list[int], list[int]]:
    drifts, warnings = [], []
    for i, x in enumerate(values):
        detector.update(x)
        if detector.drift_detected:
            drifts.append(i)
        if getattr(detector, "warning_detected", False):
            warnings.append(i)
    return drifts, warnings


NUMERIC = [
    ("ADWIN", lambda s: river_drift.ADWIN(), lambda s: ADWIN()),
    ("PageHinkley", lambda s: river_drift.PageHinkley(), lambda s: PageHinkley()),
    ("KSWIN", lambda s: river_drift.KSWIN(seed=s), lambda s: KSWIN(seed=s)),
]
BINARY = [
    ("DDM", lambda s: river_drift.binary.DDM(), lambda s: DDM()),
    ("EDDM", lambda s: river_drift.binary.EDDM(), lambda s: EDDM()),
    ("ADWIN", lambda s: river_drift.ADWIN(), lambda s: ADWIN()),
    ("PageHinkley", lambda s: river_drift.PageHinkley(), lambda s: PageHinkley()),
]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name,make_river,make_ours", NUMERIC, ids=[n for n, _, _ in NUMERIC])
def test_numeric_streams_detect_where_river_does(seed, name, make_river, make_ours) -> None:
    detected = 0
    for stream, values in numeric_streams(seed).items():
        if name == "KSWIN":  # river's KSWIN calls scipy for every value (~1 ms): short slices
            values = values[len(values) // 2 - 700:len(values) // 2 + 300]
        expected = river_run(make_river(seed), values)
        assert ours_run(make_ours(seed), values) == expected, stream
        detected += len(expected[0])
    assert detected > 0


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name,make_river,make_ours", BINARY, ids=[n for n, _, _ in BINARY])
def test_error_streams_detect_and_warn_where_river_does(seed, name, make_river, make_ours) -> None:
    detected = 0
    for stream, values in error_streams(seed).items():
        expected = river_run(make_river(seed), values)
        assert ours_run(make_ours(seed), values) == expected, stream
        detected += len(expected[0])
    assert detected > 0


def test_non_default_parameters_follow_river_too() -> None:
    values = numeric_streams(3)["abrupt"][2000:4500]
    pairs = [(river_drift.ADWIN(delta=0.1, clock=5, max_buckets=3, min_window_length=2, grace_period=40),
              ADWIN(delta=0.1, clock=5, max_buckets=3, min_window_length=2, grace_period=40)),
             (river_drift.PageHinkley(threshold=10, mode="up"), PageHinkley(threshold=10, mode="up")),
             (river_drift.PageHinkley(threshold=10, mode="down"), PageHinkley(threshold=10, mode="down")),
             (river_drift.KSWIN(alpha=0.01, window_size=60, stat_size=20, seed=4),
              KSWIN(alpha=0.01, window_size=60, stat_size=20, seed=4))]
    for r, o in pairs:
        assert ours_run(o, values) == river_run(r, values)


def batch_positions(detector, values: np.ndarray, rng: np.random.Generator) -> tuple[list[int], list[int]]:
    drifts, warnings, pos = [], [], 0
    while pos < len(values):
        k = int(rng.integers(1, 5000))
        d = detector.update_many(values[pos:pos + k])
        drifts += [pos + i for i in d.drifts]
        warnings += [pos + i for i in d.warnings]
        pos += k
    return drifts, warnings


@pytest.mark.parametrize("make", [ADWIN, PageHinkley, DDM, EDDM, lambda: KSWIN(seed=7),
                                  lambda: ADWIN(delta=0.05, clock=7, max_buckets=3, grace_period=3)],
                         ids=["ADWIN", "PageHinkley", "DDM", "EDDM", "KSWIN", "ADWIN-params"])
def test_update_many_equals_update_loop(make) -> None:
    rng = np.random.default_rng(0)
    binary = make().kind in ("DDM", "EDDM")
    for seed in range(3):
        values = np.array(list(error_streams(seed)["steps"]) if binary else numeric_streams(seed)["abrupt"])
        if make().kind == "KSWIN":
            values = values[:4000]
        scalar, batched = make(), make()
        expected = ours_run(scalar, values.tolist())
        assert batch_positions(batched, values, rng) == expected
        assert batched.to_dict() == scalar.to_dict()
        assert batched.n_seen == len(values)


def test_adwin_batch_path_on_long_streams_equals_river() -> None:
    rng = np.random.default_rng(9)
    values = np.concatenate([rng.normal(0, 1, 150_000), rng.normal(0.05, 1, 150_000), rng.normal(0.5, 2, 50_000)])
    expected = river_run(river_drift.ADWIN(), values.tolist())[0]
    assert ADWIN().update_many(values).drifts == expected and len(expected) >= 2


@pytest.mark.parametrize("make", [ADWIN, PageHinkley, DDM, EDDM, lambda: KSWIN(seed=3)],
                         ids=["ADWIN", "PageHinkley", "DDM", "EDDM", "KSWIN"])
def test_state_survives_a_restart_mid_stream(make) -> None:
    binary = make().kind in ("DDM", "EDDM")
    values = error_streams(4)["steps"] if binary else numeric_streams(4)["abrupt"]
    uninterrupted = ours_run(make(), values)
    for cut in (1, 17, len(values) // 2, len(values) - 1):
        first = make()
        head = ours_run(first, values[:cut])
        saved = json.dumps(first.to_dict(), allow_nan=False)  # strict JSON, as DynamoDB/S3 get it
        second = detector_state.load(json.loads(saved))
        tail = ours_run(second, values[cut:])
        shift = lambda xs: [cut + i for i in xs]  # noqa: E731
        assert (head[0] + shift(tail[0]), head[1] + shift(tail[1])) == uninterrupted
        assert second.n_seen == len(values)
    assert uninterrupted[0]


def test_restart_right_after_a_detection_resets_like_river() -> None:
    values = numeric_streams(5)["abrupt"]
    d = PageHinkley()
    first = next(i for i, x in enumerate(values) if d.update(x).drift_detected)
    restored = PageHinkley.from_dict(json.loads(json.dumps(d.to_dict())))
    assert restored.drift_detected
    r = river_drift.PageHinkley()
    for x in values[:first + 1]:
        r.update(x)
    assert river_run(r, values[first + 1:]) == ours_run(restored, values[first + 1:])


def test_version_field_and_registry() -> None:
    d = detector_state.create("ADWIN", delta=0.01)
    s = detector_state.dump(d)
    assert s["version"] == 0 and s["kind"] == "ADWIN" and s["params"]["delta"] == 0.01
    s1 = detector_state.advance(s)
    assert s1["version"] == 1 and s["version"] == 0
    assert detector_state.load(s1).version == 1
    with pytest.raises(ValueError):
        detector_state.create("HDDM")
    with pytest.raises(ValueError):
        DDM.from_dict(s)
    bad = dict(s, format=99)
    with pytest.raises(ValueError):
        detector_state.load(bad)


def test_kswin_state_carries_the_random_generator() -> None:
    values = numeric_streams(6)["gradual"][:3000]
    a = KSWIN(seed=11)
    a.update_many(values[:1234])
    b = KSWIN.from_dict(json.loads(json.dumps(a.to_dict())))
    assert a.update_many(values[1234:]).drifts == b.update_many(values[1234:]).drifts
    assert a._rng.getstate() == b._rng.getstate()


def test_parameter_validation_matches_river() -> None:
    with pytest.raises(ValueError):
        PageHinkley(mode="sideways")
    with pytest.raises(ValueError):
        EDDM(alpha=0.8, beta=0.9)
    with pytest.raises(ValueError):
        KSWIN(window_size=10, stat_size=20)
    with pytest.raises(ValueError):
        KSWIN(alpha=2.0)
