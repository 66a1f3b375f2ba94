"""demo/yield_data.py's injectable events: with them off the rows are exactly the pinned ones;
the process change (concept drift) leaves every input as it was while a model fitted before it
loses AUC; the product transition moves the mix linearly and shifts the parametric means; the
fail rate stays in a plausible band under every event; the rows stay valid for the views."""

from __future__ import annotations

import hashlib
import json
import random
from datetime import datetime, timezone

import numpy as np
import pytest
from scipy.stats import ks_2samp
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from demo.yield_data import STORED, PRODUCTS, fail_weights, product_share, request_rows, week
from mlops.features.validation import validate_rows
from mlops.features.yield_example import device_outcomes, device_parametrics


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def features(batches) -> np.ndarray:
    """The stored named features of ``batches``, a missed measurement filled with its column mean."""
    x = np.array([[np.nan if r[c] is None else r[c] for c in STORED] for b in batches for r in b.parametrics])
    return np.where(np.isnan(x), np.nanmean(x, axis=0), x)


def labels(batches) -> np.ndarray:
    return np.array([o["label"] for b in batches for o in b.outcomes])


def column(batches, name: str) -> np.ndarray:
    return np.array([r[name] for b in batches for r in b.parametrics if r[name] is not None])


# Digests of the rows as the generator made them before the process change and the product
# transition existed (taken from that version of the module): the events off change nothing.
PINNED = {"week0": "6b8ef895c369184c", "week3": "a45cd5142e92a700", "week9": "3cdc9fc82fb81103",
          "week5s11": "9e6889d84c3e4388", "req": "b5d32d8d62d7aee2", "reqd": "681846bcd2f0b417"}


def test_events_off_give_the_pinned_rows():
    for n in (0, 3, 9):
        b = week(n, devices=40, drift_from=3)
        assert digest([b.parametrics, b.outcomes]) == PINNED[f"week{n}"]
        off = week(n, devices=40, drift_from=3, process_change_from=None, transition=None)
        assert (off.parametrics, off.outcomes) == (b.parametrics, b.outcomes)
    b = week(5, devices=30, seed=11)
    assert digest([b.parametrics, b.outcomes]) == PINNED["week5s11"]
    assert b.products == ["P1"] * 30
    assert digest(request_rows(random.Random(42), 25)) == PINNED["req"]
    off = request_rows(random.Random(42), 25, drifted=True, process_changed=False, p2_share=0.0)
    assert digest(off) == PINNED["reqd"]
    # a few values by eye
    row = week(2, devices=5).parametrics[0]
    assert {k: row[k] for k in ("vdd", "leakage_na", "fmax_mhz", "contact_res_ohm", "p000")} == {
        "vdd": 1.2239, "leakage_na": 39.44, "fmax_mhz": 2108.1, "contact_res_ohm": 1.446, "p000": 129.329}
    # an event from a later week does not touch the weeks before it
    assert week(2, devices=40, process_change_from=3, transition=(3, 6)).parametrics == week(2, devices=40).parametrics


@pytest.fixture(scope="module")
def process_change():
    """Weeks 0-3 before a process change at week 4, weeks 4-7 after; and weeks 4-7 without it."""
    before = [week(n, devices=500, process_change_from=4) for n in range(4)]
    after = [week(n, devices=500, process_change_from=4) for n in range(4, 8)]
    unchanged = [week(n, devices=500) for n in range(4, 8)]
    return before, after, unchanged


def test_process_change_keeps_every_input(process_change):
    before, after, unchanged = process_change
    # the same draws: only the labels differ from the world without the change
    assert [b.parametrics for b in after] == [b.parametrics for b in unchanged]
    assert not np.array_equal(labels(after), labels(unchanged))
    for name in ("leakage_na", "fmax_mhz", "contact_res_ohm", "vdd", "idd", "p000", "p050"):
        assert ks_2samp(column(before, name), column(after, name)).pvalue > 0.01, name


