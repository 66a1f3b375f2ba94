"""Service level objectives of a model version: definitions, error budgets and burn rates.

Two kinds of SLO, both declared in config (JSON, validated by pydantic: :func:`parse_slos`):

* **bucket** SLOs judge each time bucket by one aggregate of :mod:`version_stats`:
  ``{"name": "p95-latency", "kind": "buckets", "metric": "latency_p95", "op": "<",
  "threshold": 50, "bucket": "1d", "objective": 0.999}`` reads "p95 latency < 50 ms on
  99.9% of days". A bucket with fewer than ``min_requests`` rows, or whose metric is
  undefined (no labels for accuracy), is not judged.
* **event** SLOs judge each request: ``sli: availability`` (good = no error) or ``sli:
  latency`` (good = ``latency_ms <= latency_ms``). ``{"name": "errors", "kind": "events",
  "sli": "availability", "objective": 0.99}`` reads "error rate < 1%".

The **error budget** is the share of bad units (buckets or requests) the objective allows,
``1 - objective``. Over the evaluated rows, ``budget_consumed = bad_share / (1 - objective)``
and ``budget_remaining = 1 - budget_consumed`` (negative once overspent). The **burn rate** of
a window is the same ratio over that window alone: 1 means the budget would last exactly the
SLO period, 14.4 that a 30-day budget's 2% goes in one hour.

**Multi-window, multi-burn-rate alerts** (Google SRE workbook, "Alerting on SLOs", approach 6)
for event SLOs: an alert fires when the burn rate exceeds ``factor`` over both the long and
the short window, both ending at the evaluation time. The defaults are the workbook's paging
pairs: 1 h / 5 min at 14.4x and 6 h / 30 min at 6x. The short window makes the alert stop soon
after the burning stops. A window with fewer than ``min_requests`` requests has no burn rate.

Pure: rows are prediction-log mappings (see :mod:`version_stats`), times epoch microseconds.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from mlops.features.timestamps import parse_timestamp
from mlops.monitoring.version_stats import Row, by_bucket

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
OPS: dict[str, Callable[[float, float], bool]] = {"<": operator.lt, "<=": operator.le, ">": operator.gt,
                                                  ">=": operator.ge}
METRICS = ("latency_p50", "latency_p95", "latency_p99", "error_rate", "positive_rate", "accuracy",
           "mean_probability", "n")


def duration_seconds(value: Any) -> int:
    """Seconds of ``"90s"``, ``"5m"``, ``"1h"``, ``"1d"`` or a positive number of seconds.

    >>> duration_seconds("5m"), duration_seconds("1d"), duration_seconds(3600)
    (300, 86400, 3600)
    """
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 5m, 1h, 1d or seconds")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and _DURATION.match(value):
        number, unit = _DURATION.match(value).groups()  # type: ignore[union-attr]
        seconds = float(number) * _UNIT_SECONDS[unit]
    else:
        raise ValueError(f"expected a duration such as 5m, 1h, 1d or seconds, got {value!r}")
    if seconds < 1 or seconds != int(seconds):
        raise ValueError("a duration is a whole number of seconds, at least 1")
    return int(seconds)


Duration = Annotated[int, BeforeValidator(duration_seconds)]
Objective = Annotated[float, Field(gt=0.0, lt=1.0)]


class BurnWindow(BaseModel):
    """One alerting pair: the burn rate must exceed ``factor`` over both windows."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    long: Duration
    short: Duration
    factor: Annotated[float, Field(gt=0.0)]
    severity: Literal["page", "ticket"] = "page"

    @model_validator(mode="after")
    def _short_is_shorter(self) -> "BurnWindow":
        if self.short >= self.long:
            raise ValueError("short window must be shorter than the long window")
        return self


#: The SRE workbook's paging pairs (2% of a 30-day budget in 1 h; 5% in 6 h).
DEFAULT_BURN_WINDOWS = (BurnWindow(long=3600, short=300, factor=14.4),
                        BurnWindow(long=6 * 3600, short=1800, factor=6.0))


class BucketSLO(BaseModel):
    """An aggregate per time bucket compared with a threshold; see the module docstring."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["buckets"]
    name: Annotated[str, Field(min_length=1, max_length=64)]
    metric: Literal[METRICS]  # type: ignore[valid-type]
    op: Literal["<", "<=", ">", ">="]
    threshold: float
    bucket: Duration = 86400
    objective: Objective
    min_requests: Annotated[int, Field(ge=1)] = 1
    description: str = ""


class EventSLO(BaseModel):
    """A share of good requests; see the module docstring."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["events"]
    name: Annotated[str, Field(min_length=1, max_length=64)]
    sli: Literal["availability", "latency"]
    latency_ms: Annotated[float, Field(gt=0.0)] | None = None
    objective: Objective
    burn_windows: tuple[BurnWindow, ...] = DEFAULT_BURN_WINDOWS
    min_requests: Annotated[int, Field(ge=1)] = 1
    description: str = ""

    @model_validator(mode="after")
    def _latency_needs_threshold(self) -> "EventSLO":
        if self.sli == "latency" and self.latency_ms is None:
            raise ValueError("a latency SLI needs latency_ms (the threshold of a good request)")
        return self

    def good(self, row: Row) -> bool | None:
        """Whether the request met the SLI; None when it cannot be judged (no latency)."""
        if self.sli == "availability":
            return not row.get("error")
        latency = row.get("latency_ms")
        if latency is None:
            return None
        return not row.get("error") and float(latency) <= float(self.latency_ms)  # type: ignore[arg-type]


