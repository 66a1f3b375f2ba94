"""Experiment definitions: what is tested against what, on which metrics, with which error rates.

A definition is plain data, validated once when it is created (``from_dict``) so that every
later step (assignment, power, analysis) can trust it. Validation collects every problem and
raises one :class:`~mlops.experiments.errors.ExperimentError` whose ``field`` names the first
and whose ``errors`` lists them all, with paths such as ``variants[1].weight``; unknown fields
are refused rather than ignored, so a typo (``alhpa``) is an error and not a silent default.

Fields (``to_dict`` gives the same JSON shape back):

* ``experiment_id`` - the id; also the default ``salt``;
* ``variants`` - ``[{"name", "weight", "model_version"}]``, at least two, unique names; the
  weights are the allocation (any positive numbers, normalised); a zero weight is refused
  because a variant with no traffic can never be compared;
* ``control`` - the variant the others are compared with (default: the first);
* ``traffic`` - the fraction of entities enrolled at all, in (0, 1] (default 1);
* ``primary_metric`` / ``guardrail_metrics`` - ``{"name", "kind": "proportion"|"mean",
  "direction": "increase"|"decrease", "baseline", "std"}``; the primary metric needs
  ``baseline`` (and ``std`` for a mean) because the sample size depends on them;
* ``mde`` and ``mde_kind`` - the minimum detectable effect on the primary metric,
  ``relative`` to the baseline (0.05 = +5%, the default) or ``absolute``;
* ``alpha`` in (0, 0.5], ``power`` in (alpha, 1);
* ``start`` / ``stop`` - ISO 8601 times with a time zone (stored as UTC, ``...Z``);
* ``salt`` - hashed with the entity id for assignment (default: the experiment id);
* ``mode`` - ``ab`` or ``aa`` (every variant serves the same model version: a pipeline check);
* ``sequential`` - analyse with always-valid confidence sequences (default true);
* ``correction`` - ``holm`` (default), ``bonferroni`` or ``none`` across metrics x variants;
* ``model`` - the registered model the experiment routes (optional here; the API requires it).
  Then every variant's ``model_version`` is a version number (``"3"``) and every metric is an
  outcome recorded from feedback (:mod:`~mlops.experiments.outcomes`: ``correct``, ``label``,
  ``brier``, ``log_loss``, with their kinds);
* ``bandit`` - ``{"policy", "params"}``: allocate by a multi-armed bandit
  (:mod:`~mlops.experiments.bandits`: ``epsilon_greedy``, ``ucb1``, ``thompson_beta``,
  ``thompson_gaussian``; ``params`` such as ``floor``, ``epsilon``, priors) instead of the fixed
  weights; the reward is the primary metric's outcome (larger is better). ``ucb1`` and
  ``thompson_beta`` need rewards in [0, 1], so a proportion primary metric; an A/A experiment
  keeps its fixed split.

>>> d = ExperimentDefinition.from_dict({
...     "experiment_id": "exp-1",
...     "variants": [{"name": "control", "weight": 1, "model_version": "3"},
...                  {"name": "challenger", "weight": 1, "model_version": "4"}],
...     "primary_metric": {"name": "pass_rate", "kind": "proportion", "baseline": 0.9},
...     "mde": 0.02})
>>> d.allocation
{'control': 0.5, 'challenger': 0.5}
>>> ExperimentDefinition.from_dict({**d.to_dict(), "alpha": 0})
Traceback (most recent call last):
...
mlops.experiments.errors.ExperimentError: alpha: must be in (0, 0.5], got 0.0
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from mlops.experiments import bandits, outcomes
from mlops.experiments.errors import ExperimentError
from mlops.models.registry import model_name_problem

MetricKind = Literal["proportion", "mean"]
Direction = Literal["increase", "decrease"]
METRIC_KINDS = ("proportion", "mean")
DIRECTIONS = ("increase", "decrease")
MODES = ("ab", "aa")
CORRECTIONS = ("holm", "bonferroni", "none")
MDE_KINDS = ("relative", "absolute")

_VARIANT_FIELDS = ("name", "weight", "model_version")
_METRIC_FIELDS = ("name", "kind", "direction", "baseline", "std")
_FIELDS = ("experiment_id", "name", "description", "variants", "control", "traffic", "primary_metric",
           "guardrail_metrics", "mde", "mde_kind", "alpha", "power", "start", "stop", "salt", "mode",
           "sequential", "correction", "model", "bandit")
_BANDIT_FIELDS = ("policy", "params")


@dataclass(frozen=True)
class Variant:
    """One arm of the experiment: its name, its share of traffic (a positive weight) and the
    model version it serves (``None`` when the variant is not a model, e.g. a config)."""

    name: str
    weight: float
    model_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "weight": self.weight, "model_version": self.model_version}


@dataclass(frozen=True)
class Metric:
    """A metric to compare: a ``proportion`` (0/1 outcome per entity) or a ``mean``.

    ``direction`` says which way is better. ``baseline`` is the expected control value (a rate
    for a proportion) and ``std`` the per-entity standard deviation of a mean metric; both are
    only needed for the sample-size plan.
    """

    name: str
    kind: MetricKind = "proportion"
    direction: Direction = "increase"
    baseline: float | None = None
    std: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "direction": self.direction,
                "baseline": self.baseline, "std": self.std}


@dataclass(frozen=True)
class BanditConfig:
    """Bandit allocation: the policy and its parameters (validated against the variants)."""

    policy: str
    params: tuple[tuple[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "params": dict(self.params)}

    def new_state(self, arms: list[str]) -> dict[str, Any]:
        """A fresh bandit state over ``arms`` (the variant names)."""
        return bandits.new_state(self.policy, arms, **dict(self.params))


@dataclass(frozen=True)
class ExperimentDefinition:
    """A validated experiment definition; build it with :meth:`from_dict` (see module doc)."""

    experiment_id: str
    variants: tuple[Variant, ...]
    primary_metric: Metric
    mde: float
    guardrail_metrics: tuple[Metric, ...] = ()
    control: str = ""
    traffic: float = 1.0
    mde_kind: Literal["relative", "absolute"] = "relative"
    alpha: float = 0.05
    power: float = 0.8
    start: str | None = None
    stop: str | None = None
    salt: str = ""
    mode: Literal["ab", "aa"] = "ab"
    sequential: bool = True
    correction: Literal["holm", "bonferroni", "none"] = "holm"
    name: str = ""
    description: str = ""
    model: str | None = None
    bandit: BanditConfig | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ExperimentDefinition":
        """Validate ``data`` (the JSON of a create request) and build the definition.

        Raises :class:`ExperimentError` naming the first bad field; ``.errors`` has them all.
        """
        errors: list[dict[str, str]] = []
        if not isinstance(data, Mapping):
            raise ExperimentError("body", f"an experiment definition is a JSON object, got {type(data).__name__}")
        for key in data:
            if key not in _FIELDS:
                _bad(errors, str(key), f"unknown field; known fields: {', '.join(_FIELDS)}")

        experiment_id = _string(data, "experiment_id", errors, required=True)
        variants = _variants(data.get("variants"), errors)
        names = [v.name for v in variants]

        control = data.get("control", names[0] if names else "")
        if not isinstance(control, str) or (names and control not in names):
            _bad(errors, "control", f"must name one of the variants {names}, got {control!r}")
            control = names[0] if names else ""

        traffic = _number(data, "traffic", errors, default=1.0, low=0.0, high=1.0, high_closed=True)
        alpha = _number(data, "alpha", errors, default=0.05, low=0.0, high=0.5, high_closed=True)
        power = _number(data, "power", errors, default=0.8, low=0.0, high=1.0)
        if alpha is not None and power is not None and power <= alpha:
            _bad(errors, "power", f"must be greater than alpha ({alpha!r}), got {power!r}")

        primary = _metric(data.get("primary_metric"), "primary_metric", errors, planning=True)
        guardrails_raw = data.get("guardrail_metrics", [])
        guardrails: list[Metric] = []
        if not isinstance(guardrails_raw, list):
            _bad(errors, "guardrail_metrics", f"must be a list of metrics, got {type(guardrails_raw).__name__}")
        else:
            for i, raw in enumerate(guardrails_raw):
                metric = _metric(raw, f"guardrail_metrics[{i}]", errors, planning=False)
                if metric is not None:
                    guardrails.append(metric)
        seen: dict[str, str] = {}
        labelled = [("primary_metric", primary)] + [(f"guardrail_metrics[{i}]", m) for i, m in enumerate(guardrails)]
        for path, metric in labelled:
            if metric is None:
                continue
            if metric.name in seen:
                _bad(errors, f"{path}.name", f"duplicate metric name {metric.name!r} (also {seen[metric.name]})")
            seen[metric.name] = path

        mde_kind = data.get("mde_kind", "relative")
        if mde_kind not in MDE_KINDS:
            _bad(errors, "mde_kind", f"must be one of {MDE_KINDS}, got {mde_kind!r}")
            mde_kind = "relative"
        mde = _number(data, "mde", errors, required=True, low=0.0, high=math.inf)
        if mde is not None and primary is not None and primary.baseline is not None:
            if mde_kind == "relative" and primary.baseline == 0:
                _bad(errors, "mde_kind", "a relative MDE needs a non-zero primary_metric.baseline")
            elif primary.kind == "proportion":
                delta = primary.baseline * mde if mde_kind == "relative" else mde
                target = primary.baseline + (delta if primary.direction == "increase" else -delta)
                if not 0.0 < target < 1.0:
                    _bad(errors, "mde", f"moves the baseline rate {primary.baseline!r} to {target!r}, outside (0, 1)")

        start = _timestamp(data, "start", errors)
        stop = _timestamp(data, "stop", errors)
        if start is not None and stop is not None and stop <= start:
            _bad(errors, "stop", f"must be after start ({start}), got {stop}")

        salt = data.get("salt", experiment_id or "")
        if not isinstance(salt, str) or not salt:
            _bad(errors, "salt", f"must be a non-empty string, got {salt!r}")
            salt = experiment_id or ""

        mode = data.get("mode", "ab")
        if mode not in MODES:
            _bad(errors, "mode", f"must be one of {MODES}, got {mode!r}")
            mode = "ab"
        elif mode == "aa" and variants:
            first = variants[0].model_version
            for i, v in enumerate(variants):
                if v.model_version != first:
                    _bad(errors, f"variants[{i}].model_version",
                         f"an A/A experiment serves the same model version in every variant ({first!r}), "
                         f"got {v.model_version!r}")
                    break

        sequential = data.get("sequential", True)
        if not isinstance(sequential, bool):
            _bad(errors, "sequential", f"must be true or false, got {sequential!r}")
            sequential = True
        correction = data.get("correction", "holm")
        if correction not in CORRECTIONS:
            _bad(errors, "correction", f"must be one of {CORRECTIONS}, got {correction!r}")
            correction = "holm"
        name = _string(data, "name", errors, required=False) or ""
        description = _string(data, "description", errors, required=False) or ""
        model = _model(data, variants, labelled, errors)
        bandit = _bandit(data.get("bandit"), variants, primary, mode, errors)

        if errors:
            raise ExperimentError(errors[0]["field"], errors[0]["message"], errors)
        assert experiment_id is not None and primary is not None and mde is not None
        assert traffic is not None and alpha is not None and power is not None
        return cls(
            experiment_id=experiment_id, variants=tuple(variants), primary_metric=primary, mde=mde,
            guardrail_metrics=tuple(guardrails), control=control, traffic=traffic, mde_kind=mde_kind,
            alpha=alpha, power=power, start=start, stop=stop, salt=salt, mode=mode, sequential=sequential,
            correction=correction, name=name, description=description, model=model, bandit=bandit,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape; ``from_dict(d.to_dict()) == d``."""
        return {
            "experiment_id": self.experiment_id, "name": self.name, "description": self.description,
            "variants": [v.to_dict() for v in self.variants], "control": self.control, "traffic": self.traffic,
            "primary_metric": self.primary_metric.to_dict(),
            "guardrail_metrics": [m.to_dict() for m in self.guardrail_metrics],
            "mde": self.mde, "mde_kind": self.mde_kind, "alpha": self.alpha, "power": self.power,
            "start": self.start, "stop": self.stop, "salt": self.salt, "mode": self.mode,
            "sequential": self.sequential, "correction": self.correction, "model": self.model,
            "bandit": self.bandit.to_dict() if self.bandit else None,
        }

    # ------------------------------------------------------------------ derived values
    @property
    def allocation(self) -> dict[str, float]:
        """Variant name -> share of enrolled traffic (the weights normalised to sum to 1)."""
        total = sum(v.weight for v in self.variants)
        return {v.name: v.weight / total for v in self.variants}

    @property
    def treatments(self) -> tuple[str, ...]:
        """The variants compared with the control, in definition order."""
        return tuple(v.name for v in self.variants if v.name != self.control)

    @property
    def metrics(self) -> tuple[Metric, ...]:
        """The primary metric, then the guardrails."""
        return (self.primary_metric, *self.guardrail_metrics)

    def absolute_mde(self) -> float:
        """The MDE in the metric's own units (a rate difference for a proportion)."""
        if self.mde_kind == "absolute":
            return self.mde
        if self.primary_metric.baseline is None:
            raise ExperimentError("primary_metric.baseline", "needed to turn a relative MDE into an absolute one")
        return abs(self.primary_metric.baseline) * self.mde

    def variant(self, name: str) -> Variant:
        """The variant called ``name``; an error naming ``variant`` if there is none."""
        for v in self.variants:
            if v.name == name:
                return v
        raise ExperimentError("variant", f"unknown variant {name!r}; variants are {[v.name for v in self.variants]}")


