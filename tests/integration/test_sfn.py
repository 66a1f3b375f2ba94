"""`localcloud execute` end to end: moto's Step Functions interpreter running state machines
whose Task states invoke the local functions, with waits and retries on the virtual clock.

The fixture app (tests/fixtures/sfn_app) has a pipeline that uses a retried Task, Choice, Map,
Parallel, a caught error and a Wait; the product template's two state machines are run as
they are. Only one LocalCloud runs per process, so each class owns one cloud (class scope),
and classes never overlap.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from localcloud import sfn
from localcloud.clock import VirtualClock
from localcloud.cloud import LocalCloud
from localcloud.errors import LocalCloudError
from localcloud.template import load_stack

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests/fixtures/sfn_app/template.yaml"
START = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)  # a Monday


def _cloud(template: Path, clock: VirtualClock) -> LocalCloud:
    return LocalCloud(load_stack(template), log_sink=lambda fid, line: None, clock=clock)


def _events(result: sfn.ExecutionResult, etype: str) -> list[dict]:
    return [e for e in result.events if e["type"] == etype]


def _state_events(result: sfn.ExecutionResult, etype: str, state: str) -> list[dict]:
    """Events of ``etype`` that belong to ``state`` (following previousEventId to its entry)."""
    by_id = {e["id"]: e for e in result.events}

    def owner(event: dict) -> str | None:
        while event is not None:
            details = event.get("stateEnteredEventDetails")
            if details:
                return details["name"]
            event = by_id.get(event.get("previousEventId"))
        return None

    return [e for e in result.events if e["type"] == etype and owner(e) == state]


def _offset(result: sfn.ExecutionResult, event: dict) -> float:
    return (event["timestamp"] - result.events[0]["timestamp"]).total_seconds()


class TestFixtureApp:
    """The fixture app on a virtual clock that starts on Monday 2026-01-05 09:00 UTC."""

    @pytest.fixture(scope="class")
    def cloud(self) -> Iterator[LocalCloud]:
        with _cloud(FIXTURE, VirtualClock(START)) as cloud:
            yield cloud

    @pytest.fixture(scope="class")
    def pipeline(self, cloud: LocalCloud) -> sfn.ExecutionResult:
        """One run through every construct: two retried failures, a 3-item Map, a caught error, 1 h wait."""
        return sfn.execute(cloud, "PipelineStateMachine", {
            "fail_times": 2, "mode": "fan-out", "items": [{"value": 1}, {"value": 2}, {"value": 3}],
            "model": "yield", "hold_seconds": 3600,
        })

    def test_pipeline_succeeds_with_the_expected_output(self, pipeline: sfn.ExecutionResult) -> None:
        assert pipeline.status == "SUCCEEDED", pipeline.cause
        out = pipeline.output
        assert out["flaky"] == {"attempts": 3}
        assert out["scores"] == [{"value": 1, "score": 2}, {"value": 2, "score": 4}, {"value": 3, "score": 6}]
        assert out["parallel"] == [{"value": 10, "score": 20}, "labelled"]
        assert out["caught"]["Error"] == "ModelError"
        cause = json.loads(out["caught"]["Cause"])
        assert cause["errorType"] == "ModelError" and cause["errorMessage"] == "model yield cannot be scored"

    def test_history_shows_the_retries_on_the_virtual_clock(self, pipeline: sfn.ExecutionResult) -> None:
        failures = _state_events(pipeline, "TaskFailed", "Flaky")
        assert [e["taskFailedEventDetails"]["error"] for e in failures] == ["TransientError", "TransientError"]
        scheduled = _state_events(pipeline, "TaskScheduled", "Flaky")
        # IntervalSeconds 30, BackoffRate 2: attempts at +0, +30 and +90 virtual seconds.
        assert [_offset(pipeline, e) for e in scheduled] == [0.0, 30.0, 90.0]
        assert len(_state_events(pipeline, "TaskSucceeded", "Flaky")) == 1

    def test_history_shows_the_caught_error(self, pipeline: sfn.ExecutionResult) -> None:
        failed = _state_events(pipeline, "TaskFailed", "Risky")
        assert [e["taskFailedEventDetails"]["error"] for e in failed] == ["ModelError"]
        exited = _state_events(pipeline, "TaskStateExited", "Risky")
        assert len(exited) == 1
        entered_hold = _state_events(pipeline, "WaitStateEntered", "Hold")
        assert entered_hold and entered_hold[0]["previousEventId"] == exited[0]["id"]

    def test_map_and_parallel_ran_their_items_and_branches(self, pipeline: sfn.ExecutionResult) -> None:
        iterations = _events(pipeline, "MapIterationSucceeded")
        assert sorted(e["mapIterationSucceededEventDetails"]["index"] for e in iterations) == [0, 1, 2]
        assert len(_events(pipeline, "LambdaFunctionSucceeded")) == 4  # 3 map items + ScoreTen
        assert len(_events(pipeline, "ParallelStateSucceeded")) == 1

    def test_the_wait_moved_the_clock_not_the_wall(self, pipeline: sfn.ExecutionResult) -> None:
        entered = _state_events(pipeline, "WaitStateEntered", "Hold")[0]
        exited = _state_events(pipeline, "WaitStateExited", "Hold")[0]
        assert (exited["timestamp"] - entered["timestamp"]).total_seconds() == 3600
        assert pipeline.virtual_seconds == 90 + 3600  # retry intervals + the wait
        assert pipeline.wall_seconds < 10  # no real hour, no real 90 s of retries
        assert pipeline.events[0]["timestamp"] == START

    def test_the_choice_default_skips_the_map(self, cloud: LocalCloud) -> None:
        result = sfn.execute(cloud, "PipelineStateMachine",
                             {"fail_times": 0, "mode": "single", "model": "m", "hold_seconds": 5})
        assert result.status == "SUCCEEDED"
        assert result.output["scores"] == [] and result.output["flaky"] == {"attempts": 1}
        assert not _events(result, "MapStateEntered")
        assert result.virtual_seconds == 5

    def test_retries_run_out(self, cloud: LocalCloud) -> None:
        result = sfn.execute(cloud, "PipelineStateMachine",
                             {"fail_times": 9, "mode": "single", "model": "m", "hold_seconds": 5})
        assert result.status == "FAILED"
        assert result.error == "TransientError" and "attempt 4 of" in result.cause
        assert len(_state_events(result, "TaskFailed", "Flaky")) == 4  # MaxAttempts 3 retries
        assert result.virtual_seconds == 30 + 60 + 120

    def test_a_failing_function_fails_the_execution_with_its_error_type(self, cloud: LocalCloud) -> None:
        result = sfn.execute(cloud, "FailingStateMachine", {"model": "broken"})
        assert result.status == "FAILED"
        assert result.error == "ModelError"
        assert json.loads(result.cause)["errorMessage"] == "model broken cannot be scored"
        assert result.output is None
        assert result.events[-1]["type"] == "ExecutionFailed"

    def test_parallel_waits_overlap_and_timestamp_waits_end_on_time(self, cloud: LocalCloud) -> None:
        start = cloud.clock.now()
        until = (start + timedelta(hours=2)).replace(microsecond=0)
        result = sfn.execute(cloud, "WaitsStateMachine", {"until": until.strftime("%Y-%m-%dT%H:%M:%SZ")})
        assert result.status == "SUCCEEDED", result.cause
        parallel_exit = _events(result, "ParallelStateExited")[0]
        assert _offset(result, parallel_exit) == 900  # max(600, 900), not 600 + 900
        for branch, seconds in (("Short", 600), ("Long", 900)):  # each branch's events on its own timeline
            entered = _state_events(result, "WaitStateEntered", branch)[0]
            exited = _state_events(result, "WaitStateExited", branch)[0]
            assert (_offset(result, entered), _offset(result, exited)) == (0, seconds)
        assert result.events[-1]["timestamp"] == until
        assert result.virtual_seconds == (until - start).total_seconds()

    def test_map_iterations_overlap_or_add_up_by_max_concurrency(self, cloud: LocalCloud) -> None:
        bakes = [{"seconds": 300}, {"seconds": 500}, {"seconds": 100}]
        result = sfn.execute(cloud, "MapWaitsStateMachine", {"bakes": bakes})
        assert result.status == "SUCCEEDED", result.cause
        together = next(e for e in result.events if e["type"] == "MapStateExited"
                        and e["stateExitedEventDetails"]["name"] == "Together")
        assert _offset(result, together) == 500  # all three at once: the longest
        assert result.virtual_seconds == 500 + 900  # then one at a time: the sum

    def test_context_object_times_are_iso_strings(self, cloud: LocalCloud) -> None:
        start = cloud.clock.now()
        until = (start + timedelta(hours=1)).replace(microsecond=0)  # after the 900 s of Parallel waits
        result = sfn.execute(cloud, "WaitsStateMachine", {"until": until.strftime("%Y-%m-%dT%H:%M:%SZ")})
        started = sfn.aws_timestamp(start)
        assert result.output == {
            "started": started,
            "entered": until.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "message": f"started at {started}",  # States.Format over $$.Execution.StartTime
        }

    def test_a_child_execution_runs_to_its_end_with_sync2(self, cloud: LocalCloud) -> None:
        first = sfn.execute(cloud, "ParentStateMachine", {"value": 3})
        second = sfn.execute(cloud, "ParentStateMachine", {"value": 3})
        for result in (first, second):
            assert result.status == "SUCCEEDED", result.cause
            assert result.output == {"child": {"value": 3, "score": 6}, "status": "SUCCEEDED"}
            assert result.virtual_seconds == 120  # the child's bake
            assert _offset(result, _events(result, "TaskSucceeded")[0]) == 120  # the parent waited for it
        children = cloud.client("stepfunctions").list_executions(
            stateMachineArn=cloud.stack.state_machine("ChildStateMachine").arn)["executions"]
        assert len({c["name"] for c in children}) == len(children) >= 2  # no "None" collisions

    def test_execute_accepts_name_and_arn(self, cloud: LocalCloud) -> None:
        sm = cloud.stack.state_machine("FailingStateMachine")
        result = sfn.execute(cloud, sm.arn, {}, name="by-arn")
        assert result.execution_arn.endswith(":by-arn")
        assert sfn.execute(cloud, sm.name, {}).status == "FAILED"

    def test_an_unknown_state_machine_is_a_clear_error(self, cloud: LocalCloud) -> None:
        with pytest.raises(LocalCloudError, match="unknown state machine 'Nope'"):
            sfn.execute(cloud, "Nope")

    def test_format_result_prints_status_output_and_every_event(self, pipeline: sfn.ExecutionResult) -> None:
        text = sfn.format_result(pipeline)
        lines = text.splitlines()
        assert lines[0].startswith("SUCCEEDED  arn:aws:states:")
        assert '"attempts": 3' in text
        event_lines = [line for line in lines if line.lstrip()[:1].isdigit() and "Z  " in line]
        assert len(event_lines) == len(pipeline.events)
        hold_exit = next(line for line in event_lines if "WaitStateExited" in line)
        assert "Hold" in hold_exit and "+3690.000s" in hold_exit
        assert "virtual clock moved 3690 s (1h 1m 30s)" in lines[1]
        assert any("TaskFailed" in line and "Flaky" in line and "error=TransientError" in line for line in event_lines)

    def test_format_result_of_a_failure_shows_error_and_cause(self, cloud: LocalCloud) -> None:
        text = sfn.format_result(sfn.execute(cloud, "FailingStateMachine", {}))
        assert text.startswith("FAILED")
        assert "error: ModelError" in text and "cause:" in text
        assert "LambdaFunctionFailed" in text and "Risky" in text


class TestInstall:
    """Validation before creation, and patches that are undone."""

    def test_an_invalid_definition_stops_the_cloud_from_starting(self) -> None:
        stack = load_stack(FIXTURE)
        risky = stack.state_machines["FailingStateMachine"].definition["States"]["Risky"]
        del risky["End"]
        risky["Next"] = "Nowhere"
        with pytest.raises(LocalCloudError) as err:
            LocalCloud(stack, log_sink=lambda fid, line: None).start()
        assert "FailingStateMachine" in str(err.value) and "'Risky'" in str(err.value)
        assert "Next 'Nowhere'" in str(err.value)

    def test_uninstall_restores_moto(self) -> None:
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
        from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
        from moto.stepfunctions.parser.asl.eval.environment import Environment

        before = (WaitFunction.__dict__["_wait_interval"], retrier_decl.time,
                  Environment.__dict__["as_inner_frame_of"])
        with _cloud(FIXTURE, VirtualClock(START)):
            assert WaitFunction.__dict__["_wait_interval"] is not before[0]
            assert retrier_decl.time is not before[1]
        after = (WaitFunction.__dict__["_wait_interval"], retrier_decl.time,
                 Environment.__dict__["as_inner_frame_of"])
        assert after == before


class TestRealTime:
    """``--real-time``: the same Wait really sleeps, and StopExecution still interrupts it."""

    @pytest.fixture(scope="class")
    def cloud(self) -> Iterator[LocalCloud]:
        with _cloud(FIXTURE, VirtualClock(real_time=True)) as cloud:
            yield cloud

    def test_a_real_time_clock_really_sleeps(self, cloud: LocalCloud) -> None:
        result = sfn.execute(cloud, "PipelineStateMachine",
                             {"fail_times": 0, "mode": "single", "model": "m", "hold_seconds": 1})
        assert result.status == "SUCCEEDED", result.cause
        entered = _state_events(result, "WaitStateEntered", "Hold")[0]
        exited = _state_events(result, "WaitStateExited", "Hold")[0]
        assert 0.99 <= (exited["timestamp"] - entered["timestamp"]).total_seconds() < 1.5
        assert result.wall_seconds >= 1.0

    def test_a_timeout_stops_a_long_real_wait(self, cloud: LocalCloud) -> None:
        with pytest.raises(LocalCloudError, match="still running after 0.5 s"):
            sfn.execute(cloud, "PipelineStateMachine",
                        {"fail_times": 0, "mode": "single", "model": "m", "hold_seconds": 60},
                        name="too-long", timeout=0.5)
        client = cloud.client("stepfunctions")
        machine_arn = cloud.stack.state_machine("PipelineStateMachine").arn
        arn = machine_arn.replace(":stateMachine:", ":execution:") + ":too-long"
        assert client.describe_execution(executionArn=arn)["status"] == "ABORTED"


class TestProductTemplate:
    """The product's retraining and canary-rollout state machines, as template.yaml defines them."""

    @pytest.fixture(scope="class")
    def cloud(self) -> Iterator[LocalCloud]:
        with _cloud(ROOT / "template.yaml", VirtualClock(START)) as cloud:
            yield cloud

    def test_retraining_of_an_empty_stack_fails_fast_and_records_why(self, cloud: LocalCloud) -> None:
        started = cloud.clock.now()
        result = sfn.execute(cloud, "RetrainingStateMachine", {"model": "yield", "reason": "manual"}, name="run-1")
        assert (result.status, result.error) == ("FAILED", "RetrainingFailed")
        assert "DataValidationError" in result.cause and "row count: 0 label rows" in result.cause
        table = cloud.stack.tables["RegistryTable"].name
        sk = f"RUN#{started.strftime('%Y-%m-%dT%H:%M:%S.%f')}Z#run-1"  # the execution's (virtual) start
        item = cloud.client("dynamodb").get_item(
            TableName=table, Key={"pk": {"S": "MODEL#yield"}, "sk": {"S": sk}}).get("Item")
        assert item is not None, "the run record is missing"
        assert item["status"] == {"S": "FAILED"} and item["execution"] == {"S": result.execution_arn}
        assert "row count" in json.loads(item["run"]["S"])["error"]["Cause"]
        lease = cloud.client("dynamodb").get_item(TableName=cloud.stack.tables["DeploymentsTable"].name,
                                                  Key={"model": {"S": "yield"}, "sk": {"S": "LOCK#retraining"}})
        assert "Item" not in lease  # released

    @pytest.mark.parametrize(("bad_input", "problem"), [({"reason": "manual"}, "model: "),
                                                        ({"model": 7}, "model: "),
                                                        ({"model": "yield", "spec": {"x": 1}}, "spec.x: unknown")])
    def test_retraining_rejects_bad_input(self, cloud: LocalCloud, bad_input: dict, problem: str) -> None:
        result = sfn.execute(cloud, "RetrainingStateMachine", bad_input)
        assert (result.status, result.error) == ("FAILED", "RunInputError")
        assert problem in result.cause

    def test_canary_of_an_unknown_version_fails_before_any_traffic_moves(self, cloud: LocalCloud) -> None:
        training = json.loads((ROOT / "events" / "TrainFunction.json").read_text())
        v1 = cloud.invoke("TrainFunction", training)["version"]
        cloud.invoke("ModelAdminFunction", {"model": "yield", "alias": "champion", "version": v1, "actor": "test"})
        result = sfn.execute(cloud, "CanaryRolloutStateMachine", {
            "model": "yield", "challenger": 99, "stages": [10, 100], "bake_seconds": 60})
        assert (result.status, result.error) == ("FAILED", "RunInputError")
        assert "challenger: version 99 of 'yield' is not registered" in result.cause
        assert not _state_events(result, "TaskScheduled", "SetStage")
