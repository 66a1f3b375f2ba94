"""The worked example's feature definitions: device yield from parametric test data.

Devices are tested on testers at fab sites; each test produces ~100 parametric
measurements (supply voltage and current, leakage, maximum frequency, temperatures, and a
block of generic parametrics ``p000..p099``). Testers drift, so their health is a view of its
own. The on-demand ``vdd_idd_ratio`` view computes Vdd/Idd (an effective resistance, in
kilo-ohms for volts over milliamps) from the stored parametrics at request time, and the
margin of the measured Vdd against the request's set point.

>>> device_parametrics.ttl.days, len(device_parametrics.schema) > 100
(14, True)
>>> vdd_idd_ratio.compute({"vdd": 1.2, "idd": 0.0, "vdd_setpoint": 1.0})
{'vdd_idd_ratio': None, 'vdd_margin': 0.19999999999999996}
>>> vdd_idd_ratio.compute({"vdd": 1.2, "idd": 400.0})
{'vdd_idd_ratio': 0.003, 'vdd_margin': None}
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from mlops.features.definitions import (
    Entity,
    FeatureView,
    Field,
    OnDemandFeatureView,
    OnDemandInputs,
    RequestSource,
    register_transform,
)

device = Entity("device", join_key="device_id", description="One packaged die, by its unit id.")
lot = Entity("lot", join_key="lot_id", description="A production lot of wafers.")
wafer = Entity("wafer", join_key="wafer_id", description="One wafer of a lot.")
tester = Entity("tester", join_key="tester_id", description="An automatic test equipment head.")
fab_site = Entity("fab_site", join_key="fab_site", description="The fab and test site.")

#: Named parametrics with physical ranges; anything outside is a measurement fault.
NAMED_PARAMETRICS: tuple[Field, ...] = (
    Field("vdd", "float", required=True, min=0.0, max=5.0, description="supply voltage, V"),
    Field("idd", "float", required=True, min=0.0, max=5000.0, description="supply current, mA"),
    Field("iddq_ua", "float", min=0.0, max=1e6, description="quiescent supply current, uA"),
    Field("leakage_na", "float", min=0.0, max=1e7, description="input leakage, nA"),
    Field("fmax_mhz", "float", min=0.0, max=10000.0, description="maximum passing frequency, MHz"),
    Field("vth_mv", "float", min=-2000.0, max=2000.0, description="threshold voltage, mV"),
    Field("ring_osc_mhz", "float", min=0.0, max=10000.0, description="ring oscillator frequency, MHz"),
    Field("temperature_c", "float", min=-60.0, max=200.0, description="die temperature at test, C"),
    Field("ambient_c", "float", min=-60.0, max=100.0, description="tester ambient temperature, C"),
    Field("contact_res_ohm", "float", min=0.0, max=1e4, description="probe contact resistance, ohm"),
)
#: The block of generic parametrics, named systematically.
GENERIC_PARAMETRICS: tuple[Field, ...] = tuple(Field(f"p{i:03d}", "float") for i in range(100))

device_parametrics = FeatureView(
    name="device_parametrics",
    entities=[device],
    schema=NAMED_PARAMETRICS + GENERIC_PARAMETRICS,
    ttl=timedelta(days=14),
    source="ingest/device_parametrics",
    description="Parametric test measurements of each device, one row per test insertion.",
    tags={"owner": "test-engineering", "example": "yield"},
)

tester_health = FeatureView(
    name="tester_health",
    entities=[tester],
    schema=[
        Field("contact_res_ohm", "float", min=0.0, max=1e4, description="mean probe contact resistance, ohm"),
        Field("calibration_age_h", "float", min=0.0, description="hours since the last calibration"),
        Field("alarms_24h", "int", min=0, description="alarms raised in the last 24 h"),
        Field("status", "str", allowed=("ok", "degraded", "down")),
        Field("in_calibration", "bool"),
    ],
    ttl=timedelta(days=1),
    source="ingest/tester_health",
    description="Health of each tester head, reported by the tester every few minutes.",
    tags={"owner": "test-engineering", "example": "yield"},
)

device_outcomes = FeatureView(
    name="device_outcomes",
    entities=[device],
    schema=[
        Field("label", "int", required=True, allowed=(0, 1), description="1 = failed final test, 0 = passed"),
        Field("tester_id", "str", description="the tester that ran the parametric test"),
        Field("fab_site", "str", description="the fab and test site"),
        Field("vdd_setpoint", "float", min=0.0, max=5.0, description="the test program's Vdd set point, V"),
    ],
    ttl=timedelta(days=365),
    source="ingest/device_outcomes",
    description=("Final-test outcome of each device: the label retraining learns from. Its rows are the "
                 "label rows of a training set (event time = when the device was tested), with the "
                 "slice columns and the request inputs that on-demand features need."),
    tags={"owner": "test-engineering", "example": "yield", "kind": "labels"},
)

test_request = RequestSource(
    "test_request",
    [Field("vdd_setpoint", "float", min=0.0, max=5.0, description="the test program's Vdd set point, V")],
)


@register_transform("vdd_idd_ratio")
def vdd_idd_ratio_transform(inputs: OnDemandInputs) -> dict[str, Any]:
    """Vdd/Idd, and Vdd minus its set point; any missing or non-finite input, or Idd = 0,
    gives a missing output, never inf."""
    vdd, idd, setpoint = inputs.get("vdd"), inputs.get("idd"), inputs.get("vdd_setpoint")

    def ok(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

    ratio = vdd / idd if ok(vdd) and ok(idd) and idd != 0 else None
    margin = vdd - setpoint if ok(vdd) and ok(setpoint) else None
    return {"vdd_idd_ratio": ratio, "vdd_margin": margin}


vdd_idd_ratio = OnDemandFeatureView(
    name="vdd_idd_ratio",
    sources=[test_request, device_parametrics.select("vdd", "idd")],
    schema=[
        Field("vdd_idd_ratio", "float", description="Vdd / Idd (V/mA = kilo-ohm); missing when Idd is 0"),
        Field("vdd_margin", "float", description="measured Vdd minus the set point, V"),
    ],
    transform=vdd_idd_ratio_transform,
    description="Effective resistance and Vdd margin, computed per request.",
    tags={"example": "yield"},
)

ENTITIES: tuple[Entity, ...] = (device, lot, wafer, tester, fab_site)
FEATURE_VIEWS: tuple[FeatureView, ...] = (device_parametrics, tester_health, device_outcomes)
ON_DEMAND_VIEWS: tuple[OnDemandFeatureView, ...] = (vdd_idd_ratio,)
