"""The static monitoring report: one self-contained HTML page with PNG plots.

:func:`render_plots` draws, per model version over the window's time buckets, the latency
percentiles (p50/p95/p99), the traffic (QPS), the error rate and the predicted-positive rate
and accuracy; anomalous points are circled in red. :func:`render_html` lays out the summary
(per-version statistics, SLOs with budgets and burn rates, data quality, alerts) and embeds
the PNGs as data URIs, so the single file opens anywhere: the local stand-in for the
CloudWatch dashboard the template declares for AWS.

matplotlib (PlotLayer) is imported on first use, through its object-oriented API (no pyplot
global state). Pure otherwise: the caller stores the page.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

PLOTS: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    ("latency", "Latency (ms)", (("latency_p50", ":"), ("latency_p95", "-"), ("latency_p99", "--"))),
    ("traffic", "Requests per second", (("qps", "-"),)),
    ("errors", "Error rate", (("error_rate", "-"),)),
    ("outputs", "Predicted-positive rate (-) and accuracy (--)", (("positive_rate", "-"), ("accuracy", "--"))),
)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _png(figure: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415

    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()


def render_plots(summary: Mapping[str, Any]) -> dict[str, bytes]:
    """PNG bytes per plot name (empty when no version has rows)."""
    versions = summary.get("versions") or []
    if not versions:
        return {}
    from matplotlib.figure import Figure  # noqa: PLC0415

    out: dict[str, bytes] = {}
    for name, title, series in PLOTS:
        figure = Figure(figsize=(8, 3), dpi=90)  # no constrained layout: it doubles the drawing time
        ax = figure.add_subplot()
        for i, report in enumerate(versions):
            color = f"C{i % 10}"
            buckets = report["buckets"]
            times = [_time(b["start"]) for b in buckets]
            for metric, style in series:
                values = [b.get(metric) for b in buckets]
                ys = [float("nan") if v is None else v for v in values]
                ax.plot(times, ys, style, color=color, marker=".", label=f"v{report['version']} {metric}")
                flagged = {a["start"] for a in (report.get("anomalies") or {}).get(metric, [])}
                marks = [(t, y) for t, y, b in zip(times, ys, buckets) if b["start"] in flagged]
                if marks:
                    ax.scatter(*zip(*marks), s=120, facecolors="none", edgecolors="red", linewidths=1.5, zorder=3)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
        ax.tick_params(labelsize=7)
        figure.autofmt_xdate()
        figure.subplots_adjust(left=0.08, right=0.98, top=0.9, bottom=0.22)
        out[name] = _png(figure)
    return out


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = """body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}th{background:#f3f3f3}
.alert{color:#a00}.ok{color:#070}img{display:block;margin:.5em 0}"""


def render_html(summary: Mapping[str, Any], plots: Mapping[str, bytes]) -> str:
    """The page (see the module docstring)."""
    model = html.escape(str(summary["model"]))
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Monitoring: {model}</title>"
             f"<style>{_STYLE}</style></head><body>",
             f"<h1>Monitoring: {model}</h1>",
             f"<p>Window {html.escape(summary['start'])} to {html.escape(summary['end'])}, buckets of "
             f"{summary['bucket_seconds']} s.</p>"]
    versions = summary.get("versions") or []
    if not versions:
        parts.append("<p>No predictions were logged in this window.</p>")
    else:
        stats_rows = [[r["version"], ", ".join(f"{k} {v}" for k, v in r["variants"].items()), r["stats"]["n"], r["qps"],
                       r["stats"]["latency_p50"], r["stats"]["latency_p95"], r["stats"]["latency_p99"],
                       r["stats"]["error_rate"], r["stats"]["positive_rate"], r["stats"]["accuracy"]]
                      for r in versions]
        parts.append("<h2>Versions</h2>" + _table(stats_rows, ["version", "variants", "requests", "QPS", "p50 ms",
                                                              "p95 ms", "p99 ms", "error rate", "positive rate",
                                                              "accuracy"]))
        slo_rows = []
        for r in versions:
            for s in r["slos"]:
                burns = "; ".join(f"{w['long'] // 60}m/{w['short'] // 60}m: {_fmt(w['long_burn'])}/"
                                  f"{_fmt(w['short_burn'])} (>{w['factor']}x{' FIRING' if w['firing'] else ''})"
                                  for w in s["windows"])
                slo_rows.append([r["version"], s["name"], s["objective"], s["compliance"], s["met"],
                                 s["budget_remaining"], s["burn_rate"], burns or "-"])
        if slo_rows:
            parts.append("<h2>SLOs</h2>" + _table(slo_rows, ["version", "SLO", "objective", "compliance", "met",
                                                             "budget remaining", "burn rate", "windows (long/short)"]))
        dq_rows = [[r["version"], f["feature"], f["null_rate"], f["baseline_null_rate"], f["out_of_range"],
                    f["unseen"], f["null_spike"]]
                   for r in versions if r.get("data_quality") for f in r["data_quality"]["features"]]
        if dq_rows:
            parts.append("<h2>Data quality</h2>" + _table(dq_rows, ["version", "feature", "null rate",
                                                                    "training null rate", "out of range", "unseen",
                                                                    "null spike"]))
    alerts = summary.get("alerts") or []
    parts.append("<h2>Alerts</h2>")
    parts.append(_table([[a["severity"], a["kind"], a["version"], a["title"]] for a in alerts],
                        ["severity", "kind", "version", "alert"]) if alerts else "<p class='ok'>None.</p>")
    if plots:
        parts.append("<h2>Over time</h2>")
        for name, png in plots.items():
            data = base64.b64encode(png).decode("ascii")
            parts.append(f"<img alt='{html.escape(name)}' src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    return "\n".join(parts)
