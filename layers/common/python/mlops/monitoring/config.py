"""The monitoring config: SLOs, anomaly detection and data-quality thresholds, per model.

JSON (the monitor function ships ``functions/monitor/monitoring.json``), validated by
pydantic; a mistake is a ValueError naming the field::

    {
      "slos": [ ...see mlops.monitoring.slo... ],
      "anomaly": {"k": 3, "method": "ewma", "alpha": 0.3, "warmup": 6,
                  "metrics": ["latency_p95", "error_rate", "positive_rate", "n"]},
      "data_quality": {"null_delta": 0.05, "null_factor": 2, "min_rows": 20, "max_flagged_rate": 0.2},
      "models": {"yield": {"slos": [...]}}
    }

``models.<name>`` replaces whole sections (``slos``, ``anomaly``, ``data_quality``) for one
model; everything else is the default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlops.monitoring.anomaly import AnomalyConfig
from mlops.monitoring.slo import METRICS, SLO, BucketSLO, EventSLO


class AnomalySettings(BaseModel):
    """k-sigma detection on the per-bucket series of ``metrics`` (see `mlops.monitoring.anomaly`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    k: Annotated[float, Field(gt=0)] = 3.0
    method: Literal["ewma", "rolling"] = "ewma"
    alpha: Annotated[float, Field(gt=0, le=1)] = 0.3
    adjust: bool = False
    window: Annotated[int, Field(ge=2)] = 12
    warmup: Annotated[int, Field(ge=2)] = 6
    direction: Literal["both", "up", "down"] = "both"
    min_std: Annotated[float, Field(ge=0)] = 0.0
    metrics: tuple[Literal[METRICS], ...] = ("latency_p95", "error_rate", "positive_rate", "n")  # type: ignore[valid-type]

    def detector(self) -> AnomalyConfig:
        return AnomalyConfig(k=self.k, method=self.method, alpha=self.alpha, adjust=self.adjust, window=self.window,
                             warmup=self.warmup, direction=self.direction, min_std=self.min_std)


class QualitySettings(BaseModel):
    """When a window's data quality raises an alert (see `mlops.monitoring.data_quality`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    null_delta: Annotated[float, Field(ge=0, le=1)] = 0.05
    null_factor: Annotated[float, Field(ge=1)] = 2.0
    min_rows: Annotated[int, Field(ge=1)] = 20
    max_flagged_rate: Annotated[float, Field(ge=0, le=1)] = 0.2
    margin: Annotated[float, Field(ge=0)] = 0.0


class Section(BaseModel):
    """What a model may override."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    slos: list[SLO] | None = None  # type: ignore[valid-type]
    anomaly: AnomalySettings | None = None
    data_quality: QualitySettings | None = None


class MonitoringConfig(BaseModel):
    """The effective settings of one model (:meth:`for_model`) or the whole file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    slos: list[SLO] = Field(default_factory=list)  # type: ignore[valid-type]
    anomaly: AnomalySettings = AnomalySettings()
    data_quality: QualitySettings = QualitySettings()
    models: dict[str, Section] = Field(default_factory=dict)

    def for_model(self, name: str) -> "MonitoringConfig":
        """The defaults with ``models[name]``'s sections in place."""
        section = self.models.get(name)
        if section is None:
            return self.model_copy(update={"models": {}})
        update: dict[str, Any] = {"models": {}}
        for key in ("slos", "anomaly", "data_quality"):
            if getattr(section, key) is not None:
                update[key] = getattr(section, key)
        return self.model_copy(update=update)

    @property
    def slo_list(self) -> list[BucketSLO | EventSLO]:
        return list(self.slos)


def parse_config(raw: Mapping[str, Any]) -> MonitoringConfig:
    """Validate a config mapping; ValueError naming the first wrong field."""
    try:
        config = MonitoringConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"monitoring config {where}: {first['msg']}") from None
    for scope, slos in [("slos", config.slos)] + [(f"models.{m}.slos", s.slos or []) for m, s in config.models.items()]:
        names = [s.name for s in slos]
        if len(set(names)) != len(names):
            raise ValueError(f"monitoring config {scope}: SLO names must be unique")
    return config