# ---------------------------------------------------------------------- field parsers
def _bad(errors: list[dict[str, str]], path: str, message: str) -> None:
    errors.append({"field": path, "message": message})


def _string(data: Mapping[str, Any], key: str, errors: list[dict[str, str]], *, required: bool) -> str | None:
    if key not in data:
        if required:
            _bad(errors, key, "is required")
        return None
    value = data[key]
    if not isinstance(value, str) or (required and not value.strip()):
        _bad(errors, key, f"must be a non-empty string, got {value!r}" if required else f"must be a string, got {value!r}")
        return None
    return value


def _number(data: Mapping[str, Any], key: str, errors: list[dict[str, str]], *, low: float, high: float,
            default: float | None = None, required: bool = False, high_closed: bool = False,
            path: str | None = None) -> float | None:
    """data[key] as a float in (low, high) (or (low, high]); None, with an error, if it is bad;
    ``default`` if absent (an error instead when ``required``)."""
    path = path or key
    if key not in data or data[key] is None:
        if required:
            _bad(errors, path, "is required")
        return default
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _bad(errors, path, f"must be a finite number, got {value!r}")
        return None
    number = float(value)
    if number <= low or (number > high if high_closed else number >= high):
        upper = "inf" if math.isinf(high) else f"{high:g}"
        lower = "-inf" if math.isinf(low) else f"{low:g}"
        _bad(errors, path, f"must be in ({lower}, {upper}{']' if high_closed else ')'}, got {number!r}")
        return None
    return number


