"""demo/report.py on small fixed input: the numbers against numpy, the PSI against a hand
computation, and the files (five decodable PNGs that are not blank, an HTML page with the table)."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg

from demo import report

LATENCY = [{"t": 0.5, "version": 1, "ms": 100.0}, {"t": 1.0, "version": 1, "ms": 120.0},
           {"t": 6.0, "version": 1, "ms": 300.0}, {"t": 6.5, "version": 2, "ms": 80.0},
           {"t": 7.0, "version": 2, "ms": 90.0}, {"t": 9.0, "version": 2, "ms": 400.0}]
SUMMARY = {
    "versions": {"1": {"fate": "champion (first model)", "auc": 0.85, "trigger": ["first model"]},
                 "2": {"fate": "promoted", "auc": 0.88, "trigger": ["drift"]},
                 "3": {"fate": "rolled_back", "reasons": ["error_rate"], "trigger": ["manual"]}},
    "canary_v2": {"stages": [
        {"percent": 1.0, "decision": "promote", "stage_counts": {"champion": 495, "challenger": 5},
         "checks": {"error_rate": {"passed": True, "p_value": 0.5}}},
        {"percent": 100.0, "decision": "promote", "stage_counts": {"champion": 0, "challenger": 100}, "checks": {}}]},
    "canary_v3": {"stages": [{"percent": 1.0, "decision": "rollback",
                              "stage_counts": {"champion": 490, "challenger": 10},
                              "checks": {"error_rate": {"passed": False, "p_value": 1e-9}}}]},
    "drift": {"fired": {"week": 14, "reasons": ["drift"],
                        "features": {"contact_res_ohm": {"psi": 0.38, "method": "ks", "score": 0.0}}}},
    "latency_ms": {"1": {"p50": 120.0, "p95": 282.0, "p99": 296.4, "n": 3}},
    "bandit": {"feedback": 200, "probabilities": {"v2": 0.8, "v1": 0.2}},
    "requests_served": 4000, "audit": {"ok": True, "records": 70}, "wall_seconds": 95.2,
}


def test_latency_percentiles_and_windows_match_numpy() -> None:
    per_version = report.latency_percentiles(LATENCY)
    assert list(per_version) == ["1", "2"]
    for version in ("1", "2"):
        ms = [r["ms"] for r in LATENCY if str(r["version"]) == version]
        for q in (50, 95, 99):
            assert per_version[version][f"p{q}"] == pytest.approx(np.percentile(ms, q), abs=0.05)
        assert per_version[version]["n"] == 3
    windows = report.latency_windows(LATENCY, 5.0)
    assert windows["1"] == [(2.5, 110.0, pytest.approx(119.0), pytest.approx(119.8)), (7.5, 300.0, 300.0, 300.0)]
    assert [w[0] for w in windows["2"]] == [7.5]
    assert windows["2"][0][1] == pytest.approx(np.percentile([80, 90, 400], 50))
    with pytest.raises(ValueError):
        report.latency_windows(LATENCY, 0)


def test_psi_by_week_is_the_decile_psi_of_each_week() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(0, 1, 1000)
    same, shifted = rng.normal(0, 1, 500), rng.normal(1.0, 1, 500)
    matrix = report.psi_by_week({"x": ref.tolist() + [None, math.nan]},
                                [{"x": same.tolist()}, {"x": shifted.tolist()}, {"y": [1.0]}])
    edges = np.quantile(ref, np.arange(1, 10) / 10)

    def by_hand(cur: np.ndarray) -> float:
        p = np.histogram(ref, np.concatenate([[-np.inf], edges, [np.inf]]))[0] / len(ref)
        q = np.histogram(cur, np.concatenate([[-np.inf], edges, [np.inf]]))[0] / len(cur)
        q = np.where(q == 0, 1e-4, q)
        return float(np.sum((q - p) * np.log(q / p)))

    assert matrix["x"][0] == pytest.approx(by_hand(same), rel=1e-9)
    assert matrix["x"][1] == pytest.approx(by_hand(shifted), rel=1e-9)
    assert matrix["x"][1] > 0.25 > matrix["x"][0]
    assert math.isnan(matrix["x"][2])  # a week without the feature
    assert report.top_features({"a": [0.1, math.nan], "b": [0.5, 0.0], "c": [0.1, 0.0]}, 2) == ["b", "a"]


def test_key_numbers_name_versions_canary_decisions_drift_latency_and_audit() -> None:
    rows = dict(report.key_numbers(SUMMARY))
    assert rows["v2"] == "promoted, holdout AUC 0.880, started by drift"
    assert rows["v3"] == "rolled_back, started by manual"
    assert rows["canary v3 at 1%"] == "rollback: error_rate FAILED (p=1e-09)"
    assert rows["drift check that fired"] == "week 14: contact_res_ohm PSI 0.38; reasons drift"
    assert rows["latency v1 (ms)"] == "p50 120, p95 282, p99 296.4 over 3 batches"
    assert rows["bandit allocation"] == "v2 80%, v1 20% after 200 feedbacks"
    assert rows["audit chain"] == "intact: 70 records"
    assert report.key_numbers({}) == []


def _pixels(data: bytes) -> np.ndarray:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return mpimg.imread(io.BytesIO(data), format="png")


def test_render_writes_five_nonblank_pngs_and_the_page(tmp_path: Path) -> None:
    series = {"latency": LATENCY,
              "psi": {"weeks": [0, 1, 2], "features": ["a", "b"], "values": [[0.01, 0.02, 0.5], [0.0, 0.01, 0.02]],
                      "drift_week": 2},
              "accuracy": [{"day": 91, "accuracy": 0.9, "n": 100}, {"day": 98, "accuracy": 0.7, "n": 100}],
              "events": [{"day": 98, "label": "drift injected"}],
              "bandit": [{"feedback": 0, "probabilities": {"v2": 0.5, "v1": 0.5}},
                         {"feedback": 50, "probabilities": {"v2": 0.8, "v1": 0.2}}]}
    written = report.render(SUMMARY, json.loads(json.dumps(series)), tmp_path)
    assert sorted(p.name for p in written) == sorted([*report.PLOTS, "index.html"])
    for name in report.PLOTS:
        pixels = _pixels((tmp_path / name).read_bytes())
        assert pixels.shape[0] >= 200 and pixels.shape[1] >= 400
        assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 20  # drawn, not blank
    page = (tmp_path / "index.html").read_text()
    assert all(f'src="{name}"' in page for name in report.PLOTS)
    assert "<th>v2</th><td>promoted, holdout AUC 0.880, started by drift</td>" in page


def test_an_empty_series_still_draws_every_panel(tmp_path: Path) -> None:
    written = report.render({}, {}, tmp_path)
    assert len(written) == 6
    assert all(_pixels((tmp_path / name).read_bytes()).size for name in report.PLOTS)
