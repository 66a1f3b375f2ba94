"""Synthetic prediction-log rows (the `mlops.models.prediction_log.row_of` shape) for the
monitoring tests: seeded, with chosen error, label and latency patterns."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from mlops.models.registry import iso_utc

NOW = datetime(2027, 1, 15, 10, 30, tzinfo=timezone.utc)


def make_rows(n: int, *, version: int = 1, seed: int = 0, hours: float = 12.0, end: datetime = NOW,
              error_rate: float = 0.0, label_rate: float = 0.5, latency_scale: float = 5.0) -> list[dict[str, Any]]:
    """``n`` rows spread uniformly over the ``hours`` before ``end``."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        ts = end - timedelta(seconds=float(rng.uniform(0, hours * 3600)))
        failed = rng.random() < error_rate
        probability = float(rng.random())
        predicted = int(probability >= 0.5)
        label = None
        if not failed and rng.random() < label_rate:
            label = predicted if rng.random() < 0.8 else 1 - predicted
        rows.append({
            "request_id": f"r{len(rows)}", "ts": iso_utc(ts), "model": "yield", "version": version,
            "variant": "champion", "latency_ms": float(rng.gamma(2.0, latency_scale)),
            "probability": None if failed else probability, "predicted_label": None if failed else predicted,
            "label": label, "error": "boom" if failed else None, "inputs": {"x": float(rng.normal())},
        })
    return rows
