"""The inputs of the two state machines, checked and completed into the ``run`` object that
every step of an execution receives and returns.

Canary rollout input (all but ``model`` optional)::

    {"model": "yield", "challenger": 4,            default: the registry's challenger alias
     "stages": [1, 10, 50, 100],                   percent of traffic per stage, increasing, ending at 100
     "bake_seconds": 600,                          wait per stage (the virtual clock locally)
     "strategy": "canary" | "blue_green",          blue/green = one stage at 100%, instant rollback
     "policy": {...},                              `mlops.rollout.gate.GatePolicy` fields
     "shadow": {"hours": 24, "policy": {...}}}     optional: first judge the challenger's shadow
                                                   results of the last ``hours`` (ShadowAnalysisFunction,
                                                   `mlops.rollout.shadow.ShadowPolicy`); a failing
                                                   verdict rejects it before it takes any traffic

Retraining input::

    {"model": "yield", "reason": "schedule" | {...},
     "window": {"start": ISO, "end": ISO},         default: the 90 days before now
     "spec": {...},                                overrides of `mlops.models.training_specs.SPECS`
     "data_policy": {...}, "gate": {...},          `DataPolicy`, `RetrainingGatePolicy` fields
     "canary": {...}}                              the child rollout's input (stages, bake, policy)

`RunInputError` names the field; the state machines catch it as ``RunInputError`` and fail
with that message before touching anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from mlops.models.registry import iso_utc, model_name_problem, parse_version
from mlops.models.training_specs import SPEC_FIELDS
from mlops.rollout.data_validation import DataPolicy
from mlops.rollout.gate import GatePolicy
from mlops.rollout.retraining_gate import RetrainingGatePolicy

DEFAULT_STAGES = (1.0, 10.0, 50.0, 100.0)
DEFAULT_BAKE_SECONDS = 600
DEFAULT_WINDOW = timedelta(days=90)
STRATEGIES = ("canary", "blue_green")


class RunInputError(ValueError):
    """An execution's input is malformed; the message names the field."""


def _model(event: Mapping[str, Any]) -> str:
    problem = model_name_problem(event.get("model"))
    if problem:
        raise RunInputError(f"model: {problem}")
    return event["model"]


def _unknown(event: Mapping[str, Any], known: set[str], where: str = "") -> None:
    unknown = sorted(set(event) - known)
    if unknown:
        raise RunInputError(f"{where}{unknown[0]}: unknown field")


def _policy(cls: Any, values: Any, name: str) -> dict[str, Any]:
    if values is not None and not isinstance(values, Mapping):
        raise RunInputError(f"{name}: expected an object")
    try:
        policy = cls.from_dict(values or {})
    except (TypeError, ValueError) as exc:
        raise RunInputError(f"{name}.{exc}") from None
    return dict(policy.__dict__)


def _shadow(value: Any, now: datetime) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise RunInputError("shadow: expected an object like {\"hours\": 24, \"policy\": {...}}")
    _unknown(value, {"hours", "policy"}, "shadow.")
    hours = value.get("hours", 24)
    if isinstance(hours, bool) or not isinstance(hours, (int, float)) or not 0 < hours <= 2160:
        raise RunInputError("shadow.hours: expected a number of hours within (0, 2160]")
    if not isinstance(value.get("policy", {}), Mapping):
        raise RunInputError("shadow.policy: expected an object")
    return {"start": iso_utc(now - timedelta(hours=hours)), "end": iso_utc(now), "policy": dict(value.get("policy", {}))}


