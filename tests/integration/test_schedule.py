"""Schedules on the virtual clock: `schedule.advance` fires EventBridge rules when the clock
passes them, and the targets really run (their effects are read back from DynamoDB).

The clock starts on Thursday 2026-01-01 12:00 UTC, so the first Sunday 03:00 is 2026-01-04.
Only one LocalCloud runs per process: each class owns one (class scope), never overlapping.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from localcloud import schedule, sfn
from localcloud.clock import VirtualClock
from localcloud.cloud import LocalCloud
from localcloud.errors import LocalCloudError
from localcloud.template import load_stack

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests/fixtures/sfn_app/template.yaml"
THURSDAY_NOON = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
FIRST_SUNDAY_3AM = datetime(2026, 1, 4, 3, 0, tzinfo=timezone.utc)
WEEKLY_RULE = "mlops-WeeklyStateMachineWeekly"
RATE_RULE = "mlops-RecorderFunctionEverySixHours"


def _cloud(template: Path) -> LocalCloud:
    return LocalCloud(load_stack(template), log_sink=lambda fid, line: None, clock=VirtualClock(THURSDAY_NOON))


def _items(cloud: LocalCloud, table_id: str, pk_name: str, pk: str) -> list[dict]:
    table = cloud.stack.tables[table_id].name
    return cloud.client("dynamodb").query(
        TableName=table, KeyConditionExpression=f"{pk_name} = :pk",
        ExpressionAttributeValues={":pk": {"S": pk}})["Items"]


class TestFixtureSchedules:
    """A weekly cron on a state machine, a 6-hourly rate on a function and a disabled rule."""

    @pytest.fixture(scope="class")
    def cloud(self) -> Iterator[LocalCloud]:
        with _cloud(FIXTURE) as cloud:
            yield cloud

    @pytest.fixture(scope="class")
    def week(self, cloud: LocalCloud) -> list[schedule.Firing]:
        return schedule.advance(cloud, schedule.parse_duration("7d"))

    def test_the_clock_moved_exactly_seven_days(self, cloud: LocalCloud, week: list[schedule.Firing]) -> None:
        assert cloud.clock.now() == THURSDAY_NOON + timedelta(days=7)

    def test_the_weekly_cron_fired_once_on_sunday_at_3(self, week: list[schedule.Firing]) -> None:
        weekly = [f for f in week if f.rule_name == WEEKLY_RULE]
        assert [f.time for f in weekly] == [FIRST_SUNDAY_3AM]
        assert weekly[0].kind == "state_machine" and weekly[0].target_id == "WeeklyStateMachine"
        assert weekly[0].status == "SUCCEEDED"
        assert isinstance(weekly[0].result, sfn.ExecutionResult)

    def test_the_weekly_target_really_ran_at_that_time(self, cloud: LocalCloud, week: list[schedule.Firing]) -> None:
        items = _items(cloud, "EventsTable", "pk", "weekly")
        assert items == [{"pk": {"S": "weekly"}, "sk": {"S": "2026-01-04T03:00:00.000Z"},
                          "source": {"S": "weekly-schedule"}}]  # the rule's Input reached the execution

    def test_the_rate_fired_every_six_hours_from_creation(self, week: list[schedule.Firing]) -> None:
        rate = [f for f in week if f.rule_name == RATE_RULE]
        assert [f.time for f in rate] == [THURSDAY_NOON + timedelta(hours=6 * k) for k in range(1, 29)]
        assert {(f.kind, f.target_id, f.status) for f in rate} == {("function", "RecorderFunction", "OK")}

    def test_the_function_got_the_scheduled_event(self, cloud: LocalCloud, week: list[schedule.Firing]) -> None:
        rule_arn = cloud.client("events").describe_rule(Name=RATE_RULE)["Arn"]
        items = _items(cloud, "EventsTable", "pk", "recorder")
        assert len(items) == 28
        ids = set()
        for item in items:
            event = json.loads(item["event"]["S"])
            ids.add(event.pop("id"))
            assert event == {
                "version": "0", "detail-type": "Scheduled Event", "source": "aws.events",
                "account": "123456789012", "time": item["sk"]["S"], "region": "us-east-1",
                "resources": [rule_arn], "detail": {},
            }
        assert len(ids) == 28  # every event has its own id
        assert items[0]["sk"]["S"] == "2026-01-01T18:00:00Z"

    def test_the_disabled_rule_never_fired(self, week: list[schedule.Firing]) -> None:
        assert {f.rule_name for f in week} == {WEEKLY_RULE, RATE_RULE}

    def test_firings_are_in_time_order(self, week: list[schedule.Firing]) -> None:
        times = [f.time for f in week]
        assert times == sorted(times) and len(week) == 29

    def test_format_firings(self, week: list[schedule.Firing]) -> None:
        lines = schedule.format_firings(week).splitlines()
        assert len(lines) == 29
        sunday = next(line for line in lines if WEEKLY_RULE in line)
        assert sunday.startswith("2026-01-04T03:00:00Z") and "WeeklyStateMachine: SUCCEEDED" in sunday
        assert "RecorderFunction: OK" in lines[0] and '"recorded": "2026-01-01T18:00:00Z"' in lines[0]
        assert schedule.format_firings([]) == "no schedule fell due"

    def test_the_next_advance_continues_where_the_last_ended(self, cloud: LocalCloud,
                                                              week: list[schedule.Firing]) -> None:
        firings = schedule.advance(cloud, schedule.parse_duration("1d"))
        assert [f.time for f in firings] == [THURSDAY_NOON + timedelta(days=7, hours=6 * k) for k in range(1, 5)]

    def test_a_rule_disabled_through_the_api_stops_firing(self, cloud: LocalCloud,
                                                           week: list[schedule.Firing]) -> None:
        events = cloud.client("events")
        events.disable_rule(Name=RATE_RULE)
        try:
            assert schedule.advance(cloud, schedule.parse_duration("12h")) == []
        finally:
            events.enable_rule(Name=RATE_RULE)
        assert len(schedule.advance(cloud, schedule.parse_duration("6h"))) == 1

    def test_the_rules_exist_in_eventbridge(self, cloud: LocalCloud) -> None:
        rules = {r["Name"]: r for r in cloud.client("events").list_rules()["Rules"]}
        assert rules[WEEKLY_RULE]["ScheduleExpression"] == "cron(0 3 ? * SUN *)"
        assert rules["mlops-ScoreFunctionDisabled"]["State"] == "DISABLED"
        targets = cloud.client("events").list_targets_by_rule(Rule=WEEKLY_RULE)["Targets"]
        assert targets[0]["Arn"] == cloud.stack.state_machine("WeeklyStateMachine").arn
        assert json.loads(targets[0]["Input"]) == {"source": "weekly-schedule"}

    def test_negative_durations_are_refused(self, cloud: LocalCloud) -> None:
        with pytest.raises(LocalCloudError, match="only moves forward"):
            schedule.advance(cloud, -1)


class TestProductRetrainingSchedule:
    """template.yaml's weekly retraining: a week later, one run from Sunday 03:00, which on an
    empty stack fails fast at data validation and says why."""

    def test_a_week_fires_one_retraining(self) -> None:
        with _cloud(ROOT / "template.yaml") as cloud:
            firings = schedule.advance(cloud, 7 * 86400)
            records = _items(cloud, "RegistryTable", "pk", "MODEL#yield")
        retraining = [f for f in firings if f.target_id == "RetrainingStateMachine"]
        assert [(f.time, f.target_id, f.status) for f in retraining] == [
            (FIRST_SUNDAY_3AM, "RetrainingStateMachine", "FAILED")]
        assert retraining[0].result.error == "RetrainingFailed"
        assert "row count: 0 label rows in the window" in retraining[0].result.cause
        # The other schedules of the template (hourly monitoring...) ran without failing.
        assert {f.status for f in firings if f not in retraining} <= {"OK", "SUCCEEDED"}
        execution = retraining[0].result.execution_arn
        assert len(records) == 1
        assert records[0]["sk"]["S"] == f"RUN#2026-01-04T03:00:00.000000Z#{execution.rsplit(':', 1)[-1]}"
        assert records[0]["status"] == {"S": "FAILED"}
        run = json.loads(records[0]["run"]["S"])
        assert run["reason"] == "schedule" and run["window"]["end"] == "2026-01-04T03:00:00.000000Z"


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("90m", 5400), ("36h", 129600), ("7d", 604800), ("2w", 1209600),
    ("1d12h", 129600), ("1.5h", 5400), (" 7D ", 604800), ("0s", 0),
])
def test_parse_duration(text: str, seconds: float) -> None:
    assert schedule.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "7", "d", "7 days", "7y", "-1d", "1h-2m"])
def test_parse_duration_rejects_bad_input(text: str) -> None:
    with pytest.raises(LocalCloudError, match="bad duration"):
        schedule.parse_duration(text)