def test_process_change_costs_a_model_fitted_before_it_its_auc(process_change):
    before, after, unchanged = process_change
    xb, yb = features(before), labels(before)
    mean, sd = xb.mean(axis=0), xb.std(axis=0)
    model = LogisticRegression(max_iter=2000).fit((xb - mean) / sd, yb)

    def auc(batches):
        return roc_auc_score(labels(batches), model.decision_function((features(batches) - mean) / sd))

    assert auc(unchanged) > 0.87  # the model is good where nothing changed ...
    assert auc(after) < auc(unchanged) - 0.08  # ... and loses after the change
    # contact resistance now tells much more about failing, leakage much less
    res, leak = STORED.index("contact_res_ohm"), STORED.index("leakage_na")
    xa, ya = features(after), labels(after)
    assert np.corrcoef(xa[:, res], ya)[0, 1] > np.corrcoef(xb[:, res], yb)[0, 1] + 0.15
    assert np.corrcoef(xa[:, leak], ya)[0, 1] < np.corrcoef(xb[:, leak], yb)[0, 1] - 0.15
    assert fail_weights("P1", process_changed=True) == pytest.approx((-4.0, 0.4, -1.3, 2.4, 0.5))


def test_transition_moves_the_mix_linearly_and_shifts_the_means():
    transition = (2, 6)
    batches = [week(n, devices=400, transition=transition) for n in range(9)]
    shares = [b.products.count("P2") / 400 for b in batches]
    expected = [0, 0, 0, 0.25, 0.5, 0.75, 1, 1, 1]
    assert [product_share(n, transition) for n in range(9)] == expected
    assert shares[:3] == [0, 0, 0] and shares[6:] == [1, 1, 1]
    assert shares[3:6] == pytest.approx(expected[3:6], abs=0.07)
    assert shares[3] < shares[4] < shares[5]
    before, after = batches[:2], batches[7:]
    for name in ("vdd", "fmax_mhz", "leakage_na", "vth_mv", "idd", "p001", "p002"):
        assert ks_2samp(column(before, name), column(after, name)).pvalue < 1e-6, name
    assert column(after, "vdd").mean() == pytest.approx(PRODUCTS["P2"].vdd, abs=0.01)
    assert column(after, "fmax_mhz").mean() == pytest.approx(PRODUCTS["P2"].fmax_mhz, rel=0.01)
    # the contact resistance is the probe's, not the product's
    assert ks_2samp(column(before, "contact_res_ohm"), column(after, "contact_res_ohm")).pvalue > 0.01
    # each outcome row carries its product's set point
    for b in batches[3:5]:
        assert [o["vdd_setpoint"] for o in b.outcomes] == [PRODUCTS[p].vdd for p in b.products]


def test_rows_under_every_event_fit_the_views():
    b = week(5, devices=60, drift_from=3, process_change_from=4, transition=(4, 6))
    assert set(b.products) == {"P1", "P2"}
    assert set(b.parametrics[0]) == set(week(5, devices=1).parametrics[0])  # no new column
    now = datetime(2027, 1, 1, tzinfo=timezone.utc)
    assert validate_rows(device_parametrics, b.parametrics, now=now).rejected == []
    assert validate_rows(device_outcomes, b.outcomes, now=now).rejected == []


@pytest.mark.parametrize("events", [
    {}, {"drift_from": 0}, {"process_change_from": 0}, {"transition": (0, 1)},
    {"transition": (0, 1), "process_change_from": 0},
])
def test_fail_rate_stays_plausible(events):
    rate = labels([week(n, devices=400, **events) for n in range(2, 5)]).mean()
    assert 0.03 <= rate <= 0.15, (events, rate)


def test_request_rows_events():
    plain = request_rows(random.Random(5), 400)
    changed = request_rows(random.Random(5), 400, process_changed=True)
    assert [f for f, _ in changed] == [f for f, _ in plain]
    assert [y for _, y in changed] != [y for _, y in plain]
    p2 = request_rows(random.Random(5), 400, p2_share=1.0)
    assert np.mean([f["features"]["vdd"] for f, _ in p2]) == pytest.approx(1.0, abs=0.01)
    assert {f["request"]["vdd_setpoint"] for f, _ in p2} == {1.0}
    half = request_rows(random.Random(5), 400, p2_share=0.5)
    assert np.mean([f["request"]["vdd_setpoint"] == 1.0 for f, _ in half]) == pytest.approx(0.5, abs=0.07)


@pytest.mark.parametrize("bad", [(4, 4), (6, 2)])
def test_a_transition_must_end_after_it_starts(bad):
    with pytest.raises(ValueError, match="start < end"):
        week(0, devices=2, transition=bad)