def canary_run(event: Mapping[str, Any], *, execution_id: str, run_id: str, challenger: int | None,
               champion: int | None, now: datetime) -> dict[str, Any]:
    """The canary run; ``challenger``/``champion`` are the registry's aliases now (the input's
    ``challenger`` wins when given)."""
    if not isinstance(event, Mapping):
        raise RunInputError("input: expected an object")
    _unknown(event, {"model", "challenger", "stages", "bake_seconds", "strategy", "policy", "retraining_run",
                     "shadow", "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID"})
    model = _model(event)
    strategy = event.get("strategy", "canary")
    if strategy not in STRATEGIES:
        raise RunInputError(f"strategy: expected one of {STRATEGIES}")
    stages = event.get("stages", list(DEFAULT_STAGES))
    if strategy == "blue_green":
        stages = [100.0] if "stages" not in event else stages
    if (not isinstance(stages, list) or not stages
            or not all(isinstance(s, (int, float)) and not isinstance(s, bool) and 0 < s <= 100 for s in stages)):
        raise RunInputError("stages: expected a non-empty list of percents in (0, 100]")
    if any(b <= a for a, b in zip(stages, stages[1:])) or stages[-1] != 100:
        raise RunInputError("stages: percents must increase and end at 100")
    bake = event.get("bake_seconds", DEFAULT_BAKE_SECONDS)
    if isinstance(bake, bool) or not isinstance(bake, (int, float)) or not 0 <= bake <= 7 * 86400:
        raise RunInputError("bake_seconds: expected a number of seconds within 0-604800")
    policy = _policy(GatePolicy, event.get("policy"), "policy")
    shadow = _shadow(event.get("shadow"), now)
    if "challenger" in event:
        challenger = parse_version(event["challenger"])
        if challenger is None:
            raise RunInputError("challenger: expected a positive integer version")
    if challenger is None:
        raise RunInputError("challenger: not given, and the model has no challenger alias")
    if champion is None:
        raise RunInputError(f"model: {model!r} has no champion to compare the challenger with; promote a first "
                            "version directly (POST /models/{name}/aliases/champion)")
    if challenger == champion:
        raise RunInputError(f"challenger: version {challenger} is already the champion")
    return {
        "kind": "rollout", "model": model, "challenger": challenger, "champion": champion,
        "strategy": strategy, "stages": [float(s) for s in stages], "bake_seconds": int(bake),
        "policy": policy, "shadow": shadow,
        "owner": execution_id, "run_id": run_id, "retraining_run": event.get("retraining_run"),
        "index": 0, "percent": None, "rollout_started_at": None, "stage_started_at": None,
        "extensions": 0, "decision": None, "reasons": [], "history": [], "outcome": None,
    }


def retraining_run(event: Mapping[str, Any], *, execution_id: str, run_id: str, now: datetime,
                   specs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The retraining run (see the module docstring)."""
    if not isinstance(event, Mapping):
        raise RunInputError("input: expected an object")
    _unknown(event, {"model", "reason", "window", "spec", "data_policy", "gate", "canary", "code_version"})
    model = _model(event)
    if model not in specs and "spec" not in event:
        raise RunInputError(f"spec: model {model!r} has no declared training spec; give one")
    spec = dict(specs.get(model, {}))
    overrides = event.get("spec") or {}
    if not isinstance(overrides, Mapping):
        raise RunInputError("spec: expected an object")
    _unknown(overrides, set(SPEC_FIELDS), "spec.")
    spec.update(overrides)
    for name in ("views", "features", "label_view"):
        if not spec.get(name):
            raise RunInputError(f"spec.{name}: required")
    window = event.get("window") or {}
    if not isinstance(window, Mapping):
        raise RunInputError("window: expected an object with start and end")
    _unknown(window, {"start", "end"}, "window.")
    try:
        end = iso_utc(datetime.fromisoformat(window["end"])) if "end" in window else iso_utc(now)
        start = (iso_utc(datetime.fromisoformat(window["start"])) if "start" in window
                 else iso_utc(datetime.fromisoformat(end) - DEFAULT_WINDOW))
    except (TypeError, ValueError):
        raise RunInputError("window: start and end must be ISO-8601 times with a zone") from None
    if start >= end:
        raise RunInputError("window: start must be before end")
    reason = event.get("reason", "manual")
    canary = event.get("canary") or {}
    if not isinstance(canary, Mapping):
        raise RunInputError("canary: expected an object")
    _unknown(canary, {"stages", "bake_seconds", "strategy", "policy"}, "canary.")
    return {
        "kind": "retraining", "model": model, "reason": reason,
        "reasons": list(reason.get("reasons", [])) if isinstance(reason, Mapping) else [str(reason)],
        "start": start, "end": end, "spec": spec,
        "data_policy": _policy(DataPolicy, event.get("data_policy"), "data_policy"),
        "gate": _policy(RetrainingGatePolicy, event.get("gate"), "gate"),
        "canary": dict(canary), "code_version": event.get("code_version"),
        "owner": execution_id, "run_id": run_id, "started_at": iso_utc(now), "status": "STARTED",
    }
