"""A monitoring pass over synthetic log rows: the per-version numbers, the alerts each condition
raises (and only those), the shipped config, and the HTML report with its PNG plots."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from monitoring_rows import NOW, make_rows

from mlops.drift.baseline import Baseline
from mlops.models.registry import iso_utc
from mlops.monitoring.config import parse_config
from mlops.monitoring.data_quality import QualityRanges
from mlops.monitoring.monitor import monitor
from mlops.monitoring.report import render_html, render_plots
from mlops.monitoring.version_stats import summarize

ROOT = Path(__file__).resolve().parents[3]
CONFIG = parse_config({
    "slos": [{"kind": "events", "name": "availability", "sli": "availability", "objective": 0.99},
             {"kind": "buckets", "name": "p95", "metric": "latency_p95", "op": "<", "threshold": 50,
              "bucket": "1h", "objective": 0.5}],
    "anomaly": {"k": 4, "warmup": 4, "metrics": ["latency_p95", "error_rate", "n"]},
    "data_quality": {"min_rows": 20, "max_flagged_rate": 0.2},
})


def healthy(version: int = 1, seed: int = 0) -> list[dict]:
    return make_rows(2400, version=version, seed=seed, hours=12)


def test_a_healthy_window_raises_nothing_and_counts_right() -> None:
    rows = {1: healthy(1, 0), 2: make_rows(300, version=2, seed=1, hours=12)}
    out = monitor("yield", rows, start=NOW - timedelta(hours=12), now=NOW, bucket_seconds=3600, config=CONFIG)
    assert out.alerts == []
    assert [v.version for v in out.versions] == [1, 2]
    v1 = out.versions[0]
    assert v1.stats == summarize(rows[1]).to_dict() and v1.variants == {"champion": 2400}
    assert v1.qps == pytest.approx(2400 / (12 * 3600))
    assert len(v1.buckets) == 13  # 10:30 back to 22:30 the day before: 12 whole hours and two partial ones
    assert sum(b["n"] for b in v1.buckets) == 2400
    assert [s["name"] for s in v1.slos] == ["availability", "p95"] and v1.slos[0]["met"] is True
    assert v1.data_quality is None  # no baseline given
    json.dumps(out.to_dict(), allow_nan=False)


def test_each_condition_raises_its_alert() -> None:
    rows = healthy()
    # The last complete hour (09:00-10:00): slow and failing. Errors keep burning to now.
    for r in rows:
        if "2027-01-15T09:00" <= r["ts"] < "2027-01-15T10:00":
            r["latency_ms"] *= 30
    burst = make_rows(200, seed=5, hours=1.5, error_rate=0.5)
    out = monitor("yield", {1: rows + burst}, start=NOW - timedelta(hours=12), now=NOW, bucket_seconds=3600,
                  config=CONFIG)
    kinds = sorted({(a.kind, a.severity) for a in out.alerts})
    assert kinds == [("anomaly", "ticket"), ("slo_breach", "ticket"), ("slo_burn_rate", "page")]
    anomalies = {a.detail["metric"] for a in out.alerts if a.kind == "anomaly"}
    assert anomalies == {"latency_p95", "error_rate", "n"}  # the burst is also a traffic spike
    assert all(a.detail["bucket_start"] == "2027-01-15T09:00:00.000000Z" for a in out.alerts if a.kind == "anomaly")
    burning = [a for a in out.alerts if a.kind == "slo_burn_rate"]
    assert {(a.detail["long_window_s"], a.detail["factor"]) for a in burning} == {(3600, 14.4), (21600, 6.0)}
    assert all(a.detail["long_burn"] > a.detail["factor"] < a.detail["short_burn"] for a in burning)
    breach = [a.detail["slo"] for a in out.alerts if a.kind == "slo_breach"]
    assert breach == ["availability"]  # half the hours are still under 50 ms at p95: p95 SLO holds
    assert all(a.model == "yield" and a.version == 1 and a.at == iso_utc(NOW) for a in out.alerts)


def test_an_old_anomaly_is_reported_but_not_alerted() -> None:
    rows = healthy()
    for r in rows:
        if "2027-01-15T03:00" <= r["ts"] < "2027-01-15T04:00":
            r["latency_ms"] *= 30
    out = monitor("yield", {1: rows}, start=NOW - timedelta(hours=12), now=NOW, bucket_seconds=3600, config=CONFIG)
    assert [p["start"] for p in out.versions[0].anomalies["latency_p95"]] == ["2027-01-15T03:00:00.000000Z"]
    assert not [a for a in out.alerts if a.kind == "anomaly"]


def test_data_quality_alerts_from_the_logged_inputs() -> None:
    rng = np.random.default_rng(0)
    ranges = QualityRanges.from_baseline(Baseline.build({"x": rng.normal(size=2000)}))
    rows = healthy()
    for r in rows[:600]:
        r["inputs"] = {"x": 50.0}  # 25% out of range
    for r in rows[600:900]:
        r["inputs"] = {"x": None}  # 12.5% null, none in training
    for r in rows[900:]:
        r["inputs"] = {"x": 0.0}
    out = monitor("yield", {1: rows}, start=NOW - timedelta(hours=12), now=NOW, bucket_seconds=3600, config=CONFIG,
                  quality={1: ranges})
    dq = out.versions[0].data_quality
    assert dq["rows"] == 2400 and dq["flagged_rows"] == 900 and dq["null_spikes"] == ["x"]
    [feature] = dq["features"]
    assert (feature["out_of_range"], feature["nulls"]) == (600, 300)
    problems = sorted(a.detail["problem"] for a in out.alerts if a.kind == "data_quality")
    assert problems == ["flagged_rate", "null_spike"]


def test_the_shipped_config_parses() -> None:
    config = parse_config(json.loads((ROOT / "functions/monitor/monitoring.json").read_text()))
    assert {s.name for s in config.slos} == {"p95-latency-daily", "availability", "latency-100ms"}
    p95 = next(s for s in config.slos if s.name == "p95-latency-daily")
    assert (p95.metric, p95.op, p95.threshold, p95.bucket, p95.objective) == ("latency_p95", "<", 50, 86400, 0.999)


def test_the_report_embeds_a_png_per_plot() -> None:
    rows = healthy()
    out = monitor("yield", {1: rows, 2: make_rows(100, version=2, seed=3)}, start=NOW - timedelta(hours=12), now=NOW,
                  bucket_seconds=3600, config=CONFIG).to_dict()
    plots = render_plots(out)
    assert set(plots) == {"latency", "traffic", "errors", "outputs"}
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000 for png in plots.values())
    page = render_html(out, plots)
    assert page.startswith("<!doctype html>") and page.count("data:image/png;base64,") == 4
    assert "<h2>SLOs</h2>" in page and "availability" in page and "<td>2400</td>" in page
    empty = monitor("yield", {}, start=NOW - timedelta(hours=1), now=NOW, bucket_seconds=300, config=CONFIG).to_dict()
    assert render_plots(empty) == {}
    assert "No predictions were logged" in render_html(empty, {})
    assert not re.search(r"<script", render_html({**out, "model": "<script>"}, {}))
