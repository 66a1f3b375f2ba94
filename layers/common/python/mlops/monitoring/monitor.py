"""One monitoring pass over a model's prediction log window: statistics, SLOs, anomalies, data
quality, and the alerts they raise. Pure: rows in, a :class:`MonitoringSummary` out.

Per model version (its rows from the log, :func:`mlops.models.prediction_log.row_of` form):

* the window's :func:`~mlops.monitoring.version_stats.summarize` plus QPS, and the same per
  time bucket (buckets align to the epoch; the bucket holding ``now`` is partial);
* every SLO of the config (:mod:`~mlops.monitoring.slo`);
* k-sigma anomalies (:mod:`~mlops.monitoring.anomaly`) on the per-bucket series of the
  configured metrics, over *complete* buckets only (a partial bucket would look like a
  traffic drop); empty buckets count 0 requests and have no rates;
* data quality of the logged inputs against the version's baseline, when it has one.

Alerts (:class:`~mlops.monitoring.alerts.Alert`):

* ``slo_burn_rate`` for each firing multi-window burn-rate pair (its severity);
* ``slo_breach`` (ticket) for an SLO whose error budget in the window is spent;
* ``anomaly`` (ticket) for an anomalous point in the *last complete* bucket (older points are
  reported, not alerted again);
* ``data_quality`` (ticket) for each null spike and for a flagged-row rate above
  ``max_flagged_rate``.

A condition that lasts raises its alert on every pass (every hour on the schedule), as
burn-rate alerts are meant to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlops.features.timestamps import parse_timestamp
from mlops.models.registry import iso_utc
from mlops.monitoring.alerts import Alert
from mlops.monitoring.anomaly import detect
from mlops.monitoring.config import MonitoringConfig
from mlops.monitoring.data_quality import QualityRanges, aggregate
from mlops.monitoring.slo import evaluate
from mlops.monitoring.version_stats import Row, by_bucket, summarize


@dataclass
class VersionReport:
    """Everything one pass found for one version."""

    version: int
    variants: dict[str, int]
    stats: dict[str, Any]
    qps: float
    buckets: list[dict[str, Any]]
    slos: list[dict[str, Any]]
    anomalies: dict[str, list[dict[str, Any]]]
    data_quality: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "variants": self.variants, "stats": self.stats, "qps": self.qps,
                "buckets": self.buckets, "slos": self.slos, "anomalies": self.anomalies,
                "data_quality": self.data_quality}


@dataclass
class MonitoringSummary:
    """A pass over one model's window."""

    model: str
    start: str
    end: str
    bucket_seconds: int
    versions: list[VersionReport]
    alerts: list[Alert] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "start": self.start, "end": self.end, "bucket_seconds": self.bucket_seconds,
                "versions": [v.to_dict() for v in self.versions], "alerts": [a.to_dict() for a in self.alerts]}


def bucket_starts(start_us: int, end_us: int, seconds: int) -> list[int]:
    """Starts (epoch micros) of every bucket overlapping [start, end)."""
    width = seconds * 1_000_000
    first = start_us - start_us % width
    return list(range(first, end_us, width))


def _series(buckets: Mapping[int, Any], starts: Sequence[int], metric: str) -> list[float | None]:
    out: list[float | None] = []
    for s in starts:
        b = buckets.get(s)
        if b is None:
            out.append(0.0 if metric == "n" else None)
        else:
            value = getattr(b.stats, metric)
            out.append(None if value is None else float(value))
    return out


