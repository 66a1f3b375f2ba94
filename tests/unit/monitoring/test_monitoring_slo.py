"""SLOs: error budgets, burn rates and the SRE workbook's multi-window alerts, against numbers
worked out by hand; bucket SLOs against numpy; config validation naming the field."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest
from monitoring_rows import NOW

from mlops.models.registry import iso_utc
from mlops.monitoring.config import parse_config
from mlops.monitoring.slo import BucketSLO, EventSLO, burn_rate, duration_seconds, evaluate, parse_slos


def at(t: datetime, n: int, errors: int = 0, latency: float = 5.0) -> list[dict]:
    return [{"version": 1, "ts": iso_utc(t), "latency_ms": latency, "predicted_label": 0,
             "error": "boom" if i < errors else None} for i in range(n)]


AVAILABILITY = parse_slos([{"kind": "events", "name": "availability", "sli": "availability", "objective": 0.99}])[0]


def test_burn_rates_per_window_as_worked_by_hand() -> None:
    rows = (at(NOW - timedelta(minutes=1), 10, errors=2)       # 5m, 30m, 1h, 6h
            + at(NOW - timedelta(minutes=5), 5)                # exactly 5 min old: not in the 5m window
            + at(NOW - timedelta(minutes=45), 85, errors=1)    # 1h, 6h
            + at(NOW - timedelta(hours=3), 400))               # 6h only
    [res] = evaluate([AVAILABILITY], rows, NOW)
    one_hour, six_hours = res.windows
    # 5m: 2 bad of 10 -> 0.2 / 0.01 = 20; 1h: 3 of 100 -> 3.0; 30m: 2 of 15 -> 13.33; 6h: 3 of 500 -> 0.6
    assert (one_hour.short_requests, one_hour.long_requests) == (10, 100)
    assert one_hour.short_burn == pytest.approx(20.0) and one_hour.long_burn == pytest.approx(3.0)
    assert (six_hours.short_requests, six_hours.long_requests) == (15, 500)
    assert six_hours.short_burn == pytest.approx(2 / 15 / 0.01) and six_hours.long_burn == pytest.approx(0.6)
    assert not one_hour.firing and not six_hours.firing  # the short window alone never pages
    assert (res.units, res.bad, res.good) == (500, 3, 497)
    assert res.compliance == pytest.approx(0.994) and res.met is True
    assert res.budget_consumed == pytest.approx(0.6) and res.budget_remaining == pytest.approx(0.4)


def test_the_fast_pair_pages_when_both_windows_burn() -> None:
    rows = (at(NOW - timedelta(minutes=2), 30, errors=22)
            + at(NOW - timedelta(minutes=45), 90, errors=1)
            + at(NOW - timedelta(hours=3), 400))
    [res] = evaluate([AVAILABILITY], rows, NOW)
    one_hour, six_hours = res.windows
    assert one_hour.short_burn == pytest.approx(22 / 30 / 0.01)    # 73.3 > 14.4
    assert one_hour.long_burn == pytest.approx(23 / 120 / 0.01)    # 19.2 > 14.4
    assert one_hour.firing and one_hour.severity == "page"
    assert six_hours.long_burn == pytest.approx(23 / 520 / 0.01)   # 4.4 < 6
    assert not six_hours.firing
    assert [w.long for w in res.firing] == [3600]
    assert res.budget_remaining == pytest.approx(1 - 23 / 520 / 0.01) and res.met is False


def test_the_slow_pair_and_min_requests() -> None:
    slo = EventSLO(kind="events", name="a", sli="availability", objective=0.999, min_requests=20)
    rows = at(NOW - timedelta(minutes=10), 100, errors=1) + at(NOW - timedelta(hours=5), 900, errors=7)
    [res] = evaluate([slo], rows, NOW)
    one_hour, six_hours = res.windows
    assert one_hour.short_requests == 0 and one_hour.short_burn is None and not one_hour.firing
    assert six_hours.short_burn == pytest.approx(1 / 100 / 0.001)  # 10 > 6
    assert six_hours.long_burn == pytest.approx(8 / 1000 / 0.001)  # 8 > 6
    assert six_hours.firing
    few = evaluate([slo], at(NOW - timedelta(minutes=1), 5, errors=5), NOW)[0]
    assert all(w.long_burn is None and not w.firing for w in few.windows)  # under min_requests


def test_latency_sli_counts_slow_or_failed_requests_as_bad() -> None:
    slo = EventSLO(kind="events", name="fast", sli="latency", latency_ms=100, objective=0.9)
    rows = at(NOW, 6, latency=20) + at(NOW, 2, latency=100) + at(NOW, 1, latency=101) + at(NOW, 1, errors=1)
    rows.append({"version": 1, "ts": iso_utc(NOW), "latency_ms": None, "error": None})  # not judged
    [res] = evaluate([slo], rows, NOW)
    assert (res.units, res.good, res.bad) == (10, 8, 2)
    assert res.burn_rate == pytest.approx(0.2 / 0.1)


def test_bucket_slo_judges_each_day_like_numpy() -> None:
    rng = np.random.default_rng(4)
    days = [NOW - timedelta(days=d) for d in (2, 1, 0)]
    rows = []
    latencies = {}
    for d, scale in zip(days, (3.0, 40.0, 3.0)):
        values = rng.gamma(2.0, scale, size=200)
        latencies[d.date()] = values
        rows += [{"version": 1, "ts": iso_utc(d.replace(hour=0, minute=30) + timedelta(seconds=i)),
                  "latency_ms": float(v), "predicted_label": 1, "error": None} for i, v in enumerate(values)]
    slo = BucketSLO(kind="buckets", name="p95", metric="latency_p95", op="<", threshold=50, bucket="1d",
                    objective=0.9)
    [res] = evaluate([slo], rows, NOW)
    bad_day = days[1].date()
    assert (res.units, res.good, res.bad) == (3, 2, 1)
    assert res.bad_buckets == [{"start": f"{bad_day.isoformat()}T00:00:00.000000Z",
                                "value": pytest.approx(float(np.percentile(latencies[bad_day], 95)), abs=1e-12)}]
    assert res.compliance == pytest.approx(2 / 3) and res.met is False
    assert res.budget_consumed == pytest.approx((1 / 3) / 0.1)
    strict = BucketSLO(kind="buckets", name="p95", metric="latency_p95", op="<", threshold=50, bucket="1d",
                       objective=0.9, min_requests=201)
    assert evaluate([strict], rows, NOW)[0].units == 0 and evaluate([strict], rows, NOW)[0].met is None


def test_burn_rate_and_durations() -> None:
    assert burn_rate(0, 0, 0.99) is None
    assert burn_rate(1, 1000, 0.999) == pytest.approx(1.0)
    assert [duration_seconds(v) for v in ("30s", "5m", "1h", "1d", "1.5h", 90)] == [30, 300, 3600, 86400, 5400, 90]
    for bad in ("1w", "", "5", True, 0, 0.5, "-1h"):
        with pytest.raises(ValueError):
            duration_seconds(bad)


@pytest.mark.parametrize(("config", "message"), [
    ({"slos": [{"kind": "events", "name": "a", "sli": "availability", "objective": 1}]},
     r"slos\.0\.events\.objective: Input should be less than 1"),
    ({"slos": [{"kind": "events", "name": "a", "sli": "latency", "objective": 0.9}]}, "needs latency_ms"),
    ({"slos": [{"kind": "buckets", "name": "a", "metric": "latency_p42", "op": "<", "threshold": 1,
                "objective": 0.9}]}, r"slos\.0\.buckets\.metric"),
    ({"slos": [{"kind": "events", "name": "a", "sli": "availability", "objective": 0.9,
                "burn_windows": [{"long": "5m", "short": "1h", "factor": 2}]}]}, "short window must be shorter"),
    ({"slos": [{"kind": "events", "name": "a", "sli": "availability", "objective": 0.9}] * 2}, "unique"),
    ({"anomaly": {"k": 0}}, r"anomaly\.k"),
    ({"anomaly": {"metrics": ["nope"]}}, r"anomaly\.metrics\.0"),
    ({"surprise": 1}, "surprise"),
])
def test_config_mistakes_name_the_field(config: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_config(config)


def test_model_sections_replace_the_defaults() -> None:
    config = parse_config({
        "slos": [{"kind": "events", "name": "a", "sli": "availability", "objective": 0.99}],
        "anomaly": {"k": 4},
        "models": {"yield": {"slos": [{"kind": "events", "name": "b", "sli": "availability", "objective": 0.9}]}},
    })
    assert [s.name for s in config.for_model("yield").slos] == ["b"]
    assert config.for_model("yield").anomaly.k == 4  # not overridden
    assert [s.name for s in config.for_model("other").slos] == ["a"]
