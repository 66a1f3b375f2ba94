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

Three injectable events, each off by default (without them every seed gives the same rows as
before the events existed), each from a given week on:

- Tester calibration shift (data drift), ``drift_from=w``: tester T2 reads leakage 60% high,
  contact resistance 2.5 ohm high and the contact-sensitive generic channels ``p000..p009``
  1.5 spreads high; the devices themselves do not change, so their true failure odds stay the
  same while the model sees shifted inputs. A monitor sees feature drift on those columns (a
  quarter of the rows move); accuracy suffers only through the shifted inputs.
- Process change (concept drift), ``process_change_from=w``: a new process step makes contact
  resistance matter much more and leakage much less; the true label is drawn from

      sigmoid(-4.0 + 0.4 z(leakage) - 1.3 z(fmax) + 2.4 z(contact_res) + 0.5 z(iddq))

  (product P2: its weights changed the same way, see ``PROCESS_CHANGE``). Every input is drawn
  exactly as before, so feature drift checks see nothing, a model trained before the change ranks
  devices worse (AUC ~0.90 to ~0.79) and the fail rate stays about the same: only outcome
  (label) monitoring catches it.
- Seasonal product transition, ``transition=(start, end)``: the mix moves from product P1 to
  P2, a faster low-voltage part (Vdd 1.0 V, Fmax ~2400 MHz, lower Vth, Idd and leakage, its
  generic parametrics' means 0.5-1.5 standard deviations off P1's), linearly: P2's share is
  ``product_share(n, (start, end))`` = 0 up to week ``start``, (n - start) / (end - start)
  inside, 1 from week ``end``.
  P2 fails with its own function and base rate (speed matters more, leakage less; ~11%), and
  its outcome rows carry its test program's 1.0 V set point.
  Data drift fires on the named parametrics, gradually; the rows keep the views' columns (the
  product is not ingested): ``Batch.products`` says which product each row is.

>>> batch = week(0, devices=50, seed=1)
>>> len(batch.parametrics), len(batch.outcomes), sorted(batch.parametrics[0])[:3]
(50, 50, ['ambient_c', 'contact_res_ohm', 'device_id'])
>>> sum(name in PARAMETRICS for name in batch.parametrics[0])
110
>>> [product_share(n, (4, 8)) for n in (3, 4, 5, 8, 9)]
[0.0, 0.0, 0.25, 1.0, 1.0]
>>> week(6, devices=400, transition=(4, 8)).products.count("P2"), set(week(6, devices=10).products)
(206, {'P1'})
>>> [r["vdd"] for r in week(9, devices=3, transition=(4, 8)).parametrics]  # all P2 now: ~1.0 V
[1.0306, 1.0483, 1.0067]
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

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


class Product(NamedTuple):
    """A product's parametric means and its failure odds: the label is 1 with probability
    sigmoid(fail[0] + fail[1] z(leakage) + fail[2] z(fmax) + fail[3] z(contact_res) + fail[4] z(iddq))."""

    vdd: float
    idd: float
    leakage_na: float
    leakage_sd: float
    fmax_mhz: float
    vth_mv: float
    ring_osc_mhz: float
    fail: tuple[float, float, float, float, float]
    generic_means: np.ndarray


_SDS = _SPREADS * np.sqrt(0.36 * (_LOADINGS ** 2).sum(axis=0) + 0.64)  # each generic column's sd
_P2_OFFSETS = np.random.default_rng(2027).uniform(0.5, 1.5, 100) * np.resize([1, -1], 100) * _SDS
PRODUCTS: dict[str, Product] = {
    "P1": Product(1.2, 400, 55, 20, 2000, 420, 850, (-3.7, 1.6, -1.3, 0.8, 0.5), _MEANS),
    # faster, lower-voltage part: speed decides more of its failures, leakage less
    "P2": Product(1.0, 330, 35, 15, 2400, 380, 1010, (-3.6, 0.8, -1.9, 0.8, 0.5),
                  np.round(_MEANS + _P2_OFFSETS, 1)),
}
#: after the process change: intercept, and factors on the leakage and contact-resistance weights
PROCESS_CHANGE = (-0.3, 0.25, 3.0)


def iso(t: datetime) -> str:
    """ISO-8601 UTC, seconds."""
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def product_share(n: int, transition: tuple[int, int] | None) -> float:
    """P2's share of week ``n``'s devices: 0 before ``start``, linear to 1 at ``end``."""
    if transition is None:
        return 0.0
    start, end = transition
    if not start < end:
        raise ValueError(f"transition must be (start, end) with start < end, got {transition}")
    return min(1.0, max(0.0, (n - start) / (end - start)))


def fail_weights(product: str = "P1", *, process_changed: bool = False) -> tuple[float, ...]:
    """The failure function's (intercept, leakage, fmax, contact, iddq) weights in effect."""
    b0, w_leak, w_fmax, w_res, w_iddq = PRODUCTS[product].fail
    if process_changed:
        shift, leak_factor, res_factor = PROCESS_CHANGE
        return (b0 + shift, w_leak * leak_factor, w_fmax, w_res * res_factor, w_iddq)
    return (b0, w_leak, w_fmax, w_res, w_iddq)


@dataclass
class Batch:
    """One week: parametric rows, outcome rows, and which product each device is (not ingested:
    the rows keep the feature views' columns)."""

    parametrics: list[dict[str, Any]]
    outcomes: list[dict[str, Any]]
    products: list[str] = field(default_factory=list)