def monitor_version(model: str, version: int, rows: Sequence[Row], *, start: Any, now: Any, bucket_seconds: int,
                    config: MonitoringConfig, quality: QualityRanges | None = None) -> tuple[VersionReport, list[Alert]]:
    """One version's report and alerts (see the module docstring)."""
    start_us, end_us = parse_timestamp(start), parse_timestamp(now)
    at = iso_utc(end_us)
    stats = summarize(rows)
    variants: dict[str, int] = {}
    for r in rows:
        variants[str(r.get("variant"))] = variants.get(str(r.get("variant")), 0) + 1
    window_s = max((end_us - start_us) / 1e6, 1e-9)
    grouped = {b.start: b for b in by_bucket(rows, bucket_seconds)}
    starts = bucket_starts(start_us, end_us, bucket_seconds)
    buckets = [grouped[s].to_dict() if s in grouped else
               {"version": version, "start": iso_utc(s), "seconds": bucket_seconds, "qps": 0.0, "n": 0}
               for s in starts]
    alerts: list[Alert] = []

    slo_results = evaluate(config.slo_list, rows, at)
    for res in slo_results:
        for w in res.firing:
            alerts.append(Alert("slo_burn_rate", w.severity, model, version,
                                f"{model} v{version}: SLO {res.name} burning {w.long_burn:.1f}x "
                                f"over {w.long // 60} min (> {w.factor}x)",
                                {"slo": res.name, "long_window_s": w.long, "short_window_s": w.short,
                                 "long_burn": w.long_burn, "short_burn": w.short_burn, "factor": w.factor,
                                 "budget_remaining": res.budget_remaining}, at))
        if res.budget_remaining is not None and res.budget_remaining <= 0:
            alerts.append(Alert("slo_breach", "ticket", model, version,
                                f"{model} v{version}: SLO {res.name} error budget spent "
                                f"(compliance {res.compliance:.4f} < objective {res.objective})",
                                {"slo": res.name, "compliance": res.compliance, "objective": res.objective,
                                 "budget_remaining": res.budget_remaining, "bad": res.bad, "units": res.units}, at))

    complete = [s for s in starts if s + bucket_seconds * 1_000_000 <= end_us]
    detector = config.anomaly.detector()
    anomalies: dict[str, list[dict[str, Any]]] = {}
    for metric in config.anomaly.metrics:
        points = detect(_series(grouped, complete, metric), detector)
        found = [{"start": iso_utc(complete[p.index]), **p.to_dict()} for p in points if p.anomaly]
        anomalies[metric] = found
        if points and points[-1].anomaly:
            p = points[-1]
            alerts.append(Alert("anomaly", "ticket", model, version,
                                f"{model} v{version}: {metric} {p.value:.4g} is off its moving average "
                                f"{p.mean:.4g} by more than {config.anomaly.k} sigma",
                                {"metric": metric, "bucket_start": iso_utc(complete[-1]),
                                 "bucket_seconds": bucket_seconds, "value": p.value, "mean": p.mean, "std": p.std,
                                 "z": p.z, "k": config.anomaly.k}, at))

    dq = None
    if quality is not None:
        q = config.data_quality
        window = aggregate(quality, [r.get("inputs") or {} for r in rows if not r.get("error")],
                           null_delta=q.null_delta, null_factor=q.null_factor, min_rows=q.min_rows)
        dq = window.to_dict()
        for f in window.null_spikes:
            alerts.append(Alert("data_quality", "ticket", model, version,
                                f"{model} v{version}: null spike in {f.feature} ({f.null_rate:.1%} vs "
                                f"{f.baseline_null_rate:.1%} in training)", {"problem": "null_spike", **f.to_dict()}, at))
        rate = dq["flagged_rate"]
        if rate is not None and window.rows >= q.min_rows and rate > q.max_flagged_rate:
            alerts.append(Alert("data_quality", "ticket", model, version,
                                f"{model} v{version}: {rate:.1%} of requests have inputs unlike training",
                                {"problem": "flagged_rate", "flagged_rate": rate, "rows": window.rows,
                                 "max_flagged_rate": q.max_flagged_rate}, at))

    report = VersionReport(version, variants, stats.to_dict(), stats.n / window_s, buckets,
                           [r.to_dict() for r in slo_results], anomalies, dq)
    return report, alerts


def monitor(model: str, rows_by_version: Mapping[int, Sequence[Row]], *, start: Any, now: Any, bucket_seconds: int,
            config: MonitoringConfig, quality: Mapping[int, QualityRanges | None] | None = None) -> MonitoringSummary:
    """A pass over every version that has rows in the window, versions ascending."""
    if bucket_seconds <= 0:
        raise ValueError("bucket_seconds must be positive")
    quality = quality or {}
    reports, alerts = [], []
    for version in sorted(rows_by_version):
        rows = rows_by_version[version]
        if not rows:
            continue
        report, raised = monitor_version(model, version, rows, start=start, now=now, bucket_seconds=bucket_seconds,
                                         config=config, quality=quality.get(version))
        reports.append(report)
        alerts.extend(raised)
    return MonitoringSummary(model, iso_utc(parse_timestamp(start)), iso_utc(parse_timestamp(now)), bucket_seconds,
                             reports, alerts)