SLO = Annotated[Union[BucketSLO, EventSLO], Field(discriminator="kind")]
_SLO_LIST = TypeAdapter(list[SLO])


def parse_slos(config: Any) -> list[BucketSLO | EventSLO]:
    """SLOs from config (a list of mappings); ValueError naming the field that is wrong."""
    try:
        slos = _SLO_LIST.validate_python(config)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"slos.{where}: {first['msg']}") from None
    names = [s.name for s in slos]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"slos: duplicate SLO name(s) {', '.join(duplicated)}")
    return slos


# ------------------------------------------------------------------------------ evaluation
def burn_rate(bad: int, total: int, objective: float) -> float | None:
    """``(bad / total) / (1 - objective)``; None for an empty window.

    >>> round(burn_rate(3, 100, 0.99), 9)
    3.0
    """
    if total <= 0:
        return None
    return (bad / total) / (1.0 - objective)


@dataclass(frozen=True)
class WindowBurn:
    """One alerting pair's burn rates and whether it fires."""

    long: int
    short: int
    factor: float
    severity: str
    long_burn: float | None
    short_burn: float | None
    long_requests: int
    short_requests: int
    firing: bool


@dataclass(frozen=True)
class SLOResult:
    """An SLO evaluated over a set of rows."""

    name: str
    kind: str
    objective: float
    units: int            # buckets or requests judged
    good: int
    bad: int
    compliance: float | None  # good / units
    met: bool | None          # compliance >= objective (None: nothing judged)
    budget_consumed: float | None
    budget_remaining: float | None
    burn_rate: float | None   # over all the rows evaluated
    windows: list[WindowBurn] = field(default_factory=list)
    bad_buckets: list[dict[str, Any]] = field(default_factory=list)

    @property
    def firing(self) -> list[WindowBurn]:
        """The alerting pairs that fire."""
        return [w for w in self.windows if w.firing]

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def _budget(good: int, bad: int, objective: float) -> tuple[float | None, bool | None, float | None, float | None]:
    units = good + bad
    if units == 0:
        return None, None, None, None
    compliance = good / units
    consumed = burn_rate(bad, units, objective)
    return compliance, compliance >= objective, consumed, None if consumed is None else 1.0 - consumed


def evaluate_buckets(slo: BucketSLO, rows: Iterable[Row]) -> SLOResult:
    """Judge every bucket of ``rows`` (one version's) against the SLO."""
    compare = OPS[slo.op]
    good = bad = 0
    bad_buckets: list[dict[str, Any]] = []
    for b in by_bucket(rows, slo.bucket):
        if b.stats.n < slo.min_requests:
            continue
        value = getattr(b.stats, slo.metric)
        if value is None:
            continue
        if compare(float(value), slo.threshold):
            good += 1
        else:
            bad += 1
            bad_buckets.append({"start": b.to_dict()["start"], "value": float(value)})
    compliance, met, consumed, remaining = _budget(good, bad, slo.objective)
    return SLOResult(slo.name, slo.kind, slo.objective, good + bad, good, bad, compliance, met, consumed,
                     remaining, consumed, bad_buckets=bad_buckets)


def evaluate_events(slo: EventSLO, rows: Iterable[Row], now: Any) -> SLOResult:
    """Count good and bad requests over all ``rows`` and over each alerting window ending at
    ``now`` (ISO-8601, epoch seconds or an aware datetime)."""
    end = parse_timestamp(now)
    spans = sorted({w.long for w in slo.burn_windows} | {w.short for w in slo.burn_windows})
    in_span = {s: [0, 0] for s in spans}  # seconds -> [good, bad]
    good = bad = 0
    for row in rows:
        verdict = slo.good(row)
        if verdict is None:
            continue
        good += verdict
        bad += not verdict
        age = end - parse_timestamp(row["ts"])
        for s in spans:
            if 0 <= age < s * 1_000_000:
                in_span[s][0 if verdict else 1] += 1
    windows = []
    for w in slo.burn_windows:
        (lg, lb), (sg, sb) = in_span[w.long], in_span[w.short]
        long_burn = burn_rate(lb, lg + lb, slo.objective) if lg + lb >= slo.min_requests else None
        short_burn = burn_rate(sb, sg + sb, slo.objective) if sg + sb >= slo.min_requests else None
        firing = long_burn is not None and short_burn is not None and long_burn > w.factor and short_burn > w.factor
        windows.append(WindowBurn(w.long, w.short, w.factor, w.severity, long_burn, short_burn, lg + lb, sg + sb,
                                  firing))
    compliance, met, consumed, remaining = _budget(good, bad, slo.objective)
    return SLOResult(slo.name, slo.kind, slo.objective, good + bad, good, bad, compliance, met, consumed,
                     remaining, consumed, windows)


def evaluate(slos: Sequence[BucketSLO | EventSLO], rows: Sequence[Row], now: Any) -> list[SLOResult]:
    """Every SLO over the same rows (one version's), in config order."""
    return [evaluate_buckets(s, rows) if isinstance(s, BucketSLO) else evaluate_events(s, rows, now) for s in slos]


def slos_from_config(config: Mapping[str, Any]) -> list[BucketSLO | EventSLO]:
    """The ``slos`` list of a monitoring config mapping (empty when absent)."""
    return parse_slos(config.get("slos") or [])