def device(rng: random.Random, device_id: str, t: datetime, tester: str, *, drifted: bool = False,
           process_changed: bool = False, product: str = "P1") -> dict[str, Any]:
    """One parametric row (with its hidden true label under ``_label``)."""
    p = PRODUCTS[product]
    temp = rng.gauss(30, 3)
    z_leak, z_fmax, z_res, z_iddq = (rng.gauss(0, 1) for _ in range(4))
    z_leak += 0.3 * (temp - 30) / 3
    vth = p.vth_mv + 25 * rng.gauss(0, 1) + 10 * z_fmax * -1
    row = {
        "device_id": device_id, "event_timestamp": iso(t),
        "vdd": round(p.vdd + rng.gauss(0, 0.03), 4),
        "idd": round(p.idd + 30 * z_leak * 0.5 + rng.gauss(0, 20), 2),
        "iddq_ua": round(max(0.0, 50 + 12 * z_iddq), 2),
        "leakage_na": round(max(0.0, p.leakage_na + p.leakage_sd * z_leak), 2),
        "fmax_mhz": round(p.fmax_mhz + 90 * z_fmax, 1),
        "vth_mv": round(vth, 1),
        "ring_osc_mhz": round(p.ring_osc_mhz + 40 * z_fmax + rng.gauss(0, 10), 1),
        "temperature_c": round(temp, 2),
        "ambient_c": round(temp - 5 + rng.gauss(0, 1), 2),
        "contact_res_ohm": round(max(0.0, 2.0 + 0.6 * z_res), 3),
    }
    b0, w_leak, w_fmax, w_res, w_iddq = fail_weights(product, process_changed=process_changed)
    logit = b0 + w_leak * z_leak + w_fmax * z_fmax + w_res * z_res + w_iddq * z_iddq
    row["_label"] = int(rng.random() < 1 / (1 + math.exp(-logit)))
    row["_latent"] = (z_leak, z_fmax, z_res, z_iddq)
    if drifted and tester == "T2":  # the tester reads high; the device is what it was
        row["leakage_na"] = round(row["leakage_na"] * 1.6, 2)
        row["contact_res_ohm"] = round(row["contact_res_ohm"] + 2.5, 3)
    for name in ("iddq_ua", "vth_mv", "ring_osc_mhz"):
        if rng.random() < 0.02:
            row[name] = None  # a missed measurement
    return row


def week(n: int, *, devices: int = 120, seed: int = 7, drift_from: int | None = None,
         process_change_from: int | None = None, transition: tuple[int, int] | None = None) -> Batch:
    """Week ``n`` (0-based from START): ``devices`` devices tested across the week; each event
    (see the module docstring) is on from its week."""
    rng = random.Random(seed * 1000 + n)
    noise = np.random.default_rng(seed * 1000 + n + 500)  # the generic block's own stream
    mix = random.Random(seed * 1000 + n + 900)  # which product each device is: its own stream
    drifted = drift_from is not None and n >= drift_from
    changed = process_change_from is not None and n >= process_change_from
    share = product_share(n, transition)
    parametrics, outcomes, products = [], [], []
    for i in range(devices):
        t = START + timedelta(weeks=n, minutes=int(i * 7 * 24 * 60 / devices))
        tester = TESTERS[i % len(TESTERS)]
        product = "P2" if share > 0 and mix.random() < share else "P1"
        row = device(rng, f"W{n:02d}-D{i:04d}", t, tester, drifted=drifted, process_changed=changed, product=product)
        label = row.pop("_label")
        z = np.asarray(row.pop("_latent")) @ _LOADINGS
        generic = PRODUCTS[product].generic_means + _SPREADS * (0.6 * z + 0.8 * noise.normal(0, 1, 100))
        if drifted and tester == "T2":
            generic[:10] += 1.5 * _SPREADS[:10]
        row.update(zip(GENERIC, np.round(generic, 3).tolist()))
        parametrics.append(row)
        products.append(product)
        # both sites run every tester (a tester's drift is not a site's), alternating each week
        outcomes.append({"device_id": row["device_id"], "event_timestamp": iso(t + timedelta(hours=2)),
                         "label": label, "tester_id": tester, "fab_site": SITES[(i // len(TESTERS) + n) % 2],
                         "vdd_setpoint": PRODUCTS[product].vdd})
    return Batch(parametrics, outcomes, products)


def request_rows(rng: random.Random, n: int, *, drifted: bool = False, process_changed: bool = False,
                 p2_share: float = 0.0) -> list[tuple[dict[str, Any], int]]:
    """``n`` live requests (explicit features, request inputs) with their true labels; a share of
    ``p2_share`` of them P2 devices (drawn from ``rng`` only when that share is above 0)."""
    out = []
    for i in range(n):
        tester = TESTERS[i % len(TESTERS)]
        product = "P2" if p2_share > 0 and rng.random() < p2_share else "P1"
        row = device(rng, "live", START, tester, drifted=drifted, process_changed=process_changed, product=product)
        label = row.pop("_label")
        row.pop("_latent")
        request = {"vdd_setpoint": PRODUCTS[product].vdd}
        out.append(({"features": {k: row[k] for k in STORED}, "request": request}, label))
    return out
