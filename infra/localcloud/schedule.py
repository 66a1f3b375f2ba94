"""EventBridge schedules on the cloud's clock: rules in moto, firings when the clock passes them.

`create_rules` creates one EventBridge rule (and its target) per ``Schedule`` event of the
template, so ``aws events list-rules`` shows them, and remembers when each rule was created
(rates count from then). `advance` moves ``cloud.clock`` forward through every firing of every
enabled rule in the window, in time order, and fires each target as EventBridge would: a state
machine starts an execution (`sfn.execute`), a function is invoked with the rule's ``Input`` or
the scheduled event that ``sam local generate-event cloudwatch scheduled-event`` shows.
`parse_duration` reads ``7d``/``36h``/``90m``/``30s``/``2w`` for ``localcloud schedule --advance``,
and `format_firings` prints what fired and what it returned.

Whether a rule is enabled is read from moto at each `advance`, so ``aws events disable-rule``
against the local endpoint takes effect as it would on AWS.

Events sent with ``PutEvents`` (alerts, say) never match a schedule rule on AWS: a rule with a
``ScheduleExpression`` and no ``EventPattern`` only fires on its schedule. moto's rule matches
every event when it has no pattern, and then fails on the function or state machine target
("Expr not defined"); `_schedule_rules_ignore_events` makes it skip them, as AWS does (one more
place localcloud leans on moto internals, pinned in requirements/dev.txt).
"""

from __future__ import annotations

import json
import re
import uuid
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from . import cron, sfn
from .errors import LocalCloudError
from .template import ACCOUNT_ID, Schedule

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


@dataclass(frozen=True)
class Firing:
    """One target fired by one rule at one scheduled time."""

    time: datetime  # the scheduled time (UTC)
    rule_name: str
    target_id: str  # the function or state machine logical id
    kind: str  # "function" or "state_machine"
    status: str  # a function: "OK" or its error type; a state machine: the execution status
    result: Any  # a function: its decoded answer; a state machine: the sfn.ExecutionResult


@dataclass
class _Rule:
    schedule: Schedule
    arn: str
    created_at: datetime


@dataclass
class _Scheduler:
    rules: list[_Rule]
    cursor: datetime  # everything due up to here has fired


_schedulers: "weakref.WeakKeyDictionary[Any, _Scheduler]" = weakref.WeakKeyDictionary()


def _target_arn(cloud: Any, schedule: Schedule) -> str:
    if schedule.target_kind == "function":
        return cloud.stack.functions[schedule.target_id].arn
    return cloud.stack.state_machines[schedule.target_id].arn


def _schedule_rules_ignore_events() -> None:
    """moto's Rule.send_to_targets, skipping schedule-only rules (see the module docstring); idempotent."""
    from moto.events.models import Rule

    send = Rule.send_to_targets
    if getattr(send, "_localcloud_schedule_only", False):
        return

    def send_to_targets(self: Any, *args: Any, **kwargs: Any) -> None:
        if self.scheduled_expression and not self.event_pattern.get_pattern():
            return
        send(self, *args, **kwargs)

    send_to_targets._localcloud_schedule_only = True  # type: ignore[attr-defined]
    Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]


def create_rules(cloud: Any) -> None:
    """Create one EventBridge rule and target per Schedule event; remember their creation time.

    Every expression and Input is checked first (`cron.parse`, JSON): a bad one is a
    `LocalCloudError` naming the rule.
    """
    _schedule_rules_ignore_events()
    for s in cloud.stack.schedules:
        try:
            cron.parse(s.expression)
        except LocalCloudError as exc:
            raise LocalCloudError(f"{s.target_id} (rule {s.rule_name}): {exc}") from None
        if s.input is not None:
            try:
                json.loads(s.input)
            except ValueError as exc:
                raise LocalCloudError(
                    f"{s.target_id} (rule {s.rule_name}): the schedule's Input is not JSON: {exc}") from None
    now = cloud.clock.now()
    rules: list[_Rule] = []
    events = cloud.client("events") if cloud.stack.schedules else None
    for s in cloud.stack.schedules:
        created = events.put_rule(Name=s.rule_name, ScheduleExpression=s.expression,
                                  State="ENABLED" if s.enabled else "DISABLED", Description=s.description)
        target: dict[str, Any] = {"Id": s.target_id, "Arn": _target_arn(cloud, s)}
        if s.input is not None:
            target["Input"] = s.input
        events.put_targets(Rule=s.rule_name, Targets=[target])
        rules.append(_Rule(s, created["RuleArn"], now))
    _schedulers[cloud] = _Scheduler(rules, now)


