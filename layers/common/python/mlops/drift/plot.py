"""The PNG of a drift report: per-feature scores and the worst feature's two distributions.

Left panel: each feature's score relative to its threshold (``FeatureDrift.severity``: the
distance over its threshold, or the threshold over the p-value), on a log axis with the
threshold at 1, drifted features in red; the ``MAX_FEATURES`` most severe are shown. Right
panel: the worst feature's reference and current shares per bin (numeric: the baseline's
quantile bins, labelled by their upper edges; categorical and few-valued features: per
value), from the bins the report already holds - no raw data is needed.

matplotlib (PlotLayer) is imported when a plot is drawn, not when this module is, so the
rest of the drift package stays numpy only; the figure is drawn with the Agg canvas and no
pyplot (no global state, safe in threads).
"""

from __future__ import annotations

import io
import math
from typing import Any

from mlops.drift.report import DriftReport, FeatureDrift

MAX_FEATURES = 25
SEVERITY_CAP = 1e6  # p = 0 (or a zero threshold) is drawn at this many times the threshold
DRIFTED, STABLE, REFERENCE, CURRENT = "#c0392b", "#7f8c8d", "#2c7fb8", "#e6550d"


def _severity(f: FeatureDrift) -> float:
    s = f.severity
    return SEVERITY_CAP if not math.isfinite(s) else max(min(s, SEVERITY_CAP), 1.0 / SEVERITY_CAP)


def _shares(counts: list[Any]) -> list[float]:
    total = float(sum(counts))
    return [c / total if total else 0.0 for c in counts]


def _distribution_labels(bins: dict[str, list[Any]]) -> list[str]:
    if "categories" in bins:
        return [str(c) for c in bins["categories"]]
    edges = [float(e) for e in bins.get("edges", [])]
    return [f"<{e:.4g}" for e in edges] + ([f">={edges[-1]:.4g}"] if edges else ["all"])


def render_png(report: DriftReport, *, title: str = "Drift report") -> bytes:
    """The report's figure as PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.3])
    fig.suptitle(title)
    drifted = set(report.drifted_features)
    features = sorted(report.features.values(), key=_severity, reverse=True)[:MAX_FEATURES]
    if not features:
        for ax in (left, right):
            ax.set_axis_off()
        left.text(0.5, 0.5, "no feature could be compared\n(no data in the window?)", ha="center", va="center")
    else:
        names = [f"{f.name} ({f.method})" for f in features][::-1]
        values = [_severity(f) for f in features][::-1]
        colours = [DRIFTED if f.name in drifted else STABLE for f in features][::-1]
        left.barh(range(len(values)), values, color=colours)
        left.set_yticks(range(len(values)), names, fontsize=8)
        left.set_xscale("log")
        left.axvline(1.0, color="black", linestyle="--", linewidth=1)
        left.set_xlabel("score relative to threshold (>= 1: drifted)")
        left.set_title(f"drift share {report.share:.0%} ({report.correction}); "
                       f"{len(drifted)} of {len(report.features)} features drifted", fontsize=10)
        worst = report.features[features[0].name]
        bins = worst.bins
        reference = _shares(bins.get("reference", []))
        current = _shares(bins.get("current", []))
        labels = _distribution_labels(bins)
        xs = list(range(len(reference)))
        right.bar([x - 0.2 for x in xs], reference, width=0.4, color=REFERENCE, label="reference (training)")
        right.bar([x + 0.2 for x in xs], current, width=0.4, color=CURRENT, label="current window")
        step = max(1, math.ceil(len(xs) / 12))
        right.set_xticks(xs[::step], labels[::step], rotation=45, ha="right", fontsize=8)
        right.set_ylabel("share of values")
        right.set_title(f"worst feature: {worst.name} - {worst.method} {worst.score:.3g} "
                        f"(threshold {worst.threshold:g})", fontsize=10)
        right.legend(fontsize=8)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
