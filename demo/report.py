"""The demo's report: five PNG plots and ``index.html`` from ``summary.json`` and the series the
demo collected while it ran (``series.json``).

Pure: every function takes plain values (no cloud, no clock), so the report can be rebuilt
from the two JSON files (``python -m demo.report reports/demo``) and tested on small input.

The series (all optional; a missing one draws an empty panel that says so)::

    {"latency":  [{"t": seconds since start, "version": 2, "ms": 130.0}, ...],   one per batch and version
     "psi":      {"weeks": [0, 1, ...], "features": ["vdd", ...], "values": [[...per week...], ...],
                  "drift_week": 14},
     "accuracy": [{"day": 91.0, "accuracy": 0.93, "n": 100}, ...],
     "events":   [{"day": 98.0, "label": "drift injected"}, ...],
     "bandit":   [{"feedback": 50, "probabilities": {"champion": 0.6, "previous": 0.4}}, ...]}

The canary splits come from the summary (``canary_v2`` / ``canary_v3`` stages' ``stage_counts``).
"""

from __future__ import annotations

import html
import io
import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "layers" / "common" / "python") not in sys.path:  # mlops, as Lambda's /opt/python
    sys.path.append(str(ROOT / "layers" / "common" / "python"))

from mlops.drift.psi import psi, quantile_edges  # noqa: E402

PLOTS = {
    "latency.png": "Batch latency p50 / p95 / p99 over time, per model version",
    "canary.png": "Traffic split per canary stage",
    "psi_heatmap.png": "Per-feature PSI of each week against the training weeks",
    "accuracy.png": "Accuracy of served predictions per simulated day, with drift and retraining",
    "bandit.png": "Bandit allocation as feedback arrives",
}
PERCENTILES = (50, 95, 99)
PSI_CAP = 0.5  # the heat map's top colour; a week of ~100 devices reads PSI ~0.1 from sampling alone


# ---------------------------------------------------------------------------- numbers
def latency_percentiles(records: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Per version: p50/p95/p99 of the latency records (ms) and how many there were."""
    by_version: dict[str, list[float]] = {}
    for r in records:
        by_version.setdefault(str(r["version"]), []).append(float(r["ms"]))
    return {v: {**{f"p{q}": round(float(np.percentile(ms, q)), 1) for q in PERCENTILES}, "n": len(ms)}
            for v, ms in sorted(by_version.items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else kv[0])}


def latency_windows(records: Sequence[Mapping[str, Any]], width: float) -> dict[str, list[tuple[float, ...]]]:
    """Per version, one ``(window middle, p50, p95, p99)`` per ``width``-second window that has
    records of that version, in time order."""
    if width <= 0:
        raise ValueError("width: must be positive")
    cells: dict[str, dict[int, list[float]]] = {}
    for r in records:
        cells.setdefault(str(r["version"]), {}).setdefault(int(float(r["t"]) // width), []).append(float(r["ms"]))
    return {v: [((k + 0.5) * width, *(float(np.percentile(ms, q)) for q in PERCENTILES))
                for k, ms in sorted(windows.items())] for v, windows in cells.items()}


def psi_by_week(reference: Mapping[str, Sequence[Any]], weeks: Sequence[Mapping[str, Sequence[Any]]],
                bins: int = 10) -> dict[str, list[float]]:
    """PSI of each week's values of each reference feature against the reference, on the
    reference's decile bins (`mlops.drift.psi`, missing values left out); NaN for a week
    without values."""
    out: dict[str, list[float]] = {}
    for name, ref_values in reference.items():
        ref = _finite(ref_values)
        edges = quantile_edges(ref, bins)
        ref_counts = _counts(ref, edges)
        row = []
        for week in weeks:
            cur = _finite(week.get(name, []))
            row.append(float(psi(ref_counts, _counts(cur, edges))) if len(cur) else math.nan)
        out[name] = row
    return out


def _finite(values: Sequence[Any]) -> np.ndarray:
    x = np.array([v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)], dtype=np.float64)
    return x[np.isfinite(x)]


def _counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin ``[e_{i-1}, e_i)``, outer bins open-ended (as `mlops.drift.psi` says)."""
    return np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)


def top_features(matrix: Mapping[str, Sequence[float]], k: int) -> list[str]:
    """The ``k`` features with the largest PSI in any week, largest first (ties by name)."""
    worst = {f: max((v for v in row if not math.isnan(v)), default=0.0) for f, row in matrix.items()}
    return sorted(worst, key=lambda f: (-worst[f], f))[:k]


