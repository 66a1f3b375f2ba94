"""Data quality at serving: per-request flags against a baseline built from training columns,
and window aggregation with null spikes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlops.drift.baseline import Baseline
from mlops.monitoring.data_quality import QualityRanges, RequestQuality, aggregate


@pytest.fixture(scope="module")
def baseline() -> Baseline:
    rng = np.random.default_rng(0)
    n = 1000
    leakage = rng.normal(55, 20, size=n)
    leakage[:50] = np.nan  # 5% null in training
    return Baseline.build({
        "vdd": rng.normal(1.2, 0.04, size=n),
        "leakage_na": leakage,
        "tester": rng.choice([1.0, 2.0, 3.0], size=n),        # few values: categorical
        "site": rng.choice(["fab1", "fab2"], size=n),           # categorical
    })


@pytest.fixture(scope="module")
def ranges(baseline: Baseline) -> QualityRanges:
    return QualityRanges.from_baseline(baseline, features=["vdd", "leakage_na", "tester", "site", "not_in_baseline"])


def test_ranges_come_from_the_baseline(baseline: Baseline, ranges: QualityRanges) -> None:
    assert ranges.features == ("vdd", "leakage_na", "tester", "site")
    vdd, leakage = baseline.features["vdd"], baseline.features["leakage_na"]
    assert ranges.numeric == (("vdd", vdd.min, vdd.max, vdd.min, vdd.max),
                              ("leakage_na", leakage.min, leakage.max, leakage.min, leakage.max))
    assert ranges.categories == {"tester": frozenset({"1", "2", "3"}), "site": frozenset({"fab1", "fab2"})}
    assert ranges.null_rates["leakage_na"] == pytest.approx(0.05) and ranges.null_rates["vdd"] == 0.0


def test_each_problem_is_flagged(baseline: Baseline, ranges: QualityRanges) -> None:
    hi = baseline.features["vdd"].max
    assert not ranges.check({"vdd": 1.2, "leakage_na": 50.0, "tester": 2, "site": "fab1"})
    assert not ranges.check({"vdd": hi, "leakage_na": 50.0, "tester": 2.0, "site": "fab2"})  # the max is in range
    flags = ranges.check({"vdd": hi + 1e-9, "leakage_na": None, "tester": 4, "site": "fab9"})
    assert flags == RequestQuality(nulls=("leakage_na",), out_of_range=(("vdd", hi + 1e-9, baseline.features["vdd"].min, hi),),
                                   unseen=(("tester", 4), ("site", "fab9")))
    assert flags.to_log() == {"null": ["leakage_na"], "out_of_range": ["vdd"], "unseen": ["tester", "site"]}
    warning = flags.warning()
    assert warning["code"] == "data_quality" and warning["nulls"] == ["leakage_na"]
    assert warning["out_of_range"][0]["feature"] == "vdd" and "vdd" in warning["message"]
    assert ranges.check({"vdd": "1.2", "leakage_na": "high"}).out_of_range == ()  # text: not a number, not flagged
    assert ranges.check({"vdd": "9", "leakage_na": 50.0}).out_of_range[0][:2] == ("vdd", 9.0)
    missing = ranges.check({"vdd": math.nan})  # NaN and absent both count as null
    assert missing.nulls == ("vdd", "leakage_na", "tester", "site") and not missing.out_of_range


def test_margin_widens_the_range(baseline: Baseline) -> None:
    f = baseline.features["vdd"]
    wide = QualityRanges.from_baseline(baseline, margin=0.1)
    assert not wide.check({"vdd": f.max + 0.05 * (f.max - f.min)}).out_of_range
    assert wide.check({"vdd": f.max + 0.11 * (f.max - f.min)}).out_of_range
    with pytest.raises(ValueError):
        QualityRanges.from_baseline(baseline, margin=-1)


def test_aggregation_counts_flags_and_finds_null_spikes(ranges: QualityRanges) -> None:
    rows = ([{"vdd": 1.2, "leakage_na": None, "tester": 1, "site": "fab1"}] * 30      # 30% null vs 5%
            + [{"vdd": 9.0, "leakage_na": 40.0, "tester": 1, "site": "fab1"}] * 10  # out of range
            + [{"vdd": 1.2, "leakage_na": 40.0, "tester": 7, "site": "fab1"}] * 5   # unseen
            + [{"vdd": 1.2, "leakage_na": 40.0, "tester": 2, "site": "fab2"}] * 55)
    window = aggregate(ranges, rows)
    by = {f.feature: f for f in window.features}
    assert (window.rows, window.flagged_rows) == (100, 45)
    assert (by["leakage_na"].nulls, by["leakage_na"].null_rate, by["leakage_na"].null_spike) == (30, 0.3, True)
    assert by["vdd"].out_of_range == 10 and by["tester"].unseen == 5 and not by["vdd"].null_spike
    assert window.to_dict()["null_spikes"] == ["leakage_na"] and window.to_dict()["flagged_rate"] == 0.45
    # Too few rows, or a rise within the allowed delta, is not a spike.
    assert not aggregate(ranges, rows[:10], min_rows=20).null_spikes
    ok = {"vdd": 1.2, "tester": 1, "site": "fab1"}
    slight = [{**ok, "leakage_na": None}] * 8 + [{**ok, "leakage_na": 1.0}] * 92  # 8% vs 5%
    assert not aggregate(ranges, slight).null_spikes
    assert aggregate(ranges, slight, null_delta=0.01, null_factor=1.5).null_spikes
