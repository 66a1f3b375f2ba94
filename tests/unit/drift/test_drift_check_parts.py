"""The pure parts of the drift check: its request (query strings or schedule input), the
feedback error stream with its watermark, the columns built from logged inputs, and the PNG."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from mlops.api_errors import ApiError
from mlops.drift import Baseline, compare
from mlops.drift.check import current_columns, feature_summary
from mlops.drift.check_request import DriftCheckRequest, method_problems, parse_check_request
from mlops.drift.concept import accuracy, error_batch
from mlops.drift.detectors import DDM
from mlops.drift.plot import render_png


def problems(values: dict) -> dict[str, str]:
    with pytest.raises(ApiError) as caught:
        parse_check_request(values)
    assert caught.value.status == 400 and caught.value.code == "invalid_request"
    return {d["field"]: d["problem"] for d in caught.value.details}


def test_query_strings_and_schedule_inputs_give_the_same_request() -> None:
    query = parse_check_request({"model": "yield", "version": "3", "window_hours": "1.5", "methods": "vdd:psi,tester:kl"})
    schedule = parse_check_request({"model": "yield", "version": 3, "window_hours": 1.5,
                                    "methods": {"vdd": "psi", "tester": "kl"}})
    assert query == schedule == DriftCheckRequest("yield", 3, 1.5, {"vdd": "psi", "tester": "kl"})
    assert parse_check_request({"model": "yield"}) == DriftCheckRequest("yield", None, 24.0, {})


def test_every_bad_field_is_named_at_once() -> None:
    assert problems({"model": "Yield!", "version": "0", "window_hours": "721", "methods": "vdd:bogus",
                     "colour": "red"}) == {
        "model": "must be 1-64 characters of a-z, 0-9, '_' or '-', starting with a letter or digit",
        "colour": "unknown field",
        "version": "expected a positive integer version",
        "window_hours": "expected a number of hours in (0, 720]",
        "methods.vdd": "unknown method 'bogus'; expected one of chisquare, jensenshannon, kl, ks, psi, wasserstein"}
    assert problems({"window_hours": "nan"}) == {"model": "required",
                                                 "window_hours": "expected a number of hours in (0, 720]"}
    assert problems({"model": "yield", "methods": "vdd=psi"}) == {
        "methods": "expected feature:method pairs separated by commas, e.g. vdd:psi,idd:ks"}
    assert problems({"model": "yield", "methods": ["vdd"]}) == {
        "methods": "expected an object of feature -> method, or feature:method pairs"}


def test_overrides_must_fit_the_baseline() -> None:
    base = Baseline.build({"vdd": np.arange(50.0), "tester": np.array(["T1", "T2"] * 25)})
    assert method_problems({"vdd": "psi", "tester": "ks", "nope": "kl"}, base, 4) == {
        "methods.tester": "ks needs a numeric feature; tester is categorical",
        "methods.nope": "not a feature of version 4's baseline"}


def rows_of(n: int, seed: int, error_rate: float, t0: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        label = rng.random() < 0.3
        wrong = rng.random() < error_rate
        out.append({"ts": f"2026-01-05T{(t0 + i) // 3600:02d}:{(t0 + i) // 60 % 60:02d}:{(t0 + i) % 60:02d}.000000Z",
                    "request_id": f"r{t0 + i:06d}", "predicted_label": int(label != wrong), "label": int(label)})
    return out


def test_the_error_stream_feeds_each_labelled_prediction_once_in_time_order() -> None:
    rows = rows_of(3000, 1, 0.1) + rows_of(3000, 2, 0.5, t0=3000)
    random.Random(0).shuffle(rows)  # the log answers in any order
    rows[10]["label"] = None  # not labelled (yet)
    ordered = sorted((r for r in rows if r["label"] is not None), key=lambda r: (r["ts"], r["request_id"]))
    single = DDM()
    expected = single.update_many([float(r["predicted_label"] != r["label"]) for r in ordered])
    # checks at increasing cutoffs over overlapping windows, as hourly checks would run
    detector, watermark, fed, drifts = DDM(), None, 0, []
    for cutoff in ("2026-01-05T00:30:00.000000Z", "2026-01-05T00:30:00.000000Z", "2026-01-05T01:10:00.000000Z",
                   "2026-01-05T02:00:00.000000Z"):
        values, watermark = error_batch(rows, watermark, cutoff)
        drifts += [fed + i for i in detector.update_many(values).drifts]
        fed += len(values)
    assert fed == len(ordered) and drifts == expected.drifts and drifts
    assert detector.to_dict() == single.to_dict()
    assert watermark == [ordered[-1]["ts"], ordered[-1]["request_id"]]
    assert accuracy(rows)[0] == len(ordered)


def test_logged_inputs_become_columns_with_nulls_as_nan() -> None:
    base = Baseline.build({"vdd": np.array([1.0, 2.0, 3.0]), "tester": np.array(["T1", "T2", "T1"])})
    rows = [{"inputs": {"vdd": 1.5, "tester": "T2"}}, {"inputs": {"vdd": None}}, {"inputs": {"tester": "T1", "x": 1}}]
    cols = current_columns(rows, base)
    assert cols["vdd"][0] == 1.5 and math.isnan(cols["vdd"][1]) and math.isnan(cols["vdd"][2])
    assert cols["tester"].tolist() == ["T2", None, "T1"]


def test_the_summary_and_the_png_of_a_report() -> None:
    rng = np.random.default_rng(3)
    base = Baseline.build({"x": rng.normal(size=600), "y": rng.normal(size=600)})
    report = compare(base, {"x": rng.normal(1.0, 1, 300), "y": rng.normal(size=300)})
    summary = feature_summary(report)
    assert summary["x"]["drifted"] is True and summary["y"]["drifted"] is False
    assert summary["x"]["method"] == "ks" and summary["x"]["p_value"] == report.features["x"].score < 1e-10
    assert summary["x"]["psi"] == report.features["x"].metrics["psi"] > 0.2
    png = render_png(report, title="x and y")
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    empty = render_png(compare(base, {}), title="nothing")
    assert empty.startswith(b"\x89PNG")


class FakeLauncher:
    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[tuple] = []
        self.error = error

    def start(self, model, decision, now) -> dict:
        self.calls.append((model, decision, now))
        if self.error is not None:
            raise self.error
        return {"executionArn": "arn:aws:states:us-east-1:123456789012:execution:retraining:x", "name": "x"}


def retraining(launcher: FakeLauncher | None, *, retrain: bool = True, version: int = 3, champion: int | None = 3):
    from datetime import datetime, timezone

    from mlops.drift.check import DriftCheck
    from mlops.rollout.triggers import RetrainingDecision

    check = DriftCheck(None, None, None, None, None, launcher=None if launcher is None else (lambda: launcher))
    decision = RetrainingDecision(retrain, ("drift",) if retrain else (), {})
    return check._retraining("yield", version, champion, decision, datetime(2026, 1, 5, tzinfo=timezone.utc))


def test_a_run_starts_only_when_the_decision_says_so_for_the_champion() -> None:
    from mlops.rollout.lock import LockHeld

    launcher = FakeLauncher()
    started = retraining(launcher)
    assert started["retrain"] is True and started["reasons"] == ["drift"] and started["not_started"] is None
    assert started["started"]["name"] == "x" and [c[0] for c in launcher.calls] == ["yield"]
    quiet = FakeLauncher()
    assert retraining(quiet, retrain=False)["not_started"] == "no trigger holds"
    assert retraining(quiet, version=2, champion=3)["not_started"] == "version 2 is not the champion"
    assert retraining(quiet, champion=None)["not_started"] == "version 3 is not the champion"
    assert quiet.calls == []
    assert retraining(None)["not_started"] == "no retraining launcher configured"
    held = retraining(FakeLauncher(LockHeld("retraining of 'yield' is already running: exec-1")))
    assert held["started"] is None and held["not_started"] == "retraining of 'yield' is already running: exec-1"
    failed = retraining(FakeLauncher(RuntimeError("throttled")))
    assert failed["started"] is None and failed["not_started"] == "launch failed: RuntimeError: throttled"