def _variants(raw: Any, errors: list[dict[str, str]]) -> list[Variant]:
    if not isinstance(raw, list):
        _bad(errors, "variants", "is required: a list of at least two {name, weight, model_version}" if raw is None
             else f"must be a list, got {type(raw).__name__}")
        return []
    if len(raw) < 2:
        _bad(errors, "variants", f"needs at least two variants, got {len(raw)}")
    out: list[Variant] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        path = f"variants[{i}]"
        if not isinstance(item, Mapping):
            _bad(errors, path, f"must be an object, got {type(item).__name__}")
            continue
        n_before = len(errors)
        for key in item:
            if key not in _VARIANT_FIELDS:
                _bad(errors, f"{path}.{key}", f"unknown field; known fields: {', '.join(_VARIANT_FIELDS)}")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            _bad(errors, f"{path}.name", f"must be a non-empty string, got {name!r}")
        elif name in seen:
            _bad(errors, f"{path}.name", f"duplicate variant name {name!r}")
        else:
            seen.add(name)
        weight = item.get("weight")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
            _bad(errors, f"{path}.weight", f"must be a finite number, got {weight!r}")
        elif weight <= 0:
            _bad(errors, f"{path}.weight", f"variant {name!r} must get traffic (weight > 0), got {weight!r}")
        version = item.get("model_version")
        if version is not None and not isinstance(version, str):
            _bad(errors, f"{path}.model_version", f"must be a string or null, got {version!r}")
        if len(errors) == n_before:
            out.append(Variant(name=name, weight=float(weight), model_version=version))
    return out


