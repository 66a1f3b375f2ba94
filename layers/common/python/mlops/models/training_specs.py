"""Declared training specs per model: which feature views, features, slices and label view a
retraining run uses unless its input overrides them (declarative, like feature views).
Plain data: the rollout function reads it without importing the training stack."""

from __future__ import annotations

from typing import Any

#: Training specs per model, declared like feature views; a run may override any field.
SPECS: dict[str, dict[str, Any]] = {
    "yield": {
        "views": ["device_parametrics"],
        "on_demand": ["vdd_idd_ratio"],
        "features": ["vdd", "idd", "iddq_ua", "leakage_na", "fmax_mhz", "vth_mv", "ring_osc_mhz",
                     "temperature_c", "contact_res_ohm", "vdd_idd_ratio", "vdd_margin"],
        "slices": ["tester_id", "fab_site"],
        "label_view": "device_outcomes",
        "missing_policy": "impute",
        # the fairness audit covers the fab site (a tester is equipment, not a population)
        "config": {"sensitive": ["fab_site"]},
    },
}
SPEC_FIELDS = ("views", "on_demand", "features", "slices", "label_view", "missing_policy", "config",
               "intended_use", "limitations")
