"""Seeded yield data for the model integration tests: device parametrics (the offline rows of
the ``device_parametrics`` view), final-test labels, and training events for TrainFunction.

A device fails final test with a probability that rises with leakage and falls with maximum
frequency (plus a little of ``p000``); each device has one parametric row at its test time and
a label two hours later. Small on purpose: a model trains in well under a second.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone
from typing import Any

START = datetime(2026, 1, 5, 6, 0, tzinfo=timezone.utc)
FEATURES = ["vdd", "idd", "leakage_na", "fmax_mhz", "p000", "vdd_idd_ratio", "vdd_margin"]
STORED = ["vdd", "idd", "leakage_na", "fmax_mhz", "p000"]


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def device_row(rng: random.Random, device: str, t: datetime) -> dict[str, Any]:
    """One parametric test row of a device."""
    return {
        "device_id": device, "event_timestamp": iso(t),
        "vdd": round(1.2 + rng.gauss(0, 0.04), 4), "idd": round(400 + rng.gauss(0, 35), 2),
        "leakage_na": round(abs(rng.gauss(55, 20)), 2), "fmax_mhz": round(2000 + rng.gauss(0, 90), 1),
        "p000": round(rng.gauss(0, 1), 4),
    }


def fails(rng: random.Random, row: dict[str, Any]) -> int:
    logit = -1.7 + 1.8 * (row["leakage_na"] - 55) / 20 - 1.4 * (row["fmax_mhz"] - 2000) / 90 + 0.4 * row["p000"]
    return int(rng.random() < 1 / (1 + math.exp(-logit)))


def training_event(*, n: int = 400, seed: int = 0, n_estimators: int = 20, missing_policy: str = "impute",
                   model: str = "yield", features: list[str] | None = None) -> dict[str, Any]:
    """A TrainFunction event: label rows and the view's offline rows, joined point-in-time."""
    rng = random.Random(seed)
    rows = {k: [] for k in ["device_id", "event_timestamp", *STORED]}
    labels = {k: [] for k in ["device_id", "event_timestamp", "label", "vdd_setpoint", "tester_id"]}
    for i in range(n):
        device = f"TRAIN-{seed}-{i:04d}"
        t = START + timedelta(minutes=20 * i)
        row = device_row(rng, device, t)
        for key in rows:
            rows[key].append(row[key])
        for key, value in zip(labels, [device, iso(t + timedelta(hours=2)), fails(rng, row), 1.2, f"T{i % 3 + 1}"]):
            labels[key].append(value)
    return {
        "model": model,
        "views": ["device_parametrics"],
        "on_demand": ["vdd_idd_ratio"],
        "features": features or FEATURES,
        "slices": ["tester_id"],
        "labels": labels,
        "feature_rows": {"device_parametrics": rows},
        "config": {"n_estimators": n_estimators, "seed": seed},
        "missing_policy": missing_policy,
        "intended_use": "Rank devices by their risk of failing final test (integration tests).",
        "code_version": "tests",
    }


def explicit_features(seed: int = 1) -> dict[str, float]:
    """Explicit feature values for one device (the on-demand features are computed by serving)."""
    rng = random.Random(seed)
    row = device_row(rng, "X", START)
    return {k: row[k] for k in STORED}
