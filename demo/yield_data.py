"""The worked example's data, seeded: weekly batches of tested devices and their outcomes.

Each device belongs to a lot, a wafer, a tester and a fab site. Its parametric test row has
the named measurements of the ``device_parametrics`` view (Vdd, Idd, leakage, Fmax, threshold
voltage, ring oscillator, temperatures, contact resistance; a few missing at random) with
realistic correlations: leakage and Idd rise together with temperature, Fmax falls as Vth
rises. A device fails final test (label 1) with probability

    sigmoid(-3.7 + 1.6 z(leakage) - 1.3 z(fmax) + 0.8 z(contact_res) + 0.5 z(iddq))

where z() standardises against the process means below: a 5-10% fail rate. Outcomes are
known two hours after the test (``device_outcomes`` rows).

Besides the named measurements, each row has the view's block of 100 generic parametrics
``p000..p099``: each loads on one or two of the device's latent factors (leakage, speed,
contact, quiescent current) plus its own noise, with a per-parametric mean and spread, so the
store holds 110 parametric test features per device. The model is trained on the named ones.

Injectable event: a tester calibration shift (data drift), from a given week on, tester T2
reads leakage 60% high, contact resistance 2.5 ohm high and the contact-sensitive generic
channels ``p000..p009`` 1.5 spreads high; the devices themselves do not change, so their true
failure odds stay the same while the model sees shifted inputs.

>>> batch = week(0, devices=50, seed=1)
>>> len(batch.parametrics), len(batch.outcomes), sorted(batch.parametrics[0])[:3]
(50, 50, ['ambient_c', 'contact_res_ohm', 'device_id'])
>>> sum(name in PARAMETRICS for name in batch.parametrics[0])
110
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

START = datetime(2026, 8, 3, 6, 0, tzinfo=timezone.utc)  # a Monday, 13+ weeks before the demo's "now"
TESTERS = ("T1", "T2", "T3", "T4")
SITES = ("F1", "F2")
FEATURES = ["vdd", "idd", "iddq_ua", "leakage_na", "fmax_mhz", "vth_mv", "ring_osc_mhz", "temperature_c",
            "contact_res_ohm", "vdd_idd_ratio", "vdd_margin"]
STORED = [f for f in FEATURES if f not in ("vdd_idd_ratio", "vdd_margin")]
GENERIC = [f"p{i:03d}" for i in range(100)]
PARAMETRICS = STORED + ["ambient_c"] + GENERIC  # every numeric column of device_parametrics
_shape = np.random.default_rng(2026)
_LOADINGS = _shape.normal(0, 1, (4, 100)) * (_shape.random((4, 100)) < 0.4)  # factor -> parametric
_LOADINGS[2, :10] = 1.0  # p000..p009 follow the contact resistance
_MEANS = np.round(_shape.uniform(1, 500, 100), 1)
_SPREADS = _MEANS * _shape.uniform(0.02, 0.1, 100)
CALIBRATION_CHANNELS = GENERIC[:10]


def iso(t: datetime) -> str:
    """ISO-8601 UTC, seconds."""
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Batch:
    """One week: parametric rows, outcome rows, and per device the features a client would send."""

    parametrics: list[dict[str, Any]]
    outcomes: list[dict[str, Any]]


def device(rng: random.Random, device_id: str, t: datetime, tester: str, *, drifted: bool = False) -> dict[str, Any]:
    """One parametric row (with its hidden true label under ``_label``)."""
    temp = rng.gauss(30, 3)
    z_leak, z_fmax, z_res, z_iddq = (rng.gauss(0, 1) for _ in range(4))
    z_leak += 0.3 * (temp - 30) / 3
    vth = 420 + 25 * rng.gauss(0, 1) + 10 * z_fmax * -1
    row = {
        "device_id": device_id, "event_timestamp": iso(t),
        "vdd": round(1.2 + rng.gauss(0, 0.03), 4),
        "idd": round(400 + 30 * z_leak * 0.5 + rng.gauss(0, 20), 2),
        "iddq_ua": round(max(0.0, 50 + 12 * z_iddq), 2),
        "leakage_na": round(max(0.0, 55 + 20 * z_leak), 2),
        "fmax_mhz": round(2000 + 90 * z_fmax, 1),
        "vth_mv": round(vth, 1),
        "ring_osc_mhz": round(850 + 40 * z_fmax + rng.gauss(0, 10), 1),
        "temperature_c": round(temp, 2),
        "ambient_c": round(temp - 5 + rng.gauss(0, 1), 2),
        "contact_res_ohm": round(max(0.0, 2.0 + 0.6 * z_res), 3),
    }
    logit = -3.7 + 1.6 * z_leak - 1.3 * z_fmax + 0.8 * z_res + 0.5 * z_iddq
    row["_label"] = int(rng.random() < 1 / (1 + math.exp(-logit)))
    row["_latent"] = (z_leak, z_fmax, z_res, z_iddq)
    if drifted and tester == "T2":  # the tester reads high; the device is what it was
        row["leakage_na"] = round(row["leakage_na"] * 1.6, 2)
        row["contact_res_ohm"] = round(row["contact_res_ohm"] + 2.5, 3)
    for name in ("iddq_ua", "vth_mv", "ring_osc_mhz"):
        if rng.random() < 0.02:
            row[name] = None  # a missed measurement
    return row


def week(n: int, *, devices: int = 120, seed: int = 7, drift_from: int | None = None) -> Batch:
    """Week ``n`` (0-based from START): ``devices`` devices tested across the week."""
    rng = random.Random(seed * 1000 + n)
    noise = np.random.default_rng(seed * 1000 + n + 500)  # the generic block's own stream
    drifted = drift_from is not None and n >= drift_from
    parametrics, outcomes = [], []
    for i in range(devices):
        t = START + timedelta(weeks=n, minutes=int(i * 7 * 24 * 60 / devices))
        tester = TESTERS[i % len(TESTERS)]
        row = device(rng, f"W{n:02d}-D{i:04d}", t, tester, drifted=drifted)
        label = row.pop("_label")
        z = np.asarray(row.pop("_latent")) @ _LOADINGS
        generic = _MEANS + _SPREADS * (0.6 * z + 0.8 * noise.normal(0, 1, 100))
        if drifted and tester == "T2":
            generic[:10] += 1.5 * _SPREADS[:10]
        row.update(zip(GENERIC, np.round(generic, 3).tolist()))
        parametrics.append(row)
        # both sites run every tester (a tester's drift is not a site's), alternating each week
        outcomes.append({"device_id": row["device_id"], "event_timestamp": iso(t + timedelta(hours=2)),
                         "label": label, "tester_id": tester, "fab_site": SITES[(i // len(TESTERS) + n) % 2], "vdd_setpoint": 1.2})
    return Batch(parametrics, outcomes)


def request_rows(rng: random.Random, n: int, *, drifted: bool = False) -> list[tuple[dict[str, Any], int]]:
    """``n`` live requests (explicit features, request inputs) with their true labels."""
    out = []
    for i in range(n):
        tester = TESTERS[i % len(TESTERS)]
        row = device(rng, "live", START, tester, drifted=drifted)
        label = row.pop("_label")
        row.pop("_latent")
        out.append(({"features": {k: row[k] for k in STORED}, "request": {"vdd_setpoint": 1.2}}, label))
    return out