def _metric(raw: Any, path: str, errors: list[dict[str, str]], *, planning: bool) -> Metric | None:
    """A metric from its JSON; ``planning`` (the primary metric) makes baseline (and std) required."""
    if raw is None:
        _bad(errors, path, "is required: {name, kind, direction, baseline, std}")
        return None
    if not isinstance(raw, Mapping):
        _bad(errors, path, f"must be an object, got {type(raw).__name__}")
        return None
    n_before = len(errors)
    for key in raw:
        if key not in _METRIC_FIELDS:
            _bad(errors, f"{path}.{key}", f"unknown field; known fields: {', '.join(_METRIC_FIELDS)}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        _bad(errors, f"{path}.name", f"must be a non-empty string, got {name!r}")
    kind = raw.get("kind", "proportion")
    if kind not in METRIC_KINDS:
        _bad(errors, f"{path}.kind", f"must be one of {METRIC_KINDS}, got {kind!r}")
    direction = raw.get("direction", "increase")
    if direction not in DIRECTIONS:
        _bad(errors, f"{path}.direction", f"must be one of {DIRECTIONS}, got {direction!r}")
    baseline: float | None = None
    std: float | None = None
    if kind == "proportion":
        baseline = _number(raw, "baseline", errors, required=planning, low=0.0, high=1.0, path=f"{path}.baseline")
        if raw.get("std") is not None:
            _bad(errors, f"{path}.std", "a proportion's spread follows from its baseline; leave std out")
    elif kind == "mean":
        baseline = _number(raw, "baseline", errors, required=planning, low=-math.inf, high=math.inf,
                           path=f"{path}.baseline")
        std = _number(raw, "std", errors, required=planning, low=0.0, high=math.inf, path=f"{path}.std")
    if len(errors) > n_before:
        return None
    return Metric(name=name, kind=kind, direction=direction, baseline=baseline, std=std)


def _timestamp(data: Mapping[str, Any], key: str, errors: list[dict[str, str]]) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        _bad(errors, key, f"must be an ISO 8601 time string, got {value!r}")
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        _bad(errors, key, f"must be an ISO 8601 time such as 2025-01-31T00:00:00Z, got {value!r}")
        return None
    if moment.tzinfo is None:
        _bad(errors, key, f"needs a time zone (e.g. a trailing Z), got {value!r}")
        return None
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _model(data: Mapping[str, Any], variants: list[Variant], metrics: list[tuple[str, Metric | None]],
           errors: list[dict[str, str]]) -> str | None:
    """The ``model`` field; when set, versions must be numbers and metrics recorded outcomes."""
    model = data.get("model")
    if model is None:
        return None
    problem = model_name_problem(model)
    if problem:
        _bad(errors, "model", problem)
        return None
    for i, v in enumerate(variants):
        if v.model_version is None or not v.model_version.isdigit() or int(v.model_version) < 1:
            _bad(errors, f"variants[{i}].model_version",
                 f"a model experiment serves a version of {model!r} in every variant: a version number "
                 f"such as \"3\", got {v.model_version!r}")
    for path, metric in metrics:
        if metric is None:
            continue
        problem = outcomes.problem(metric.name, metric.kind)
        if problem:
            _bad(errors, f"{path}.{'name' if metric.name not in outcomes.OUTCOMES else 'kind'}", problem)
    return model


def _bandit(raw: Any, variants: list[Variant], primary: Metric | None, mode: str,
            errors: list[dict[str, str]]) -> BanditConfig | None:
    """The ``bandit`` field, validated by building a fresh state over the variants."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        _bad(errors, "bandit", f"must be an object {{policy, params}}, got {type(raw).__name__}")
        return None
    n_before = len(errors)
    for key in raw:
        if key not in _BANDIT_FIELDS:
            _bad(errors, f"bandit.{key}", f"unknown field; known fields: {', '.join(_BANDIT_FIELDS)}")
    policy = raw.get("policy")
    if policy not in bandits.POLICIES:
        _bad(errors, "bandit.policy", f"must be one of {bandits.POLICIES}, got {policy!r}")
    params = raw.get("params", {})
    if not isinstance(params, Mapping):
        _bad(errors, "bandit.params", f"must be an object, got {type(params).__name__}")
    if mode == "aa":
        _bad(errors, "bandit", "an A/A experiment keeps a fixed split; leave bandit out")
    if (policy in ("ucb1", "thompson_beta") and primary is not None and primary.kind != "proportion"):
        _bad(errors, "bandit.policy", f"{policy} needs rewards in [0, 1]: a proportion primary metric "
             f"(use thompson_gaussian or epsilon_greedy for a mean), got {primary.kind!r}")
    if len(errors) > n_before or len(variants) < 2:
        return None
    accepted = [p for p in inspect.signature(bandits._CONSTRUCTORS[policy]).parameters if p != "arms"]
    unknown = [str(k) for k in params if k not in accepted]
    if unknown:
        for key in unknown:
            _bad(errors, f"bandit.params.{key}", f"unknown parameter of {policy}; known: {', '.join(accepted)}")
        return None
    config = BanditConfig(policy=policy, params=tuple(sorted(params.items())))
    try:
        config.new_state([v.name for v in variants])
    except ExperimentError as err:
        field = err.field if err.field != "params" else ""
        _bad(errors, f"bandit.params{'.' + field if field else ''}", err.message)
        return None
    return config