def parse_duration(text: str) -> float:
    """Seconds in ``30s``, ``90m``, ``36h``, ``7d``, ``2w`` (or a sum such as ``1d12h``)."""
    compact = str(text).strip().lower().replace(" ", "")
    parts = _DURATION.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise LocalCloudError(f"bad duration '{text}': use a number and a unit s, m, h, d or w (e.g. 90m, 36h, 7d)")
    return float(sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts))


def scheduled_event(rule_arn: str, moment: datetime, region: str) -> dict:
    """The event EventBridge sends a target of a schedule rule (without an Input)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


def _enabled(cloud: Any, rules: list[_Rule]) -> list[_Rule]:
    """The rules whose current state in moto is ENABLED."""
    if not rules:
        return []
    events = cloud.client("events")
    return [r for r in rules if events.describe_rule(Name=r.schedule.rule_name)["State"] == "ENABLED"]


def _due(rules: list[_Rule], start: datetime, end: datetime) -> list[tuple[datetime, int, _Rule]]:
    """Every (time, order, rule) firing in ``(start, end]``, sorted by time then template order."""
    due = [(moment, i, rule) for i, rule in enumerate(rules)
           for moment in cron.fire_times(rule.schedule.expression, start, end, rule.created_at)]
    return sorted(due, key=lambda item: (item[0], item[1]))


def _move_clock_to(clock: Any, moment: datetime) -> None:
    """Advance the clock to ``moment`` (never backwards; a no-op on real time)."""
    lag = (moment - clock.now()).total_seconds()
    if lag > 0:
        clock.advance(lag)


def _fire(cloud: Any, rule: _Rule, moment: datetime) -> Firing:
    s = rule.schedule
    payload = json.loads(s.input) if s.input is not None else scheduled_event(rule.arn, moment, cloud.stack.region)
    if s.target_kind == "state_machine":
        result = sfn.execute(cloud, s.target_id, payload, name=f"schedule-{uuid.uuid4()}")
        return Firing(moment, s.rule_name, s.target_id, s.target_kind, result.status, result)
    invocation = cloud.runtime.invoke(s.target_id, json.dumps(payload))
    try:
        answer = invocation.json()
    except ValueError:
        answer = invocation.payload.decode("utf-8", "replace")
    status = "OK"
    if invocation.function_error:
        error_type = answer.get("errorType") if isinstance(answer, dict) else None
        status = error_type or invocation.function_error
    return Firing(moment, s.rule_name, s.target_id, s.target_kind, status, answer)


def advance(cloud: Any, seconds: float) -> list[Firing]:
    """Move ``cloud.clock`` forward by ``seconds``, firing every enabled rule that falls due.

    Firings happen in time order with the clock set to each firing's time first; targets run
    synchronously, so a state machine's own waits move the clock too (a firing already passed
    then runs at once, the clock never goes back). Rules that fell due earlier (the clock moved
    by an execution) fire first. On a real-time clock nothing can be moved: the rules due up
    to the wall-clock now fire.
    """
    if seconds < 0:
        raise LocalCloudError("the clock only moves forward: the duration must not be negative")
    scheduler = _schedulers.get(cloud)
    if scheduler is None:
        raise LocalCloudError("the schedules are not set up: start the LocalCloud first")
    clock = cloud.clock
    end = clock.now() if clock.real_time else clock.now() + timedelta(seconds=seconds)
    firings = []
    for moment, _, rule in _due(_enabled(cloud, scheduler.rules), scheduler.cursor, end):
        _move_clock_to(clock, moment)
        scheduler.cursor = moment  # a target that raises leaves the later firings due
        firings.append(_fire(cloud, rule, moment))
    _move_clock_to(clock, end)
    scheduler.cursor = max(scheduler.cursor, end)
    return firings


def _summary(firing: Firing) -> str:
    result = firing.result
    if isinstance(result, sfn.ExecutionResult):
        shown = result.output if result.status == "SUCCEEDED" else {"error": result.error, "cause": result.cause}
        text = f"{result.execution_arn.rsplit(':', 1)[-1]} {json.dumps(shown, default=str)}"
    else:
        text = json.dumps(result, default=str)
    return text if len(text) <= 200 else text[:197] + "..."


def format_firings(firings: list[Firing]) -> str:
    """One line per firing: when, which rule, which target, how it went and what it returned."""
    if not firings:
        return "no schedule fell due"
    return "\n".join(
        f"{f.time.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%SZ}  {f.rule_name} -> {f.kind} {f.target_id}: "
        f"{f.status}  {_summary(f)}"
        for f in firings
    )
