"""Per-version aggregates of prediction-log rows, checked against numpy on the same data."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from monitoring_rows import NOW, make_rows

from mlops.features.timestamps import parse_timestamp
from mlops.models.registry import iso_utc
from mlops.monitoring.version_stats import VersionStats, bucket_start, by_bucket, by_version, summarize


def test_summarize_equals_numpy_on_the_same_rows() -> None:
    rows = make_rows(997, seed=1, error_rate=0.03)
    st = summarize(rows)
    latencies = np.array([r["latency_ms"] for r in rows])
    ok = [r for r in rows if not r["error"]]
    labelled = [r for r in ok if r["label"] is not None]
    np.testing.assert_allclose([st.latency_p50, st.latency_p95, st.latency_p99],
                               np.percentile(latencies, [50, 95, 99]), rtol=0, atol=1e-12)
    assert st.n == 997 and st.errors == sum(1 for r in rows if r["error"]) > 0
    assert st.error_rate == st.errors / 997
    assert st.positives == sum(r["predicted_label"] for r in ok)
    assert st.positive_rate == st.positives / len(ok)
    assert st.labelled == len(labelled) and st.correct == sum(r["label"] == r["predicted_label"] for r in labelled)
    assert st.accuracy == pytest.approx(st.correct / st.labelled, abs=0)
    assert st.mean_probability == pytest.approx(np.mean([r["probability"] for r in ok]), abs=1e-12)


def test_undefined_rates_are_none_not_zero() -> None:
    assert summarize([]) == VersionStats(0, 0, None, None, None, None, 0, None, 0, 0, None, None)
    only_errors = summarize([{"version": 1, "ts": iso_utc(NOW), "latency_ms": 3.0, "error": "boom"}])
    assert (only_errors.n, only_errors.errors, only_errors.error_rate) == (1, 1, 1.0)
    assert only_errors.latency_p99 == 3.0  # a failure's latency still counts
    assert only_errors.positive_rate is None and only_errors.accuracy is None


def test_by_version_and_by_bucket_partition_the_rows() -> None:
    rows = make_rows(300, version=1, seed=2) + make_rows(200, version=2, seed=3)
    versions = by_version(rows)
    assert list(versions) == [1, 2] and (versions[1].n, versions[2].n) == (300, 200)
    buckets = by_bucket(rows, 3600)
    assert sum(b.stats.n for b in buckets if b.version == 1) == 300
    for b in buckets:
        inside = [r for r in rows if r["version"] == b.version
                  and b.start <= parse_timestamp(r["ts"]) < b.start + 3600 * 1_000_000]
        assert b.stats == summarize(inside)
        assert b.qps == pytest.approx(len(inside) / 3600)
    starts = [b.start for b in buckets if b.version == 1]
    assert starts == sorted(starts) and all(s % (3600 * 1_000_000) == 0 for s in starts)


def test_bucket_start_aligns_to_the_epoch() -> None:
    assert iso_utc(bucket_start("2027-01-15T10:59:59.999999Z", 3600)) == "2027-01-15T10:00:00.000000Z"
    assert iso_utc(bucket_start(NOW + timedelta(minutes=1), 86400)) == "2027-01-15T00:00:00.000000Z"
    with pytest.raises(ValueError):
        by_bucket([], 0)