def key_numbers(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The table of the report: (what, value) rows from the summary."""
    rows: list[tuple[str, str]] = []
    for version, v in summary.get("versions", {}).items():
        extra = f", holdout AUC {v['auc']:.3f}" if "auc" in v else ""
        trigger = f", started by {'+'.join(v['trigger'])}" if v.get("trigger") else ""
        rows.append((f"v{version}", f"{v['fate']}{extra}{trigger}"))
    for name in ("canary_v2", "canary_v3"):
        for s in summary.get(name, {}).get("stages", []):
            checks = ", ".join(f"{c} {'ok' if r.get('passed') else 'FAILED'}"
                               + (f" (p={r['p_value']:.2g})" if r.get("p_value") is not None else "")
                               for c, r in s.get("checks", {}).items())
            rows.append((f"{name.replace('_', ' ')} at {s['percent']:g}%", f"{s.get('decision')}: {checks}"))
    drift = summary.get("drift", {}).get("fired")
    if drift:
        scores = ", ".join(f"{f} PSI {d['psi']:.2f}" for f, d in drift.get("features", {}).items())
        rows.append(("drift check that fired", f"week {drift.get('week')}: {scores}; reasons "
                                               f"{', '.join(drift.get('reasons', []))}"))
    for version, p in summary.get("latency_ms", {}).items():
        rows.append((f"latency v{version} (ms)", f"p50 {p['p50']:g}, p95 {p['p95']:g}, p99 {p['p99']:g} "
                                                 f"over {p['n']} batches"))
    bandit = summary.get("bandit")
    if bandit:
        alloc = ", ".join(f"{k} {v:.0%}" for k, v in bandit.get("probabilities", {}).items())
        rows.append(("bandit allocation", f"{alloc} after {bandit.get('feedback', 0)} feedbacks"))
    if "requests_served" in summary:
        rows.append(("predictions served", str(summary["requests_served"])))
    if "audit" in summary:
        a = summary["audit"]
        rows.append(("audit chain", f"{'intact' if a['ok'] else 'BROKEN'}: {a['records']} records"))
    if "wall_seconds" in summary:
        rows.append(("wall time", f"{summary['wall_seconds']:g} s"))
    return rows


# ---------------------------------------------------------------------------- plots
def _figure(width: float = 8, height: float = 4) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height), dpi=80)


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _empty(ax: Any, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} recorded", ha="center", va="center", transform=ax.transAxes)


def plot_latency(records: Sequence[Mapping[str, Any]], windows_wanted: int = 20) -> bytes:
    fig, ax = _figure()
    span = max((float(r["t"]) for r in records), default=0.0)
    windows = latency_windows(records, max(span / windows_wanted, 1.0)) if records else {}
    styles = dict(zip(PERCENTILES, ("-", "--", ":")))
    for i, (version, points) in enumerate(sorted(windows.items())):
        t = [p[0] for p in points]
        for j, q in enumerate(PERCENTILES):
            ax.plot(t, [p[1 + j] for p in points], styles[q], color=f"C{i}", marker=".",
                    label=f"v{version} p{q}")
    if not windows:
        _empty(ax, "latency")
    ax.set(xlabel="seconds since the demo started", ylabel="batch latency (ms)", yscale="log",
           title=PLOTS["latency.png"])
    if windows:
        ax.legend(fontsize=7, ncol=3)
    return _png(fig)


def plot_canary(summary: Mapping[str, Any]) -> bytes:
    fig, ax = _figure()
    labels, champion, challenger = [], [], []
    for name in ("canary_v2", "canary_v3"):
        for s in summary.get(name, {}).get("stages", []):
            counts = {k: v or 0 for k, v in (s.get("stage_counts") or {}).items()}  # None: not read
            total = (counts.get("champion", 0) + counts.get("challenger", 0)) or 1
            labels.append(f"{name[-2:]} {s['percent']:g}%\n{s.get('decision') or ''}")
            champion.append(100 * counts.get("champion", 0) / total)
            challenger.append(100 * counts.get("challenger", 0) / total)
    if labels:
        x = np.arange(len(labels))
        ax.bar(x, champion, color="#7f8c8d", label="champion")
        ax.bar(x, challenger, bottom=champion, color="#e6550d", label="challenger")
        ax.set_xticks(x, labels, fontsize=7)
        ax.legend(fontsize=8)
    else:
        _empty(ax, "canary stage")
    ax.set(ylabel="% of the stage's predictions", ylim=(0, 100), title=PLOTS["canary.png"])
    return _png(fig)


def plot_psi(series: Mapping[str, Any], k: int = 24) -> bytes:
    fig, ax = _figure(8, 6)
    features = series.get("features") or []
    if features:
        matrix = dict(zip(features, series["values"]))
        shown = top_features(matrix, k)
        values = np.array([matrix[f] for f in shown], dtype=np.float64)
        image = ax.imshow(np.clip(values, 0, PSI_CAP), aspect="auto", cmap="magma_r", vmin=0, vmax=PSI_CAP)
        ax.set_yticks(range(len(shown)), shown, fontsize=6)
        weeks = series["weeks"]
        ax.set_xticks(range(len(weeks)), [str(w) for w in weeks], fontsize=7)
        if series.get("drift_week") in weeks:
            ax.axvline(weeks.index(series["drift_week"]) - 0.5, color="#2c7fb8", lw=2, label="drift injected")
            ax.legend(fontsize=8, loc="lower left")
        fig.colorbar(image, ax=ax, label=f"PSI (clipped at {PSI_CAP:g}; > 0.25 is a major shift)")
        title = f"{PLOTS['psi_heatmap.png']}\n(the {len(shown)} of {len(features)} features that moved most)"
    else:
        _empty(ax, "PSI")
        title = PLOTS["psi_heatmap.png"]
    ax.set(xlabel="week", title=title)
    return _png(fig)


def plot_accuracy(points: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]]) -> bytes:
    fig, ax = _figure()
    if points:
        ax.plot([p["day"] for p in points], [p["accuracy"] for p in points], marker="o", ms=3, color="C0",
                label="accuracy of served predictions")
    else:
        _empty(ax, "accuracy")
    for i, e in enumerate(events):
        ax.axvline(e["day"], color=f"C{i + 1}", ls="--", label=e["label"])
    ax.set(xlabel="simulated day (since the first training week)", ylabel="accuracy", ylim=(0, 1),
           title=PLOTS["accuracy.png"])
    if points or events:
        ax.legend(fontsize=7, loc="lower left")
    return _png(fig)


def plot_bandit(points: Sequence[Mapping[str, Any]]) -> bytes:
    fig, ax = _figure()
    arms = sorted({a for p in points for a in p["probabilities"]})
    if points:
        x = [p["feedback"] for p in points]
        ax.stackplot(x, [[p["probabilities"].get(a, 0.0) for p in points] for a in arms], labels=arms, alpha=0.8)
        ax.legend(fontsize=8, loc="upper left")
    else:
        _empty(ax, "bandit allocation")
    ax.set(xlabel="feedbacks received", ylabel="share of traffic", ylim=(0, 1), title=PLOTS["bandit.png"])
    return _png(fig)


# ---------------------------------------------------------------------------- page
def render_html(summary: Mapping[str, Any]) -> str:
    rows = "\n".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in key_numbers(summary))
    figures = "\n".join(f'<figure><img src="{name}" alt="{html.escape(caption)}">'
                        f"<figcaption>{html.escape(caption)}</figcaption></figure>" for name, caption in PLOTS.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>MLOps demo report</title>
<style>body{{font-family:sans-serif;max-width:960px;margin:2em auto}}table{{border-collapse:collapse}}
th,td{{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:14px}}img{{max-width:100%}}</style>
</head><body>
<h1>MLOps demo report</h1>
<p>What <code>make demo</code> did on the embedded local cloud; numbers from <code>summary.json</code>.</p>
<h2>Key numbers</h2>
<table>
{rows}
</table>
<h2>Plots</h2>
{figures}
</body></html>
"""


def render(summary: Mapping[str, Any], series: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """Write the five PNGs and index.html into ``out_dir``; the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    images = {
        "latency.png": plot_latency(series.get("latency", [])),
        "canary.png": plot_canary(summary),
        "psi_heatmap.png": plot_psi(series.get("psi", {})),
        "accuracy.png": plot_accuracy(series.get("accuracy", []), series.get("events", [])),
        "bandit.png": plot_bandit(series.get("bandit", [])),
    }
    written = []
    for name, data in images.items():
        (out_dir / name).write_bytes(data)
        written.append(out_dir / name)
    (out_dir / "index.html").write_text(render_html(summary))
    return [*written, out_dir / "index.html"]


if __name__ == "__main__":  # rebuild from the JSON files: python -m demo.report [reports/demo]
    where = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "reports" / "demo")
    for path in render(json.loads((where / "summary.json").read_text()),
                       json.loads((where / "series.json").read_text()), where):
        print(path)
